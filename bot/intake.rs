//! The one door every channel uses: the web widget, the REST API, Telegram and Discord all
//! hand their customers' messages to [`Intake::receive`]. Here a link command is answered
//! before the NLU sees it, a message id seen before gets its first outcome back, quick bursts
//! from chat channels are merged into one turn, the message goes to the desk, and it is
//! counted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::desk::survey::SurveyAnswer;
use crate::desk::{Desk, DeskError, Reply, Turn, Unavailable};
use crate::message::{ChannelKind, ConversationId, Identity, Inbound, Status, Survey};
use crate::metrics;
use crate::throttle::{lock, Bounded, Limiter, Rate, Tracked};

/// A burst is answered at the latest this many windows after its first message, however
/// fast the customer keeps typing.
const MAX_WINDOWS: u32 = 4;
/// A burst of this many messages is answered at once.
const MAX_BURST: usize = 20;

type Waiter = oneshot::Sender<Result<Received, DeskError>>;

/// Messages of one customer waiting to be answered together.
struct Burst {
    messages: Vec<Inbound>,
    waiters: Vec<Waiter>,
    deadline: tokio::time::Instant,
    hard_deadline: tokio::time::Instant,
}

/// What became of a survey button press ([`Intake::answer_press`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressed {
    /// The presser's answer to their open question, stored.
    Counted,
    /// Not their open question (another's, answered already, closed): nothing changed.
    NotCounted,
    /// Past the sender's allowance: not read.
    TooFast,
}

/// What became of one inbound message.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// Where the conversation stands, with the bot's replies.
    pub turn: Turn,
    /// The replies are not part of any conversation (the answer to a `/link` command), so
    /// they reach chat platforms only if the channel sends them itself. Conversation
    /// replies always reach chat platforms through the desk's events and the outbox.
    pub direct: bool,
}

/// Shared by every channel; cheap to clone.
#[derive(Clone)]
pub struct Intake {
    desk: Desk,
    /// How long a chat channel's message waits for the next one (zero: not at all).
    window: Duration,
    bursts: Arc<Mutex<HashMap<String, Burst>>>,
    /// Messages per Telegram or Discord user (the widget and REST are limited in the
    /// server, where a client can be told 429).
    platform: Option<Arc<PlatformGate>>,
}

/// A Telegram or Discord sender past their allowance: the platform cannot be told to slow
/// down, so their messages are not read (no store, no NLU) and they hear so once a minute.
struct PlatformGate {
    limiter: Limiter<String>,
    warned: Mutex<Bounded<String, Warned>>,
}

/// When a sender was last told they write too fast.
struct Warned(Instant);

impl Tracked for Warned {
    fn idle(&self, now: Instant) -> bool {
        now.duration_since(self.0) >= WARN_EVERY
    }
}

/// A limited sender hears about it at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

impl Intake {
    /// An intake that answers every message at once.
    pub fn new(desk: Desk) -> Intake {
        Intake::with_debounce(desk, Duration::ZERO)
    }

    /// An intake that merges chat messages arriving within `window` of each other.
    pub fn with_debounce(desk: Desk, window: Duration) -> Intake {
        Intake {
            desk,
            window,
            bursts: Arc::new(Mutex::new(HashMap::new())),
            platform: None,
        }
    }

    /// Limits each Telegram and Discord user to `rate` (remembering at most `max_tracked`
    /// users); an off rate changes nothing.
    pub fn with_platform_rate(mut self, rate: Rate, max_tracked: usize) -> Intake {
        if !rate.is_off() {
            self.platform = Some(Arc::new(PlatformGate {
                limiter: Limiter::new(rate, max_tracked),
                warned: Mutex::new(Bounded::new(max_tracked)),
            }));
        }
        self
    }

    /// A survey button pressed on Telegram or Discord. A press costs store reads like a
    /// message, so presses share the sender's message allowance: one sender cannot press
    /// (or replay presses) without bound.
    pub async fn answer_press(
        &self,
        presser: &Identity,
        conversation: &ConversationId,
        survey: Survey,
        answer: SurveyAnswer,
    ) -> Result<Pressed, DeskError> {
        if let Some(gate) = &self.platform {
            if gate.limiter.take(presser.key()).is_err() {
                metrics::limited("platform_user");
                tracing::info!(identity = %presser, "platform sender over their rate; button press not read");
                return Ok(Pressed::TooFast);
            }
        }
        let counted = self
            .desk
            .answer_survey(presser, conversation, survey, answer)
            .await?;
        Ok(match counted {
            true => Pressed::Counted,
            false => Pressed::NotCounted,
        })
    }

