//! What the console reads: the queues with waiting times against each SLA (counted in
//! business time: the hours the queue is open), whether each is open and when it opens, the
//! agents with the conversations they hold, and one conversation with its transcript.

use chrono::{DateTime, Utc};

use super::error::DeskError;
use super::inner::Inner;
use super::queue::ordered;
use super::types::{AgentView, Conversation, QueueEntryView, QueueView};
use crate::message::ConversationId;
use crate::store::ConversationRecord;

/// Every queue of the rules (and any other that has entries), in service order.
pub(super) async fn queues(inner: &Inner, now: DateTime<Utc>) -> Result<Vec<QueueView>, DeskError> {
    let entries = inner.store.queue_entries().await?;
    let rules = inner.rules();
    let mut names: Vec<String> = rules.queues.keys().cloned().collect();
    for e in &entries {
        if !names.contains(&e.queue) {
            names.push(e.queue.clone());
        }
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let spec = rules.queues.get(&name);
        let sla_secs = spec.map_or(0, |s| s.sla_secs);
        let mut list = Vec::new();
        for (i, e) in ordered(&entries, &name).into_iter().enumerate() {
            let record = inner.store.conversation(&e.conversation_id).await?;
            let sentiment = record.as_ref().map_or(0.0, recent_negativity);
            let (frustration, frustration_reasons) = record
                .as_ref()
                .map(|r| (r.frustration, r.frustration_reasons.clone()))
                .unwrap_or_default();
            let waiting_secs = (now - e.enqueued_at).num_seconds().max(0) as u64;
            let waiting_business_secs = spec.map_or(waiting_secs, |s| {
                s.business_secs_between(e.enqueued_at, now).max(0) as u64
            });
            list.push(QueueEntryView {
                conversation_id: e.conversation_id.clone(),
                customer: e.customer.clone(),
                channel: e.channel,
                priority: e.priority,
                reasons: e.reasons.clone(),
                sentiment,
                frustration,
                frustration_reasons,
                waiting_secs,
                position: i + 1,
                sla_breached: sla_secs > 0 && waiting_business_secs > sla_secs,
                waiting_business_secs,
                left_out_of_hours: e.left_for_opening.is_some(),
            });
        }
        let open = spec.is_none_or(|s| s.is_open(now));
        let hours = spec.and_then(|s| s.hours.as_ref());
        out.push(QueueView {
            name,
            description: spec.and_then(|s| s.description.clone()),
            sla_secs,
            entries: list,
            open,
            opens_at: if open {
                None
            } else {
                hours.and_then(|h| h.next_open(now))
            },
            timezone: hours.map(|h| h.timezone().to_string()),
        });
    }
    Ok(out)
}

/// Mean negative probability of the last three customer messages.
fn recent_negativity(r: &ConversationRecord) -> f32 {
    let t = &r.sentiment_trajectory;
    let last = &t[t.len().saturating_sub(3)..];
    if last.is_empty() {
        0.0
    } else {
        last.iter().sum::<f32>() / last.len() as f32
    }
}

/// Every agent with the conversations they hold now.
pub(super) async fn agents(inner: &Inner) -> Vec<AgentView> {
    let assignments = inner.store.assignments().await.unwrap_or_default();
    inner
        .agents
        .values()
        .map(|a| {
            let conversations: Vec<_> = assignments
                .iter()
                .filter(|(agent, _)| agent == &a.name)
                .map(|(_, c)| c.clone())
                .collect();
            AgentView {
                name: a.name.clone(),
                display_name: a.display().to_string(),
                capacity: a.capacity,
                active: conversations.len(),
                conversations,
            }
        })
        .collect()
}

/// Conversation `id` with its transcript and what we know of its customer.
pub(super) async fn conversation(
    inner: &Inner,
    id: &ConversationId,
) -> Result<Option<Conversation>, DeskError> {
    let store = &inner.store;
    let Some(record) = store.conversation(id).await? else {
        return Ok(None);
    };
    let messages = store.messages(id).await?;
    let customer = store.customer(&record.customer).await?;
    Ok(Some(Conversation::from_record(
        record,
        messages,
        customer.as_ref(),
    )))
}
