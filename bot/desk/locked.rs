//! One conversation changed under its locks: the conversation's (its customer's) and the
//! queues', with the store change applied and flushed, the live views told and the waiting
//! customers given their new places ([`locked_action`]; [`agent_action`] when an agent
//! acts). And the two changes agents, auto-assignment, presence and the idle watcher share:
//! a claim ([`take`]) and a conversation put back in its queue ([`back_to_queue`]).

use chrono::{DateTime, Utc};

use super::copy;
use super::error::DeskError;
use super::inner::Inner;
use super::queue::{position, positions};
use super::record::push_message;
use super::types::DeskEventKind;
use crate::message::{ConversationId, Speaker, Status};
use crate::store::{Change, ConversationRecord, Customer, MilestoneKind, QueueEntry};

/// What an action may change: the conversation, the store change that goes with it, the
/// events to tell once it is stored; it sees the queues as they were before.
pub(super) struct Action<'a> {
    pub(super) record: &'a mut ConversationRecord,
    pub(super) change: &'a mut Change,
    pub(super) events: &'a mut Vec<DeskEventKind>,
    pub(super) entries: &'a [QueueEntry],
    /// Every (agent, conversation) claim, read under the queues' lock.
    pub(super) assignments: &'a [(String, ConversationId)],
    /// The conversation's customer, read under its lock.
    pub(super) customer: Option<&'a Customer>,
}