    /// `Some` (what the sender gets back) when a platform sender is past their allowance.
    async fn over_platform_rate(&self, msg: &Inbound) -> Option<Received> {
        if !matches!(msg.channel, ChannelKind::Telegram | ChannelKind::Discord) {
            return None;
        }
        let gate = self.platform.as_ref()?;
        let key = msg.identity().key();
        gate.limiter.take(key.clone()).err()?;
        metrics::limited("platform_user");
        tracing::info!(identity = ?key, "platform sender over their message rate; message not read");
        let now = Instant::now();
        let tell = {
            let mut warned = lock(&gate.warned);
            let due = warned.get_mut(&key).is_none_or(|w| w.idle(now));
            if due {
                warned.touch(key, now, || Warned(now)).0 = now;
            }
            due
        };
        // Told once a minute; the messages in between cost no store read at all.
        let turn = match tell {
            true => self.link_turn(msg, crate::desk::copy::too_fast()).await,
            false => Turn {
                conversation_id: ConversationId(format!("limited:{}", msg.identity())),
                status: Status::Bot,
                replies: Vec::new(),
                queue: None,
                id: Some(crate::desk::new_turn_id()),
            },
        };
        Some(Received { turn, direct: true })
    }

    /// Queues the replies of a turn that belongs to no conversation (a `/link` command's
    /// answer, the "too fast" notice) in the outbox, on a channel with couriers (REST reads
    /// them in its answer). The widget that sent the message shows them in its `turn` frame
    /// and skips them when the courier brings them (they carry the turn's id); the visitor's
    /// other tabs show them then.
    async fn queue_direct(&self, msg: &Inbound, turn: &Turn) {
        if !crate::store::has_outbox(msg.channel) {
            return;
        }
        for reply in &turn.replies {
            let message = crate::message::Outbound {
                conversation_id: turn.conversation_id.clone(),
                channel: msg.channel,
                channel_user: msg.channel_user.clone(),
                text: reply.text.clone(),
                from: crate::message::Speaker::Bot,
                time: chrono::Utc::now(),
                turn: turn.id.clone(),
                survey: None,
            };
            if let Err(e) = self.desk.queue_reply(message).await {
                // What the customer sent was handled; only this answer is lost.
                tracing::error!(error = %e, channel = %msg.channel, "cannot queue an answer");
            }
        }
    }

    pub fn desk(&self) -> &Desk {
        &self.desk
    }

    /// Handles one customer message from any channel.
    pub async fn receive(&self, mut msg: Inbound) -> Result<Received, DeskError> {
        msg.strip_nul();
        if let Some(limited) = self.over_platform_rate(&msg).await {
            self.queue_direct(&msg, &limited.turn).await;
            return Ok(limited);
        }
        if let Some(text) = self.desk.link_command(&msg).await {
            let turn = self.link_turn(&msg, text).await;
            self.queue_direct(&msg, &turn).await;
            return Ok(Received { turn, direct: true });
        }
        // Only the widget waits for a burst to end: its client re-sends an unanswered
        // message with the same id, so a burst held in memory is never lost. Telegram and
        // Discord acknowledge a message once it is stored (Discord never resends, Telegram
        // polls one update at a time), and REST callers send whole requests.
        if self.window.is_zero() || msg.channel != ChannelKind::Web {
            return self.handle(msg).await;
        }
        // A repeat of a message already answered is not held for a window: the desk checks
        // ids under the conversation's lock too, so only this path needs the early look.
        if let Some(id) = &msg.message_id {
            if let Some(turn) = self.desk.seen(&msg.identity(), id).await? {
                metrics::inbound_duplicate(msg.channel.as_str());
                return Ok(Received {
                    turn,
                    direct: false,
                });
            }
        }
        self.debounced(msg).await
    }

    /// Joins (or opens) the customer's burst and waits for its answer.
    async fn debounced(&self, msg: Inbound) -> Result<Received, DeskError> {
        let (tx, rx) = oneshot::channel();
        let key = msg.identity().key();
        let now = tokio::time::Instant::now();
        let start_timer = {
            let mut bursts = self.bursts.lock().unwrap_or_else(|e| e.into_inner());
            match bursts.get_mut(&key) {
                Some(burst) => {
                    // The same message again (a retry) joins without adding its text twice.
                    let repeat = msg.message_id.is_some()
                        && burst
                            .messages
                            .iter()
                            .any(|m| m.message_id == msg.message_id);
                    if !repeat {
                        burst.messages.push(msg);
                    }
                    burst.waiters.push(tx);
                    burst.deadline = (now + self.window).min(burst.hard_deadline);
                    if burst.messages.len() >= MAX_BURST {
                        burst.deadline = now;
                    }
                    false
                }
                None => {
                    bursts.insert(
                        key.clone(),
                        Burst {
                            messages: vec![msg],
                            waiters: vec![tx],
                            deadline: now + self.window,
                            hard_deadline: now + self.window * MAX_WINDOWS,
                        },
                    );
                    true
                }
            }
        };
        if start_timer {
            let intake = self.clone();
            tokio::spawn(async move { intake.answer_burst(key).await });
        }
        rx.await
            .unwrap_or_else(|_| Err(DeskError::Unavailable(Unavailable::Dropped)))
    }

