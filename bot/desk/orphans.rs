//! Conversations stranded by an agent who is no longer in the config: at start each goes
//! back to its queue (keeping its place) for the agents who remain.

use chrono::Utc;

use super::error::DeskError;
use super::inner::Inner;
use super::locked::back_to_queue;
use super::queue::positions;
use crate::message::{ConversationId, Status};
use crate::store::Change;

/// Puts back in their queue the conversations assigned to agents the desk does not know
/// (removed from the config). Returns the conversations moved.
pub(super) async fn requeue_orphans(inner: &Inner) -> Result<Vec<ConversationId>, DeskError> {
    let mut moved = Vec::new();
    for (agent, id) in inner.store.assignments().await? {
        if inner.agents.contains_key(&agent) {
            continue;
        }
        let Some(first) = inner.store.conversation(&id).await? else {
            // An assignment without its conversation: drop it.
            let mut change = Change::default();
            change.unassign.push((agent.clone(), id.clone()));
            inner.store.apply(change).await?;
            continue;
        };
        let _conversation = inner.lock_customer(&first.identity().key()).await?;
        let _queues = inner.lock_queues().await?;
        let Some(mut r) = inner.store.conversation(&id).await? else {
            continue;
        };
        let now = Utc::now();
        let mut change = Change::default();
        change.unassign.push((agent.clone(), id.clone()));
        let owned = r.status == Status::WithAgent && r.assigned_agent.as_deref() == Some(&agent);
        let mut touched = None;
        let mut events = Vec::new();
        if owned {
            let entries = inner.store.queue_entries().await?;
            let queue = back_to_queue(&mut r, &mut change, &entries, &mut events, &agent, now);
            r.updated = now;
            change.conversations.push(r.clone());
            let mut after = entries;
            after.extend(change.enqueue.iter().cloned());
            let now_at = positions(&after, &queue);
            change.outbox.extend(inner.position_notices(&now_at).await?);
            touched = Some((queue, now_at));
        }
        inner.store.apply(change).await?;
        inner.store.flush().await?;
        for kind in events {
            inner.emit(&id, kind);
        }
        if let Some((queue, now_at)) = touched {
            inner.announce(&queue, now_at);
            tracing::info!(agent, conversation = %id,
                "agent no longer configured: conversation back in its queue");
            moved.push(id.clone());
        }
    }
    inner.store.flush().await?;
    Ok(moved)
}
