//! Agents who stay silent: when the customer wrote after the agent's last action and that
//! action is older than the limit, the conversation goes back to its queue (at its old
//! place) for another agent. A background task checks a few times per limit.

use std::sync::Weak;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::copy;
use super::error::DeskError;
use super::inner::Inner;
use super::locked::{agent_action, back_to_queue, locked_action, Action};
use super::record::push_message;
use super::types::DeskEventKind;
use crate::message::{ConversationId, Speaker, Status};
use crate::store::ConversationRecord;

/// Puts back in their queue the conversations whose agent has not acted for `idle` while
/// the customer waits for an answer. Returns the conversations moved.
pub(super) async fn reassign_idle(
    inner: &Inner,
    idle: Duration,
    now: DateTime<Utc>,
) -> Result<Vec<ConversationId>, DeskError> {
    let limit = chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::MAX);
    let mut moved = Vec::new();
    for (agent, id) in inner.store.assignments().await? {
        let Some(r) = inner.store.conversation(&id).await? else {
            continue;
        };
        if !is_idle(&r, limit, now) {
            continue;
        }
        let result =
            agent_action(inner, &agent, &id, |_, a| requeue(a, &agent, limit, now)).await?;
        if result.status == Status::Queued {
            tracing::info!(agent, conversation = %id, "idle agent: conversation back in its queue");
            moved.push(id);
            super::availability::idle_agent(inner, &agent).await;
        }
    }
    Ok(moved)
}

/// Takes the conversation from `agent` back to its queue, if it is still theirs and idle.
fn requeue(
    a: Action<'_>,
    agent: &str,
    limit: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<Option<String>, DeskError> {
    let r = a.record;
    // Checked again under the locks: the agent may have just answered.
    if r.assigned_agent.as_deref() != Some(agent) || !is_idle(r, limit, now) {
        return Ok(None);
    }
    let queue = back_to_queue(r, a.change, a.entries, a.events, agent, now);
    Ok(Some(queue))
}

/// The customer wrote after the agent's last action, and that action is older than `limit`.
fn is_idle(r: &ConversationRecord, limit: chrono::Duration, now: DateTime<Utc>) -> bool {
    let Some(last_agent) = r.last_agent_at else {
        return false;
    };
    r.status == Status::WithAgent && r.last_customer_at > last_agent && now - last_agent >= limit
}

/// Takes out of their queue the anonymous chats (see `queue`) whose customer has not written
/// for `ttl`: the bot has them again and tells them how to come back. Returns them.
pub(super) async fn expire_anonymous(
    inner: &Inner,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<Vec<ConversationId>, DeskError> {
    let limit = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    let stale = |r: &ConversationRecord| {
        r.status == Status::Queued && r.anonymous_in_queue && now - r.last_customer_at >= limit
    };
    let mut gone = Vec::new();
    for entry in inner.store.queue_entries().await? {
        if !entry.anonymous {
            continue;
        }
        let id = entry.conversation_id;
        match inner.store.conversation(&id).await? {
            Some(r) if stale(&r) => {}
            _ => continue,
        }
        let result = locked_action(inner, &id, |_, a| {
            let r = a.record;
            // Checked again under the locks: the customer may have just written.
            if !stale(r) {
                return Ok(None);
            }
            let queue = r.queue.clone().unwrap_or_default();
            a.change.dequeue.push((queue.clone(), r.id.clone()));
            r.status = Status::Bot;
            r.queued_since = None;
            r.anonymous_in_queue = false;
            let text = copy::queue_expired();
            push_message(r, a.change, Speaker::Bot, &text, now, None);
            a.events.push(DeskEventKind::StatusChanged {
                status: Status::Bot,
            });
            a.events.push(DeskEventKind::BotReply { text });
            Ok(Some(queue))
        })
        .await?;
        if result.status == Status::Bot {
            tracing::info!(conversation = %id, "anonymous chat left its queue after waiting silent");
            gone.push(id);
        }
    }
    Ok(gone)
}

/// Sends the one reminder of the satisfaction surveys left unanswered (`survey.rs`); a
/// failure is logged and tried again at the next tick.
async fn remind_surveys(inner: &Inner, now: DateTime<Utc>) {
    if let Err(e) = super::survey::remind_due(inner, now).await {
        tracing::warn!(error = %e, "survey reminder check failed");
    }
}

/// Background task: checks for idle agents a few times per limit, and for anonymous chats
/// waiting silent, until the desk is dropped.
pub(super) fn spawn_watch(desk: Weak<Inner>, idle_secs: u64) {
    let idle = Duration::from_secs(idle_secs);
    let every = Duration::from_secs((idle_secs / 4).clamp(1, 30));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(inner) = desk.upgrade() else { break };
            // One node runs the timers of a shared store: the holder of the `timers` lease
            // (renewed each tick; another node takes over once it runs out).
            let ttl = (every * 3).max(Duration::from_secs(10));
            let node = inner.store.node().to_string();
            match inner.store.take_lease("timers", &node, ttl).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take the timers' lease; skipping this tick");
                    continue;
                }
            }
            if let Err(e) = reassign_idle(&inner, idle, Utc::now()).await {
                tracing::warn!(error = %e, "idle-agent check failed");
            }
            let ttl = super::queue::ANONYMOUS_QUEUE_TTL;
            if let Err(e) = expire_anonymous(&inner, ttl, Utc::now()).await {
                tracing::warn!(error = %e, "anonymous queue check failed");
            }
            remind_surveys(&inner, Utc::now()).await;
        }
    });
}
