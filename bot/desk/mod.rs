//! The desk: the conversation engine, and the one handle ([`Desk`]) that the server and
//! the channels use to run conversations.
//!
//! Files:
//! - `mod.rs`: the [`Desk`] handle: start, receive, subscribe, queries, and the agents'
//!   actions (each a call into the file that does it).
//! - `types.rs`: what the desk hands out and takes in ([`Turn`], [`DeskEvent`], views,
//!   [`Conversation`], [`DeskParts`], [`Understand`]); `error.rs`: [`DeskError`].
//! - `inner.rs`: the shared state, private to this folder, with its locks (a stripe per
//!   customer, then one lock for the queues: always in that order).
//! - `router.rs`: per-customer ordered workers with bounded inboxes (backpressure).
//! - `turn.rs`: one customer turn. `dialogue.rs`: the intents' answers and slot filling,
//!   order privacy (an order only for its verified owner, else the email/postcode check)
//!   and the yes that cancellations and refunds need.
//!   `frustration.rs`: the conversation's frustration score and its reasons (pure).
//!   The escalation rules are `crate::policy`.
//! - `queue.rs`: pure queue order and positions. `views.rs`: what the console reads.
//! - `agent.rs`: claim, reply, hand back, close. `idle.rs`: silent agents lose the
//!   conversation back to its queue. `delivery.rs`: replies a platform refused for good.
//!   `identity.rs`: one customer across channels (`/link`). `orphans.rs`: conversations of
//!   agents removed from the config go back to their queue at start.
//! - `assign.rs`: auto-assignment (waiting conversations to the available agent with the
//!   most room, in turn among equals). `presence.rs`: who is available; going away hands
//!   an agent's conversations back to their queues.
//! - `llm_turn.rs`: the LLM's part of a turn (`[llm]`): a question the intents cannot
//!   answer, after the rules let it through, is answered off the worker and stored only if
//!   the bot still owns the conversation. `grounding.rs`: what an LLM task may be told
//!   about a conversation. `assist.rs`: LLM summaries, suggested and canned replies.
//! - `copy.rs`: every sentence the bot says on its own. `record.rs`: transcript helpers.
//! - `live.rs`: the rules and intents the lead's cockpit swaps while the desk runs.
//!   `feedback.rs`: agents' marks on escalations and bot answers.
//!
//! One turn ([`Desk::receive`]): the router hands the message to the customer's worker, so
//! one customer's messages are handled in order. `turn::handle` then validates the text,
//! locks the customer, loads the customer and their open conversation (or starts one), asks
//! the NLU, records the message, and decides: the bot answers, the conversation goes to a
//! queue, a waiting customer is told their place, or (an agent owns it) the bot stays
//! silent. Everything the turn changed is stored as one change and flushed before the
//! caller gets the [`Turn`]; then the live views get the events ([`Desk::subscribe`]) and
//! the other waiting customers their new positions.

mod agent;
mod assign;
pub mod assist;
mod availability;
pub mod copy;
mod customer;
mod delivery;
mod dialogue;
mod error;
mod feedback;
mod for_agents;
pub mod frustration;
mod frustration_words;
pub mod grounding;
mod identity;
mod idle;
mod inner;
mod live;
mod llm_turn;
mod locked;
mod nodes;
pub mod notice;
mod orphans;
mod presence;
pub mod queue;
mod record;
mod router;
mod rules;
pub mod summary;
pub mod survey;
mod turn;
mod types;
mod views;
mod waiting;

use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{broadcast, oneshot};

use crate::config::{AgentConfig, EngineConfig};
use crate::message::{ChannelKind, ConversationId, Identity, Inbound, Status};
use inner::{Inner, Job};
use router::{RouteError, Router};

pub use dialogue::{slot_value, Dialogue};
pub use error::{DeskError, Unavailable};
pub use identity::{
    new_code, normalise_code, parse_link_command, LinkCommand, LinkError, CODE_TTL,
    LINK_FAILURES_ALLOWED, LINK_FAILURES_OVERALL, LINK_FAILURES_PER_ADDRESS, LINK_FAILURE_WINDOW,
};
pub use presence::Availability;
pub use types::{
    AgentView, Conversation, DeskEvent, DeskEventKind, DeskParts, QueueEntryView, QueueSlot,
    QueueView, Reply, Turn, Understand,
};