    /// Waits until the burst of `key` is quiet, then answers it as one message: the last
    /// waiter gets the turn with its replies, the earlier ones the same turn without them
    /// (their messages are part of it; nobody is answered twice).
    async fn answer_burst(&self, key: String) {
        let burst = loop {
            let ready = self.take_if_quiet(&key);
            match ready {
                Ok(burst) => break burst,
                Err(Some(deadline)) => tokio::time::sleep_until(deadline).await,
                Err(None) => return,
            }
        };
        let Burst {
            messages,
            mut waiters,
            ..
        } = burst;
        let merged = merge(messages);
        let result = self.handle(merged).await;
        let last = waiters.pop();
        for waiter in waiters {
            let _ = waiter.send(match &result {
                Ok(received) => Ok(Received {
                    turn: Turn {
                        replies: Vec::new(),
                        ..received.turn.clone()
                    },
                    direct: received.direct,
                }),
                Err(_) => Err(DeskError::Unavailable(Unavailable::Dropped)),
            });
        }
        if let Some(last) = last {
            let _ = last.send(result);
        }
    }

    /// The burst of `key` if its window has passed; else when to look again (`None`: gone).
    fn take_if_quiet(&self, key: &str) -> Result<Burst, Option<tokio::time::Instant>> {
        let mut bursts = self.bursts.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = bursts.get(key).ok_or(None)?.deadline;
        if deadline <= tokio::time::Instant::now() {
            bursts.remove(key).ok_or(None)
        } else {
            Err(Some(deadline))
        }
    }

    /// One message to the desk, counted. A chat platform's message returns once stored: its
    /// answers travel through the outbox, so an answer the LLM is still writing never holds
    /// up the platform's next update.
    async fn handle(&self, msg: Inbound) -> Result<Received, DeskError> {
        let channel = msg.channel.as_str();
        let started = Instant::now();
        let handled = match msg.channel {
            ChannelKind::Telegram | ChannelKind::Discord => self.desk.receive_stored(msg).await,
            _ => self.desk.receive(msg).await,
        };
        match handled {
            Ok(turn) => {
                metrics::message_handled(channel, started.elapsed(), turn.replies.len());
                Ok(Received {
                    turn,
                    direct: false,
                })
            }
            Err(e) => {
                metrics::message_rejected(match e {
                    DeskError::Busy => "busy",
                    _ => "error",
                });
                Err(e)
            }
        }
    }

    /// The answer to a link command, shaped like any other turn.
    async fn link_turn(&self, msg: &Inbound, text: String) -> Turn {
        let open = match self
            .desk
            .conversation_of(msg.channel, &msg.channel_user)
            .await
        {
            Ok(Some(id)) => self.desk.conversation(&id).await.ok().flatten(),
            _ => None,
        };
        let (conversation_id, status) = match open {
            Some(c) => (c.id, c.status),
            None => (
                ConversationId(format!("link:{}", msg.identity())),
                Status::Bot,
            ),
        };
        Turn {
            conversation_id,
            status,
            replies: vec![Reply { text }],
            queue: None,
            id: Some(crate::desk::new_turn_id()),
        }
    }
}

/// A burst as one message: the texts in order, one per line; the first message's id (the
/// others recorded as merged); the latest time and trusted profile.
fn merge(mut messages: Vec<Inbound>) -> Inbound {
    if messages.len() == 1 {
        return messages.pop().expect("one");
    }
    let mut first = messages.remove(0);
    for m in messages {
        first.text.push('\n');
        first.text.push_str(&m.text);
        first.time = m.time;
        if m.profile.is_some() {
            first.profile = m.profile;
        }
        match (&first.message_id, m.message_id) {
            (Some(_), Some(id)) => first.merged_ids.push(id),
            (None, Some(id)) => first.message_id = Some(id),
            (_, None) => {}
        }
    }
    first
}
