//! The desk's live events across the nodes of a shared store: every event this node emits
//! is published to the others (in order, by one task), and the others' events are emitted
//! here, so an agent's console or a widget socket on any node sees what any node did.
//! Nothing runs on a store no other node shares (sled).

use std::sync::{Arc, Weak};

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{broadcast::error::RecvError, mpsc};

use super::inner::Inner;
use super::types::DeskEvent;
use crate::store::{StoreError, RESYNC};

/// Events published together (those waiting when the publisher woke, up to one NOTIFY's
/// size), and the node they came from.
#[derive(Serialize, Deserialize)]
struct Published {
    node: String,
    events: Vec<DeskEvent>,
}

/// A batch stops growing past this many bytes of JSON (a NOTIFY takes at most 8,000).
const BATCH_BYTES: usize = 6_000;

/// Events waiting to be published, at most: a database that cannot keep up costs this much
/// memory, no more. What does not fit is dropped, and the other nodes' views are told to
/// read everything again instead.
const WAITING: usize = 4_096;

/// This node's events on their way to the other nodes.
pub(super) struct Outgoing {
    queue: mpsc::Sender<DeskEvent>,
    dropped: Arc<AtomicBool>,
}

impl Outgoing {
    pub(super) fn send(&self, event: &DeskEvent) {
        if self.queue.try_send(event.clone()).is_err() {
            self.dropped.store(true, Ordering::Relaxed);
        }
    }
}

/// Publishes `event` to the other nodes now, on a shared store (a delivery that is marked
/// done only once the others were told; other events go through the publisher's queue).
pub(super) async fn publish_now(inner: &Inner, event: &DeskEvent) -> Result<(), StoreError> {
    if !inner.store.shared() {
        return Ok(());
    }
    let published = Published {
        node: inner.store.node().to_string(),
        events: vec![event.clone()],
    };
    let text = serde_json::to_string(&published).expect("events serialise");
    inner.store.publish(&text).await
}

/// Starts the publisher and the listener of `inner`'s desk, when its store is shared.
pub(super) fn start(inner: &Arc<Inner>) {
    let store = inner.store.clone();
    if !store.shared() {
        return;
    }
    let node = store.node().to_string();
    let (tx, mut rx) = mpsc::channel::<DeskEvent>(WAITING);
    let dropped = Arc::new(AtomicBool::new(false));
    let _ = inner.outgoing.set(Outgoing {
        queue: tx,
        dropped: dropped.clone(),
    });
    let publisher_store = store.clone();
    let publisher_node = node.clone();
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            // One NOTIFY for what piled up meanwhile: a turn emits several events at once.
            let mut events = vec![first];
            let mut bytes = 0;
            while bytes < BATCH_BYTES {
                let Ok(next) = rx.try_recv() else { break };
                bytes += serde_json::to_string(&next).map_or(0, |t| t.len());
                events.push(next);
            }
            let batch = Published {
                node: publisher_node.clone(),
                events,
            };
            let Ok(text) = serde_json::to_string(&batch) else {
                continue;
            };
            // Too large together: one at a time (an event too large alone is logged by the
            // store and not sent; the other nodes' views show it on their next read).
            let mut payloads = match text.len() <= BATCH_BYTES + 1_000 || batch.events.len() == 1 {
                true => vec![text],
                false => batch
                    .events
                    .into_iter()
                    .filter_map(|event| {
                        serde_json::to_string(&Published {
                            node: publisher_node.clone(),
                            events: vec![event],
                        })
                        .ok()
                    })
                    .collect(),
            };
            if dropped.swap(false, Ordering::Relaxed) {
                tracing::warn!("events came faster than the database took them; the other nodes' views read again");
                payloads.push(RESYNC.to_string());
            }
            for text in payloads {
                if let Err(e) = publisher_store.publish(&text).await {
                    tracing::warn!(error = %e, "cannot tell the other nodes about an event");
                }
            }
        }
    });
    let mut published = store.published();
    let desk: Weak<Inner> = Arc::downgrade(inner);
    tokio::spawn(async move {
        loop {
            let text = match published.recv().await {
                Ok(text) => text,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "fell behind the other nodes' events");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let Some(inner) = desk.upgrade() else {
                return;
            };
            if text == RESYNC {
                tracing::warn!(
                    "events of other nodes may have been missed; every live view reads again"
                );
                let _ = inner.events.send(DeskEvent {
                    conversation_id: crate::message::ConversationId(String::new()),
                    kind: super::types::DeskEventKind::Resync,
                });
                continue;
            }
            match serde_json::from_str::<Published>(&text) {
                Ok(p) if p.node != node => {
                    for event in p.events {
                        let _ = inner.events.send(event);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "an event from another node is unreadable"),
            }
        }
    });
}