/// A fresh id for a customer's turn ([`Turn::id`]).
pub fn new_turn_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The engine handle: cheap to clone, shared by every channel and the console.
#[derive(Clone)]
pub struct Desk {
    inner: Arc<Inner>,
}

impl Desk {
    /// Starts a desk on its parts (`crate::app::open_desk` loads them from the config):
    /// the conversation workers and the idle-agent watcher. Needs a tokio runtime.
    pub fn open_with(parts: DeskParts) -> Desk {
        let engine = parts.engine.clone();
        for line in assign::unknown_queues(&parts.agents, &parts.rules) {
            tracing::error!("{line}");
        }
        let inner = Arc::new_cyclic(|desk: &Weak<Inner>| {
            Inner::new(parts, start_workers(desk.clone(), &engine), desk.clone())
        });
        idle::spawn_watch(Arc::downgrade(&inner), engine.agent_idle_secs);
        if !inner.agents.is_empty() {
            availability::spawn_watch(Arc::downgrade(&inner));
        }
        nodes::start(&inner);
        Desk { inner }
    }

    /// Handles one customer message. Returns once it is durably stored and handled (the
    /// bot's answer or the queue placement); messages of one customer are handled in order.
    pub async fn receive(&self, msg: Inbound) -> Result<Turn, DeskError> {
        self.dispatch(msg, true).await
    }

    /// Like [`Desk::receive`], but returns once the message is stored: an answer the LLM
    /// is still writing is stored (and, on a chat platform, queued in the outbox) when it
    /// comes. For the chat platforms, whose answers all travel through the outbox: one
    /// customer's question for the model never holds up the next update.
    pub async fn receive_stored(&self, msg: Inbound) -> Result<Turn, DeskError> {
        self.dispatch(msg, false).await
    }

    async fn dispatch(&self, msg: Inbound, wait_answer: bool) -> Result<Turn, DeskError> {
        let (tx, rx) = oneshot::channel();
        let key = msg.identity().key();
        self.inner
            .router
            .dispatch(&key, (msg, wait_answer, tx))
            .await
            .map_err(|e| match e {
                RouteError::Busy => DeskError::Busy,
                RouteError::Stopped => Unavailable::Stopped.into(),
            })?;
        rx.await.map_err(|_| Unavailable::Dropped)?
    }

    /// The optional LLM (`[llm]`), for the console's assist.
    pub fn llm(&self) -> Option<&crate::llm::LlmHandle> {
        self.inner.llm.as_ref()
    }

    /// The help centre, when one is configured.
    pub fn help_centre(&self) -> Option<&Arc<crate::kb::HelpCentre>> {
        self.inner.dialogue.help()
    }

    /// What an LLM task may be told about conversation `id` (transcript, customer, the
    /// orders it may see, the help centre's best passages for `question`, or for the
    /// latest customer message); `None` for an unknown conversation.
    pub async fn grounding(
        &self,
        id: &ConversationId,
        question: Option<&str>,
    ) -> Result<Option<grounding::Grounding>, DeskError> {
        let Some(record) = self.inner.store.conversation(id).await? else {
            return Ok(None);
        };
        let customer = self.inner.store.customer(&record.customer).await?;
        Ok(Some(
            grounding::gather(&self.inner, &record, customer.as_ref(), question, None).await?,
        ))
    }

    /// Live events of every conversation.
    pub fn subscribe(&self) -> broadcast::Receiver<DeskEvent> {
        self.inner.events.subscribe()
    }

    pub async fn queues(&self) -> Result<Vec<QueueView>, DeskError> {
        views::queues(&self.inner, Utc::now()).await
    }

    pub async fn conversation(
        &self,
        id: &ConversationId,
    ) -> Result<Option<Conversation>, DeskError> {
        views::conversation(&self.inner, id).await
    }

