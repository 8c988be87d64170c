//! The desk's shared state, private to `desk/`: the store, the NLU, the answers and rules,
//! the agents, the live-event channel, the conversation workers, and the two locks that
//! keep changes consistent.
//!
//! Lock order, the one global order: customer stripes by ascending index, then `queue_lock`.
//! A turn takes its stripe for the whole turn and `queue_lock` only from the queue decision
//! until the change is applied; linking two identities takes both stripes, lower index first.
//! Every wait is bounded ([`LOCK_WAIT`]): a lock held too long turns into a clear error
//! (`Unavailable::LockTimeout`) for that one caller instead of a hung worker.
//!
//! With a store other nodes share (PostgreSQL), each lock is also a lease of the same name
//! in the store (`stripe:N`, `queues`), taken after the local mutex and given back with it:
//! one customer's messages are handled by one node at a time, in order, whichever node
//! received them; a node that dies loses its leases after [`LEASE_TTL`] (a live one renews
//! them while it holds the lock).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};

use tokio::sync::{broadcast, oneshot, Mutex};
use tokio_util::sync::CancellationToken;

use super::dialogue::Dialogue;
use super::error::{DeskError, Unavailable};
use super::router::Router;
use super::types::{DeskEvent, DeskEventKind, DeskParts, Turn, Understand};
use crate::config::AgentConfig;
use crate::message::{ConversationId, Inbound};
use crate::policy::Rules;
use crate::store::Store;

/// One customer message for a worker, whether its caller waits for the answer (`true`) or
/// only for the message to be stored, and where to send what became of it.
pub(super) type Job = (Inbound, bool, oneshot::Sender<Result<Turn, DeskError>>);

const STRIPES: usize = 256;

/// How long anyone waits for a lock before giving up.
pub(super) const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a lock's lease outlives a node that died holding it. A live holder renews it
/// every third of this while it holds the lock, so a long turn keeps it.
pub(super) const LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// A lock this task holds: the local mutex and, on a shared store, its lease (given back
/// when the guard drops).
pub(super) struct Held<'a> {
    _local: tokio::sync::MutexGuard<'a, ()>,
    lease: Option<(Arc<dyn Store>, String, String)>,
    /// Renews the lease while the lock is held.
    renewal: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(renewal) = self.renewal.take() {
            renewal.abort();
        }
        if let Some((store, name, holder)) = self.lease.take() {
            // Each hold has its own holder name, so a later hold of this node is never
            // undone by this release.
            tokio::spawn(async move {
                if let Err(e) = store.release_lease(&name, &holder).await {
                    tracing::warn!(lease = %name, error = %e, "cannot give a lease back; it runs out on its own");
                }
            });
        }
    }
}

static HOLDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(super) struct Inner {
    pub(super) store: Arc<dyn Store>,
    pub(super) nlu: Arc<dyn Understand>,
    pub(super) dialogue: Dialogue,
    /// The escalation rules and queues in force; a reload swaps them whole (a turn reads
    /// one version from start to end).
    rules: std::sync::RwLock<Arc<Rules>>,
    pub(super) agents: BTreeMap<String, AgentConfig>,
    pub(super) events: broadcast::Sender<DeskEvent>,
    /// The conversation workers (per-customer order, bounded inboxes).
    pub(super) router: Router<Job>,
    /// Serialises every change to one customer's conversation (key: channel identity).
    stripes: Vec<Mutex<()>>,
    /// Serialises changes to queues and assignments, so positions and capacity hold.
    pub(super) queue_lock: Mutex<()>,
    /// A message this soon after a close reopens the conversation (zero: never).
    pub(super) reopen_within: chrono::Duration,
    /// Waiting conversations go to available agents by themselves (`assign.rs`).
    pub(super) auto_assign: bool,
    /// The optional LLM (`[llm]`).
    pub(super) llm: Option<crate::llm::LlmHandle>,
    /// LLM answers being written, by conversation: an agent who takes the conversation
    /// cancels its answer, so the bot never speaks after the agent.
    pub(super) llm_in_flight: std::sync::Mutex<HashMap<ConversationId, (u64, CancellationToken)>>,
    /// This desk, for work that outlives the turn that starts it (LLM answers, summaries).
    pub(super) me: Weak<Inner>,
    /// Where this node's events go to be published to the other nodes (`nodes.rs`).
    pub(super) outgoing: std::sync::OnceLock<super::nodes::Outgoing>,
    /// The `[survey]` settings (`survey.rs`), set once after start; unset: the defaults.
    pub(super) survey: std::sync::OnceLock<crate::config::SurveyConfig>,
}

