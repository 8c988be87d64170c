//! Small changes to a stored conversation that turns, agent actions and the idle watcher
//! share: a new conversation, and one more message in its transcript.

use chrono::{DateTime, Utc};

use crate::message::{ConversationId, Identity, Speaker, Status};
use crate::nlu::Analysis;
use crate::store::{Change, ConversationRecord, StoredMessage};

/// Appends a message to the conversation's transcript, as part of `change`.
pub(super) fn push_message(
    record: &mut ConversationRecord,
    change: &mut Change,
    from: Speaker,
    text: &str,
    time: DateTime<Utc>,
    analysis: Option<Analysis>,
) {
    change.messages.push((
        record.id.clone(),
        record.message_count,
        StoredMessage {
            from,
            text: text.to_string(),
            time,
            analysis,
        },
    ));
    record.message_count += 1;
}

/// A fresh conversation of `customer`, written from `identity`, with the bot.
pub(super) fn new_conversation(
    customer: &str,
    identity: &Identity,
    now: DateTime<Utc>,
) -> ConversationRecord {
    ConversationRecord {
        id: ConversationId::fresh(),
        origin: None,
        anonymous_in_queue: false,
        customer: customer.to_string(),
        channel: identity.channel,
        channel_user: identity.user.clone(),
        status: Status::Bot,
        assigned_agent: None,
        queue: None,
        priority: 0,
        message_count: 0,
        sentiment_trajectory: Vec::new(),
        slots: Default::default(),
        pending: None,
        offered_human: false,
        unresolved_turns: 0,
        escalation: Vec::new(),
        queued_since: None,
        created: now,
        updated: now,
        last_customer_at: now,
        last_agent_at: None,
        delivery_failures: Vec::new(),
        frustration: 0.0,
        frustration_reasons: Vec::new(),
        late_parcel_raised: false,
        access: Default::default(),
        llm_summary: None,
        feedback: Vec::new(),
        timeline: Vec::new(),
        csat: None,
        nps: None,
    }
}

/// How many trend values and escalation reasons a conversation record keeps (the newest).
pub(super) const KEPT_PER_RECORD: usize = 50;

/// Drops the oldest entries beyond `keep`.
pub(super) fn cap_front<T>(v: &mut Vec<T>, keep: usize) {
    if v.len() > keep {
        v.drain(..v.len() - keep);
    }
}