    /// The conversation this channel user writes into now (none once it is closed).
    pub async fn conversation_of(
        &self,
        channel: ChannelKind,
        channel_user: &str,
    ) -> Result<Option<ConversationId>, DeskError> {
        let identity = Identity::new(channel, channel_user);
        Ok(self.inner.store.open_conversation(&identity).await?)
    }

    /// Where a queued conversation stands in its queue (position 0 when the queues cannot
    /// be read); `None` unless it waits.
    pub async fn queue_slot(&self, c: &Conversation) -> Option<QueueSlot> {
        let name = c.queue.clone().filter(|_| c.status == Status::Queued)?;
        let position = self
            .queues()
            .await
            .ok()
            .and_then(|qs| {
                qs.into_iter()
                    .find(|q| q.name == name)?
                    .entries
                    .into_iter()
                    .find(|e| e.conversation_id == c.id)
                    .map(|e| e.position)
            })
            .unwrap_or(0);
        Some(QueueSlot { name, position })
    }

    pub async fn agents(&self) -> Vec<AgentView> {
        views::agents(&self.inner).await
    }

    /// The agent's configuration (password hash included), for the console's login.
    pub fn agent(&self, name: &str) -> Option<&AgentConfig> {
        self.inner.agents.get(name)
    }

    /// Shows one piece of an outbox record to the widget customer's open sockets on every
    /// node (the widget's courier calls it; see [`crate::channels::widget`]).
    pub async fn show_line(
        &self,
        message: &crate::message::Outbound,
        text: &str,
        key: &str,
    ) -> Result<(), DeskError> {
        delivery::show_line(&self.inner, message, text, key).await
    }

    /// Queues `message` in the outbox outside a turn (the answer to a link command, which
    /// belongs to no conversation) and returns once it is durable.
    pub async fn queue_reply(&self, message: crate::message::Outbound) -> Result<(), DeskError> {
        self.inner.store.queue_outbox(message).await?;
        Ok(self.inner.store.flush().await?)
    }

    /// The store's engine, this node's name among those sharing it, and the leases held
    /// now (by any node), for `/health`.
    pub async fn nodes(
        &self,
    ) -> (
        &'static str,
        String,
        Result<Vec<crate::store::Lease>, DeskError>,
    ) {
        let store = &self.inner.store;
        let leases = store.leases().await.map_err(DeskError::from);
        (store.engine(), store.node().to_string(), leases)
    }

    /// Makes everything stored so far durable.
    pub async fn flush(&self) -> Result<(), DeskError> {
        Ok(self.inner.store.flush().await?)
    }