impl Inner {
    /// The state of a desk built from `parts` (`parts.engine` went into `router`).
    pub(super) fn new(parts: DeskParts, router: Router<Job>, me: Weak<Inner>) -> Inner {
        Inner {
            dialogue: parts.dialogue.with_ledger(parts.store.clone()),
            store: parts.store,
            nlu: parts.nlu,
            rules: std::sync::RwLock::new(Arc::new(parts.rules)),
            agents: parts
                .agents
                .into_iter()
                .map(|a| (a.name.clone(), a))
                .collect(),
            events: broadcast::channel(4096).0,
            router,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            queue_lock: Mutex::new(()),
            reopen_within: chrono::Duration::minutes(
                parts.engine.reopen_within_mins.min(525_600) as i64
            ),
            auto_assign: parts.engine.auto_assign,
            llm: parts.llm,
            llm_in_flight: std::sync::Mutex::new(HashMap::new()),
            me,
            outgoing: std::sync::OnceLock::new(),
            survey: std::sync::OnceLock::new(),
        }
    }

    /// The stripe (lock index) of the customer with this channel identity key: FNV-1a,
    /// the same on every node and every version.
    fn stripe_index(identity_key: &str) -> usize {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in identity_key.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        (h % STRIPES as u64) as usize
    }

    /// Takes `local`, then (on a shared store) lease `name`, within [`LOCK_WAIT`].
    async fn hold<'a>(
        &self,
        local: &'a Mutex<()>,
        name: String,
        what: &'static str,
    ) -> Result<Held<'a>, DeskError> {
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        let guard = bounded(local, what).await?;
        if !self.store.shared() {
            return Ok(Held {
                _local: guard,
                lease: None,
                renewal: None,
            });
        }
        let n = HOLDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let holder = format!("{}/{n}", self.store.node());
        let mut pause = std::time::Duration::from_millis(2);
        loop {
            if self.store.take_lease(&name, &holder, LEASE_TTL).await? {
                let (store, lease, me) = (self.store.clone(), name.clone(), holder.clone());
                let renewal = tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(LEASE_TTL / 3).await;
                        if let Err(e) = store.take_lease(&lease, &me, LEASE_TTL).await {
                            tracing::warn!(lease = %lease, error = %e, "cannot renew a lock's lease");
                        }
                    }
                });
                return Ok(Held {
                    _local: guard,
                    lease: Some((self.store.clone(), name, holder)),
                    renewal: Some(renewal),
                });
            }
            if tokio::time::Instant::now() + pause > deadline {
                tracing::error!(lock = what, lease = %name, "another node held the lock too long");
                return Err(DeskError::Unavailable(Unavailable::LockTimeout(what)));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_millis(50));
        }
    }

    /// Locks the customer with this channel identity key (bounded wait).
    pub(super) async fn lock_customer(&self, identity_key: &str) -> Result<Held<'_>, DeskError> {
        let i = Self::stripe_index(identity_key);
        self.hold(&self.stripes[i], format!("stripe:{i}"), "a conversation")
            .await
    }

    /// Locks two customers in the global order (lower stripe first); one guard when both
    /// share a stripe.
    pub(super) async fn lock_two_customers(
        &self,
        a: &str,
        b: &str,
    ) -> Result<(Held<'_>, Option<Held<'_>>), DeskError> {
        let (i, j) = (Self::stripe_index(a), Self::stripe_index(b));
        let (low, high) = (i.min(j), i.max(j));
        let first = self
            .hold(
                &self.stripes[low],
                format!("stripe:{low}"),
                "a conversation",
            )
            .await?;
        let second = if high == low {
            None
        } else {
            Some(
                self.hold(
                    &self.stripes[high],
                    format!("stripe:{high}"),
                    "a conversation",
                )
                .await?,
            )
        };
        Ok((first, second))
    }

    /// Locks the queues and assignments (after any customer lock; bounded wait).
    pub(super) async fn lock_queues(&self) -> Result<Held<'_>, DeskError> {
        self.hold(&self.queue_lock, "queues".into(), "the queues")
            .await
    }

    /// Cancels the LLM answer being written for `id`, if any (an agent takes over).
    pub(super) fn cancel_llm(&self, id: &ConversationId) {
        let token = self
            .llm_in_flight
            .lock()
            .expect("llm_in_flight lock")
            .remove(id);
        if let Some((_, token)) = token {
            token.cancel();
            tracing::info!(conversation = %id, "LLM answer cancelled: an agent took over");
        }
    }

    /// The rules in force now.
    pub(super) fn rules(&self) -> Arc<Rules> {
        self.rules.read().expect("rules lock").clone()
    }

    /// Puts `rules` in force for every turn that starts from now on.
    pub(super) fn set_rules(&self, rules: Rules) {
        *self.rules.write().expect("rules lock") = Arc::new(rules);
    }

    /// Tells the live views what happened to a conversation.
    pub(super) fn emit(&self, conversation_id: &ConversationId, kind: DeskEventKind) {
        // Nobody listening is fine: events are a live view, the store is the record.
        let event = DeskEvent {
            conversation_id: conversation_id.clone(),
            kind,
        };
        if let Some(others) = self.outgoing.get() {
            others.send(&event);
        }
        let _ = self.events.send(event);
    }

    /// The "you are now number N" notices of the chat-platform customers among `moved`, as
    /// outbox messages to write with the change that moved them (the widget's customers
    /// see [`Inner::announce`]'s events).
    pub(super) async fn position_notices(
        &self,
        moved: &[(ConversationId, usize)],
    ) -> Result<Vec<crate::message::Outbound>, DeskError> {
        let mut out = Vec::new();
        for (id, position) in moved {
            let Some(r) = self.store.conversation(id).await? else {
                continue;
            };
            if crate::store::has_outbox(r.channel) {
                out.push(crate::message::Outbound {
                    conversation_id: id.clone(),
                    channel: r.channel,
                    channel_user: r.channel_user,
                    text: super::copy::queue_position(*position),
                    from: crate::message::Speaker::Bot,
                    time: chrono::Utc::now(),
                    turn: None,
                    survey: None,
                });
            }
        }
        Ok(out)
    }

    /// Tells each waiting customer of `queue` their (new) position.
    pub(super) fn announce(&self, queue: &str, positions: Vec<(ConversationId, usize)>) {
        for (id, position) in positions {
            self.emit(
                &id,
                DeskEventKind::QueuePosition {
                    queue: queue.to_string(),
                    position,
                },
            );
        }
    }
}

/// Waits at most [`LOCK_WAIT`] for `lock`.
async fn bounded<'a>(
    lock: &'a Mutex<()>,
    what: &'static str,
) -> Result<tokio::sync::MutexGuard<'a, ()>, DeskError> {
    match tokio::time::timeout(LOCK_WAIT, lock.lock()).await {
        Ok(guard) => Ok(guard),
        Err(_) => {
            tracing::error!(
                lock = what,
                "lock wait timed out; the caller gets an error instead of hanging"
            );
            Err(DeskError::Unavailable(Unavailable::LockTimeout(what)))
        }
    }
}
