//! Conversations stranded by an agent who is no longer in the config: at start each goes
//! back to its queue (keeping its place) for the agents who remain.

use chrono::Utc;

use super::copy;
use super::error::DeskError;
use super::inner::Inner;
use super::queue::{position, positions};
use super::record::push_message;
use super::types::DeskEventKind;
use crate::message::{ConversationId, Speaker, Status};
use crate::store::{Change, QueueEntry};

/// Puts back in their queue the conversations assigned to agents the desk does not know
/// (removed from the config). Returns the conversations moved.
pub(super) async fn requeue_orphans(inner: &Inner) -> Result<Vec<ConversationId>, DeskError> {
    let mut moved = Vec::new();
    for (agent, id) in inner.store.assignments()? {
        if inner.agents.contains_key(&agent) {
            continue;
        }
        let Some(first) = inner.store.conversation(&id)? else {
            // An assignment without its conversation: drop it.
            let mut change = Change::default();
            change.unassign.push((agent.clone(), id.clone()));
            inner.store.apply(change)?;
            continue;
        };
        let _conversation = inner.stripe(&first.identity().key()).lock().await;
        let _queues = inner.queue_lock.lock().await;
        let Some(mut r) = inner.store.conversation(&id)? else {
            continue;
        };
        let now = Utc::now();
        let mut change = Change::default();
        change.unassign.push((agent.clone(), id.clone()));
        let owned = r.status == Status::WithAgent && r.assigned_agent.as_deref() == Some(&agent);
        let mut touched = None;
        let mut events = Vec::new();
        if owned {
            let queue = r.queue.clone().unwrap_or_else(|| "general".into());
            let entry = QueueEntry {
                queue: queue.clone(),
                conversation_id: r.id.clone(),
                customer: r.customer.clone(),
                channel: r.channel,
                priority: r.priority,
                enqueued_at: r.queued_since.unwrap_or(now),
                reasons: r.escalation.clone(),
            };
            let mut after = inner.store.queue_entries()?;
            after.push(entry.clone());
            change.enqueue.push(entry);
            r.status = Status::Queued;
            r.assigned_agent = None;
            r.queue = Some(queue.clone());
            r.queued_since = Some(r.queued_since.unwrap_or(now));
            let text = copy::agent_idle_requeued(position(&after, &queue, &r.id));
            push_message(&mut r, &mut change, Speaker::Bot, &text, now, None);
            events.push(DeskEventKind::StatusChanged {
                status: Status::Queued,
            });
            events.push(DeskEventKind::BotReply { text });
            r.updated = now;
            change.conversations.push(r.clone());
            touched = Some((queue, after));
        }
        inner.store.apply(change)?;
        inner.store.flush().await?;
        for kind in events {
            inner.emit(&id, kind);
        }
        if let Some((queue, after)) = touched {
            inner.announce(&queue, positions(&after, &queue));
            tracing::info!(agent, conversation = %id,
                "agent no longer configured: conversation back in its queue");
            moved.push(id);
        }
    }
    inner.store.flush().await?;
    Ok(moved)
}
