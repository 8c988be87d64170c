//! Records the checks (and the engines' own tests) build changes from.

use super::*;
use crate::message::Speaker;

pub(crate) fn customer(i: usize) -> Customer {
    Customer {
        id: format!("c{i}"),
        tier: None,
        lifetime_value: None,
        name: None,
        email: None,
        shop_customer_id: None,
        identities: vec![Identity {
            channel: ChannelKind::Rest,
            user: format!("u{i}"),
        }],
        created: Utc::now(),
        conversations: 0,
        blocked: None,
        shop_verified: Vec::new(),
        notices: Default::default(),
    }
}

pub(crate) fn conversation(id: &str, status: Status, updated: DateTime<Utc>) -> ConversationRecord {
    ConversationRecord {
        id: ConversationId(id.into()),
        origin: None,
        anonymous_in_queue: false,
        customer: "c1".into(),
        channel: ChannelKind::Rest,
        channel_user: "u1".into(),
        status,
        assigned_agent: None,
        queue: None,
        priority: 0,
        message_count: 1,
        sentiment_trajectory: vec![],
        slots: Default::default(),
        pending: None,
        offered_human: false,
        unresolved_turns: 0,
        escalation: vec![],
        queued_since: None,
        created: updated,
        updated,
        last_customer_at: updated,
        last_agent_at: None,
        delivery_failures: vec![],
        frustration: 0.0,
        frustration_reasons: vec![],
        late_parcel_raised: false,
        access: Default::default(),
        llm_summary: None,
        feedback: Vec::new(),
        timeline: Vec::new(),
        csat: None,
        nps: None,
    }
}

/// A turn on Telegram: the customer's message, the bot's answer, the record.
pub(crate) fn telegram_turn(conv: &str, answer: &str) -> Change {
    let now = Utc::now();
    let mut record = conversation(conv, Status::Bot, now);
    record.channel = ChannelKind::Telegram;
    record.channel_user = "4242".into();
    let message = |from: Speaker, text: &str| StoredMessage {
        from,
        text: text.into(),
        time: now,
        analysis: None,
    };
    let id = record.id.clone();
    Change {
        messages: vec![
            (id.clone(), 0, message(Speaker::Customer, "where is 10001?")),
            (id, 1, message(Speaker::Bot, answer)),
        ],
        conversations: vec![record],
        ..Change::default()
    }
}
