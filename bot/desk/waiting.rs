//! A turn's queue steps: joining a queue (who may join, and the place they are told) and
//! writing while waiting (their place again, and a higher priority when they get angrier).

use chrono::{DateTime, Utc};

use super::copy;
use super::error::DeskError;
use super::inner::Inner;
use super::queue;
use super::rules::ask_rules;
use super::turn::{cap_front, Outcome, KEPT_PER_RECORD};
use super::types::{DeskEventKind, QueueSlot};
use crate::message::{ConversationId, Status};
use crate::nlu::Analysis;
use crate::policy::Escalation;
use crate::store::{ConversationRecord, Customer, MilestoneKind, QueueEntry};

/// The conversation goes to the escalation's queue; the customer is told their place and
/// everyone behind moves down one.
pub(super) async fn escalate<'a>(
    inner: &'a Inner,
    record: &mut ConversationRecord,
    customer: &Customer,
    escalation: Escalation,
    out: &mut Outcome<'a>,
    now: DateTime<Utc>,
) -> Result<(), DeskError> {
    // A person will answer: an LLM answer still being written for it is not wanted.
    inner.cancel_llm(&record.id);
    out.queue_guard = Some(inner.lock_queues().await?);
    let name = escalation.queue;
    let cap = inner
        .rules()
        .queues
        .get(&name)
        .map_or(usize::MAX, |q| q.max_waiting);
    let anonymous = queue::is_anonymous(record, customer);
    let entries = inner.store.queue_entries().await?;
    // Only anonymous customers meet the caps: a checked or high-value customer is never
    // refused for capacity, however many strangers wait.
    if anonymous {
        if let Some(full) = queue::refusal(&entries, &name, cap, record.origin) {
            // The bot keeps the customer (and says so) rather than bury the people already
            // waiting; the reasons are kept for when they ask again.
            tracing::warn!(queue = %name, cap, origin = ?record.origin, ?full,
                "anonymous customer not queued; the bot keeps them");
            crate::metrics::message_rejected(full.metric());
            record.escalation.extend(escalation.reasons);
            cap_front(&mut record.escalation, KEPT_PER_RECORD);
            out.queue_guard = None;
            out.say(record, full.words(), now);
            return Ok(());
        }
    }
    record.anonymous_in_queue = anonymous;
    record.status = Status::Queued;
    record.queue = Some(name.clone());
    record.priority = escalation.priority;
    record.escalation.extend(escalation.reasons.iter().cloned());
    cap_front(&mut record.escalation, KEPT_PER_RECORD);
    record.queued_since = Some(now);
    record.note(
        now,
        MilestoneKind::Escalated {
            queue: name.clone(),
            rules: escalation.reasons.iter().map(|r| r.rule.clone()).collect(),
        },
    );
    record.pending = None;
    record.offered_human = false;
    let entry = QueueEntry {
        queue: name.clone(),
        conversation_id: record.id.clone(),
        customer: record.customer.clone(),
        channel: record.channel,
        priority: escalation.priority,
        enqueued_at: now,
        reasons: escalation.reasons.clone(),
        anonymous,
        origin: record.origin,
    };
    let mut entries = entries;
    entries.push(entry.clone());
    out.change.enqueue.push(entry);
    let position = queue::position(&entries, &name, &record.id);
    out.say(record, copy::queued(position), now);
    out.events.push(DeskEventKind::Queued {
        queue: name.clone(),
        priority: escalation.priority,
        reasons: escalation.reasons,
    });
    out.events.push(DeskEventKind::StatusChanged {
        status: Status::Queued,
    });
    out.moved = others(&entries, &name, &record.id);
    out.queue = Some(QueueSlot { name, position });
    out.entered_queue = true;
    Ok(())
}

/// The customer writes while waiting: they are told their place. One who gets angrier
/// moves up: the rules are asked again, and a higher priority replaces the old one (same
/// queue, same wait).
pub(super) async fn still_waiting<'a>(
    inner: &'a Inner,
    record: &mut ConversationRecord,
    customer: &Customer,
    analysis: &Analysis,
    out: &mut Outcome<'a>,
    now: DateTime<Utc>,
) -> Result<(), DeskError> {
    let unresolved = record.unresolved_turns;
    let escalation = ask_rules(
        inner,
        record,
        customer,
        analysis,
        &analysis.intent,
        unresolved,
        None,
    )
    .await;
    out.queue_guard = Some(inner.lock_queues().await?);
    let mut entries = inner.store.queue_entries().await?;
    let name = record.queue.clone().unwrap_or_default();
    if let Some(raised) = escalation.filter(|e| e.priority > record.priority) {
        if let Some(entry) = entries
            .iter_mut()
            .find(|e| e.queue == name && e.conversation_id == record.id)
        {
            entry.priority = raised.priority;
            entry.reasons.extend(raised.reasons.iter().cloned());
            out.change.enqueue.push(entry.clone());
            record.priority = raised.priority;
            record.escalation.extend(raised.reasons);
            cap_front(&mut record.escalation, KEPT_PER_RECORD);
            out.moved = others(&entries, &name, &record.id);
        }
    }
    let position = queue::position(&entries, &name, &record.id);
    out.say(record, copy::still_waiting(position), now);
    out.queue = Some(QueueSlot { name, position });
    Ok(())
}

/// Positions in `queue` of everyone but `id`.
fn others(
    entries: &[QueueEntry],
    queue: &str,
    id: &ConversationId,
) -> Vec<(ConversationId, usize)> {
    queue::positions(entries, queue)
        .into_iter()
        .filter(|(c, _)| c != id)
        .collect()
}
