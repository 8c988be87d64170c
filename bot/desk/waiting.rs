//! A turn's queue steps: joining a queue (who may join, and the place they are told) and
//! writing while waiting (their place again, and a higher priority when they get angrier).
//!
//! Out of hours (a queue whose `hours` say it is closed now) the customer is still queued,
//! so nothing is lost: they are told when the team is back, in the queue's own time zone,
//! and that whatever they write is kept for it; the entry carries the opening it waits for
//! (`QueueEntry::left_for_opening`), which puts it first in line then (`queue::ordered`).
//! While closed the bot still answers routine questions itself.

use chrono::{DateTime, Utc};

use super::copy;
use super::dialogue::HUMAN_REQUEST;
use super::error::DeskError;
use super::inner::Inner;
use super::queue;
use super::record::{cap_front, KEPT_PER_RECORD};
use super::rules::ask_rules;
use super::turn::Outcome;
use super::types::{DeskEventKind, QueueSlot};
use crate::message::{ConversationId, Status};
use crate::nlu::{Analysis, OUT_OF_SCOPE};
use crate::policy::{BusinessHours, Escalation};
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
    let rules = inner.rules();
    let spec = rules.queues.get(&name);
    let cap = spec.map_or(usize::MAX, |q| q.max_waiting);
    let closed = closed_hours(spec, now);
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
    // A message left out of hours waits for the opening: an anonymous one does not expire
    // after `queue::ANONYMOUS_QUEUE_TTL` of silence (the room and address caps above still
    // bound how many there are).
    record.anonymous_in_queue = anonymous && closed.is_none();
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
        left_for_opening: closed.map(|h| h.next_open(now).unwrap_or_else(never)),
    };
    let mut entries = entries;
    entries.push(entry.clone());
    out.change.enqueue.push(entry);
    let position = queue::position(&entries, &name, &record.id);
    match closed {
        None => out.say(record, copy::queued(position), now),
        Some(hours) => {
            tracing::info!(queue = %name, conversation = %record.id,
                "queued out of hours; kept for the opening");
            let back = back_at(hours, now);
            out.say(
                record,
                copy::queued_out_of_hours(back.as_deref(), position),
                now,
            );
        }
    }
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
    let name = record.queue.clone().unwrap_or_default();
    let rules = inner.rules();
    let closed = closed_hours(rules.queues.get(&name), now);
    // Out of hours the bot answers a routine question itself (the conversation stays queued).
    let routine = match (closed, &escalation) {
        (Some(_), None) => routine_answer(inner, record, analysis).await,
        _ => None,
    };
    out.queue_guard = Some(inner.lock_queues().await?);
    let mut entries = inner.store.queue_entries().await?;
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
    let words = match (closed, routine) {
        (None, _) => copy::still_waiting(position),
        (Some(_), Some(answer)) => answer,
        (Some(hours), None) => copy::kept_for_team(back_at(hours, now).as_deref(), position),
    };
    out.say(record, words, now);
    out.queue = Some(QueueSlot { name, position });
    Ok(())
}

/// The queue's hours when they say it is closed at `now` (a queue without hours never is).
fn closed_hours(
    spec: Option<&crate::policy::QueueSpec>,
    now: DateTime<Utc>,
) -> Option<&BusinessHours> {
    spec.and_then(|q| q.hours.as_ref())
        .filter(|h| !h.is_open(now))
}

/// When the team is back, as its customers are told: "Monday at 09:00 (Europe/Berlin)";
/// None when the hours have no opening ahead.
fn back_at(hours: &BusinessHours, now: DateTime<Utc>) -> Option<String> {
    hours
        .next_open(now)
        .map(|at| format!("{} ({})", hours.describe(at, now), hours.timezone()))
}

/// The opening of a queue that has none ahead: after every other one.
fn never() -> DateTime<Utc> {
    chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a valid date")
        .and_utc()
}

/// Intents whose message is for the team, not for the bot, while the customer waits.
const FOR_THE_TEAM: [&str; 4] = [
    HUMAN_REQUEST,
    OUT_OF_SCOPE,
    "complaint",
    "contact_customer_service",
];

/// The bot's answer to a routine question asked while the team is away (an order's status,
/// delivery times), or None when the message is for the team: a request for a person, a
/// complaint, something the bot cannot answer. Tried on a copy of the conversation, kept
/// only when answered.
async fn routine_answer(
    inner: &Inner,
    record: &mut ConversationRecord,
    analysis: &Analysis,
) -> Option<String> {
    let intent =
        inner
            .dialogue
            .effective_intent(analysis, record.pending.as_ref(), record.offered_human);
    if FOR_THE_TEAM.contains(&intent.as_str()) {
        return None;
    }
    let mut trial = record.clone();
    let answer = inner.dialogue.answer(&intent, analysis, &mut trial).await;
    if !answer.resolved || answer.offered_human {
        return None;
    }
    trial.pending = answer.pending;
    trial.offered_human = false;
    *record = trial;
    Some(answer.text)
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