/// Loads conversation `id` and locks it (and the queues) for `agent`'s action `act`, then
/// stores and flushes the change, tells the live views, and gives the queue `act` touched
/// (if any) its new positions. Returns the conversation as stored.
pub(super) async fn agent_action<F>(
    inner: &Inner,
    agent: &str,
    id: &ConversationId,
    act: F,
) -> Result<ConversationRecord, DeskError>
where
    F: FnOnce(&Inner, Action<'_>) -> Result<Option<String>, DeskError>,
{
    require_agent(inner, agent)?;
    locked_action(inner, id, act).await
}

/// `agent` is one of this desk's agents.
pub(super) fn require_agent(inner: &Inner, agent: &str) -> Result<(), DeskError> {
    match inner.agents.contains_key(agent) {
        true => Ok(()),
        false => Err(DeskError::Forbidden(format!(
            "{agent} is not an agent of this desk"
        ))),
    }
}

/// [`agent_action`] for the desk itself (a timer): the same locks, store, flush and news.
pub(super) async fn locked_action<F>(
    inner: &Inner,
    id: &ConversationId,
    act: F,
) -> Result<ConversationRecord, DeskError>
where
    F: FnOnce(&Inner, Action<'_>) -> Result<Option<String>, DeskError>,
{
    let first = inner
        .store
        .conversation(id)
        .await?
        .ok_or(DeskError::NotFound)?;
    // An agent acts: an LLM answer still being written would talk over them.
    inner.cancel_llm(id);
    let _conversation_guard = inner.lock_customer(&first.identity().key()).await?;
    let _queue_guard = inner.lock_queues().await?;
    let mut record = inner
        .store
        .conversation(id)
        .await?
        .ok_or(DeskError::NotFound)?;
    let entries = inner.store.queue_entries().await?;
    let assignments = inner.store.assignments().await?;
    let customer = inner.store.customer(&record.customer).await?;
    let mut change = Change::default();
    let mut events = Vec::new();
    let touched_queue = act(
        inner,
        Action {
            record: &mut record,
            change: &mut change,
            events: &mut events,
            entries: &entries,
            assignments: &assignments,
            customer: customer.as_ref(),
        },
    )?;
    record.updated = Utc::now();
    change.conversations.push(record.clone());
    // Positions after the change, for the customers still waiting.
    let mut after = entries;
    after.retain(|e| {
        !change
            .dequeue
            .iter()
            .any(|(q, c)| &e.queue == q && &e.conversation_id == c)
    });
    after.extend(change.enqueue.iter().cloned());
    let moved = touched_queue.as_ref().map(|q| (q, positions(&after, q)));
    if let Some((_, moved)) = &moved {
        let notices = inner.position_notices(moved).await?;
        change.outbox.extend(notices);
    }
    inner.store.apply(change).await?;
    inner.store.flush().await?;
    for kind in events {
        inner.emit(id, kind);
    }
    if let Some((q, moved)) = moved {
        inner.announce(q, moved);
    }
    Ok(record)
}

/// `agent` takes the waiting conversation of `a` if they have room (the one path of a claim
/// and of auto-assignment, `auto`, under the same locks). Returns the queue it left.
pub(super) fn take(
    inner: &Inner,
    a: Action<'_>,
    agent: &str,
    auto: bool,
) -> Result<Option<String>, DeskError> {
    let r = a.record;
    if r.status != Status::Queued {
        return Err(DeskError::Conflict(match &r.assigned_agent {
            Some(owner) => format!("the conversation is already with {owner}"),
            None => format!("the conversation is not waiting (it is {})", r.status),
        }));
    }
    let config = &inner.agents[agent];
    let active = a
        .assignments
        .iter()
        .filter(|(name, _)| name == agent)
        .count();
    if active >= config.capacity {
        return Err(DeskError::Conflict(format!(
            "{agent} already has {active} conversations (capacity {})",
            config.capacity
        )));
    }
    let queue = r.queue.clone().unwrap_or_default();
    a.change.dequeue.push((queue.clone(), r.id.clone()));
    a.change.assign.push((agent.to_string(), r.id.clone()));
    r.status = Status::WithAgent;
    r.assigned_agent = Some(agent.to_string());
    r.last_agent_at = Some(Utc::now());
    r.note(
        Utc::now(),
        MilestoneKind::Claimed {
            agent: agent.to_string(),
            auto,
        },
    );
    let hello = copy::agent_joined(config.display());
    push_message(r, a.change, Speaker::Bot, &hello, Utc::now(), None);
    a.events.push(DeskEventKind::StatusChanged {
        status: Status::WithAgent,
    });
    a.events.push(DeskEventKind::BotReply { text: hello });
    Ok(Some(queue))
}

/// Takes `r` from `agent` and puts it back in its queue (keeping its place), with the
/// bot's note to the customer. `entries` are the queues before; returns the queue.
pub(super) fn back_to_queue(
    r: &mut ConversationRecord,
    change: &mut Change,
    entries: &[QueueEntry],
    events: &mut Vec<DeskEventKind>,
    agent: &str,
    now: DateTime<Utc>,
) -> String {
    let queue = r.queue.clone().unwrap_or_else(|| "general".into());
    change.unassign.push((agent.to_string(), r.id.clone()));
    let entry = QueueEntry {
        queue: queue.clone(),
        conversation_id: r.id.clone(),
        customer: r.customer.clone(),
        channel: r.channel,
        priority: r.priority,
        enqueued_at: r.queued_since.unwrap_or(now),
        reasons: r.escalation.clone(),
        anonymous: r.anonymous_in_queue,
        origin: r.origin,
        left_for_opening: None,
    };
    let mut after = entries.to_vec();
    after.push(entry.clone());
    change.enqueue.push(entry);
    r.status = Status::Queued;
    r.assigned_agent = None;
    r.queue = Some(queue.clone());
    r.queued_since = Some(r.queued_since.unwrap_or(now));
    r.note(
        now,
        MilestoneKind::Requeued {
            agent: agent.to_string(),
        },
    );
    let text = copy::agent_idle_requeued(position(&after, &queue, &r.id));
    push_message(r, change, Speaker::Bot, &text, now, None);
    events.push(DeskEventKind::StatusChanged {
        status: Status::Queued,
    });
    events.push(DeskEventKind::BotReply { text });
    queue
}
