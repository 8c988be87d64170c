//! The desk's shared state, private to `desk/`: the store, the NLU, the answers and rules,
//! the agents, the live-event channel, the conversation workers, and the two locks that
//! keep changes consistent.
//!
//! Lock order, the one global order: customer stripes by ascending index, then `queue_lock`.
//! A turn takes its stripe for the whole turn and `queue_lock` only from the queue decision
//! until the change is applied; linking two identities takes both stripes, lower index first.
//! Every wait is bounded ([`LOCK_WAIT`]): a lock held too long turns into a clear error
//! (`Unavailable::LockTimeout`) for that one caller instead of a hung worker.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Weak};

use tokio::sync::{broadcast, oneshot, Mutex, MutexGuard};
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

pub(super) struct Inner {
    pub(super) store: Arc<dyn Store>,
    pub(super) nlu: Arc<dyn Understand>,
    pub(super) dialogue: Dialogue,
    pub(super) rules: Rules,
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
    /// The optional LLM (`[llm]`).
    pub(super) llm: Option<crate::llm::LlmHandle>,
    /// LLM answers being written, by conversation: an agent who takes the conversation
    /// cancels its answer, so the bot never speaks after the agent.
    pub(super) llm_in_flight: std::sync::Mutex<HashMap<ConversationId, (u64, CancellationToken)>>,
    /// This desk, for work that outlives the turn that starts it (LLM answers, summaries).
    pub(super) me: Weak<Inner>,
}

impl Inner {
    /// The state of a desk built from `parts` (`parts.engine` went into `router`).
    pub(super) fn new(parts: DeskParts, router: Router<Job>, me: Weak<Inner>) -> Inner {
        Inner {
            dialogue: parts.dialogue.with_ledger(parts.store.clone()),
            store: parts.store,
            nlu: parts.nlu,
            rules: parts.rules,
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
            llm: parts.llm,
            llm_in_flight: std::sync::Mutex::new(HashMap::new()),
            me,
        }
    }

    /// The stripe (lock index) of the customer with this channel identity key.
    fn stripe_index(identity_key: &str) -> usize {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        identity_key.hash(&mut h);
        (h.finish() % STRIPES as u64) as usize
    }

    /// Locks the customer with this channel identity key (bounded wait).
    pub(super) async fn lock_customer(
        &self,
        identity_key: &str,
    ) -> Result<MutexGuard<'_, ()>, DeskError> {
        bounded(
            &self.stripes[Self::stripe_index(identity_key)],
            "a conversation",
        )
        .await
    }

    /// Locks two customers in the global order (lower stripe first); one guard when both
    /// share a stripe.
    pub(super) async fn lock_two_customers(
        &self,
        a: &str,
        b: &str,
    ) -> Result<(MutexGuard<'_, ()>, Option<MutexGuard<'_, ()>>), DeskError> {
        let (i, j) = (Self::stripe_index(a), Self::stripe_index(b));
        let (low, high) = (i.min(j), i.max(j));
        let first = bounded(&self.stripes[low], "a conversation").await?;
        let second = if high == low {
            None
        } else {
            Some(bounded(&self.stripes[high], "a conversation").await?)
        };
        Ok((first, second))
    }

    /// Locks the queues and assignments (after any customer lock; bounded wait).
    pub(super) async fn lock_queues(&self) -> Result<MutexGuard<'_, ()>, DeskError> {
        bounded(&self.queue_lock, "the queues").await
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

    /// Tells the live views what happened to a conversation.
    pub(super) fn emit(&self, conversation_id: &ConversationId, kind: DeskEventKind) {
        // Nobody listening is fine: events are a live view, the store is the record.
        let _ = self.events.send(DeskEvent {
            conversation_id: conversation_id.clone(),
            kind,
        });
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
) -> Result<MutexGuard<'a, ()>, DeskError> {
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