    /// Puts back in their queue the conversations of agents no longer in the config
    /// (called at start). Returns the conversations moved.
    /// Takes out of their queues the anonymous chats whose customer has not written for
    /// `ttl` by `now` (the desk does this by itself every few seconds with
    /// `queue::ANONYMOUS_QUEUE_TTL`). Returns them.
    pub async fn expire_anonymous_queued(
        &self,
        ttl: std::time::Duration,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<ConversationId>, DeskError> {
        idle::expire_anonymous(&self.inner, ttl, now).await
    }

    pub async fn requeue_orphans(&self) -> Result<Vec<ConversationId>, DeskError> {
        orphans::requeue_orphans(&self.inner).await
    }

    /// Answers, with the bot's own answer, the questions whose LLM answer was being written
    /// when the process stopped (called at start). Returns how many were answered.
    pub async fn answer_stranded(&self) -> Result<usize, DeskError> {
        llm_turn::answer_stranded(&self.inner).await
    }

    /// Records on conversation `id` that `text` could not be delivered on `channel`
    /// because of `error`, and tells the live views.
    pub async fn record_delivery_failure(
        &self,
        id: &ConversationId,
        channel: ChannelKind,
        text: &str,
        error: &str,
    ) -> Result<(), DeskError> {
        delivery::record_failure(&self.inner, id, channel, text, error).await
    }

    /// The answer to a link command in `msg`, or `None` when the message is not one.
    pub async fn link_command(&self, msg: &Inbound) -> Option<String> {
        identity::link_command(&self.inner, msg).await
    }

    /// A fresh link code for `identity`, durable before it is returned.
    pub async fn issue_link_code(&self, identity: &Identity) -> Result<String, DeskError> {
        identity::issue_link_code(&self.inner, identity).await
    }

    /// Uses up `code` and files `identity` under the customer who asked for it. Returns
    /// the identity that asked for the code. `origin`: the network address the code came
    /// from, budgeted with every other wrong code from there.
    pub async fn redeem_link_code(
        &self,
        code: &str,
        identity: &Identity,
        origin: Option<std::net::IpAddr>,
    ) -> Result<Identity, LinkError> {
        identity::redeem_link_code(&self.inner, code, identity, origin).await
    }

    /// The outcome of inbound message `message_id` of `identity`, if it was handled.
    pub async fn seen(
        &self,
        identity: &Identity,
        message_id: &str,
    ) -> Result<Option<Turn>, DeskError> {
        match self.inner.store.seen_inbound(identity, message_id).await? {
            Some(v) => Ok(serde_json::from_value(v).ok()),
            None => Ok(None),
        }
    }

    /// Files `other` under the customer of `owner` (or, if `owner` never wrote, `owner`
    /// under the customer of `other`), durably. Returns the customer id, or `None` when
    /// neither identity has written yet. Linking an identity with itself is `Invalid`.
    pub async fn link_identity(
        &self,
        owner: &Identity,
        other: &Identity,
    ) -> Result<Option<String>, DeskError> {
        identity::link_identity(&self.inner, owner, other).await
    }
}

/// The conversation workers: each runs its customers' turns one at a time. They hold the
/// desk weakly, so dropping the last `Desk` stops them.
fn start_workers(desk: Weak<Inner>, engine: &EngineConfig) -> Router<Job> {
    Router::start(
        engine.workers,
        engine.worker_queue,
        Duration::from_millis(engine.busy_wait_ms),
        move |(msg, wait_answer, reply): Job| {
            let desk = desk.clone();
            async move {
                let Some(inner) = desk.upgrade() else {
                    let _ = reply.send(Err(Unavailable::ShuttingDown.into()));
                    return;
                };
                // "4" or "skip" right after a survey question is its answer (`survey.rs`),
                // taken in the customer's own order like any message.
                match survey::typed_reply(&inner, &msg).await {
                    Ok(None) => {}
                    Ok(Some(turn)) => return drop(reply.send(Ok(turn))),
                    Err(e) => return drop(reply.send(Err(e))),
                }
                match turn::handle(&inner, msg).await {
                    // The LLM's answer is written off the worker: the customers behind
                    // this one do not wait for the model.
                    Ok((stored, Some(job))) => {
                        let reply = match wait_answer {
                            true => Some(reply),
                            false => {
                                let _ = reply.send(Ok(stored));
                                None
                            }
                        };
                        tokio::spawn(async move {
                            let answered = llm_turn::finish(&inner, job).await;
                            if let Err(e) = &answered {
                                tracing::warn!(error = %e, "storing the LLM's answer failed");
                            }
                            if let Ok(Turn {
                                status: Status::Queued,
                                queue: Some(slot),
                                ..
                            }) = &answered
                            {
                                assign::queue_entered(&inner, &slot.name).await;
                            }
                            if let Some(reply) = reply {
                                let _ = reply.send(answered);
                            }
                        });
                    }
                    Ok((turn, None)) => {
                        // Given to an agent with room before the caller hears of it.
                        if let (Status::Queued, Some(slot)) = (turn.status, &turn.queue) {
                            assign::queue_entered(&inner, &slot.name).await;
                        }
                        let _ = reply.send(Ok(turn));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
        },
    )
}

/// The desk is shared by every connection task: it and its futures must cross threads.
#[allow(dead_code)]
fn desk_is_shareable(desk: Desk, id: ConversationId) {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    send_sync(&desk);
    send(desk.receive(Inbound::new(ChannelKind::Web, "u", "hi")));
    send(desk.receive_stored(Inbound::new(ChannelKind::Web, "u", "hi")));
    send(desk.claim("a", &id));
    send(desk.agent_reply("a", &id, "x"));
    send(desk.hand_back("a", &id));
    send(desk.close("a", &id));
    send(desk.set_availability("a", true, None));
    send(desk.check_availability());
}
