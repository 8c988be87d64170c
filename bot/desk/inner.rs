//! The desk's shared state, private to `desk/`: the store, the NLU, the answers and rules,
//! the agents, the live-event channel, the conversation workers, and the two locks that
//! keep changes consistent.
//!
//! Lock order: a conversation's stripe first, then `queue_lock`. A turn takes its stripe for
//! the whole turn and `queue_lock` only from the queue decision until the change is applied.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use tokio::sync::{broadcast, oneshot, Mutex};

use super::dialogue::Dialogue;
use super::error::DeskError;
use super::router::Router;
use super::types::{DeskEvent, DeskEventKind, DeskParts, Turn, Understand};
use crate::config::AgentConfig;
use crate::message::{ConversationId, Inbound};
use crate::policy::Rules;
use crate::store::Store;

/// One customer message for a worker, and where to send what became of it.
pub(super) type Job = (Inbound, oneshot::Sender<Result<Turn, DeskError>>);

const STRIPES: usize = 256;

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
}

impl Inner {
    /// The state of a desk built from `parts` (`parts.engine` went into `router`).
    pub(super) fn new(parts: DeskParts, router: Router<Job>) -> Inner {
        Inner {
            store: parts.store,
            nlu: parts.nlu,
            dialogue: parts.dialogue,
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
        }
    }

    /// The lock of the customer with this channel identity key.
    pub(super) fn stripe(&self, identity_key: &str) -> &Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        identity_key.hash(&mut h);
        &self.stripes[(h.finish() % STRIPES as u64) as usize]
    }

    /// Tells the live views what happened to a conversation.
    pub(super) fn emit(&self, conversation_id: &ConversationId, kind: DeskEventKind) {
        // Nobody listening is fine: events are a live view, the store is the record.
        let _ = self.events.send(DeskEvent {
            conversation_id: conversation_id.clone(),
            kind,
        });
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
