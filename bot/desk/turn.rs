//! One customer turn, from inbound text to a stored, acknowledged answer:
//! customer -> conversation -> NLU -> (bot: policy -> answer | queue) -> one store change ->
//! flush -> events.

use super::{DeskError, DeskEventKind, Inner, QueueSlot, Reply, Turn};
use crate::dialogue::slot_value;
use crate::message::{ConversationId, Identity, Inbound, Speaker, Status};
use crate::nlu::analysis::{Analysis, OUT_OF_SCOPE};
use crate::policy::{self, Condition, Situation};
use crate::queue;
use crate::store::{Change, ConversationRecord, Customer, QueueEntry, StoredMessage};
use chrono::{DateTime, Utc};

/// Handles one message; the caller (a router worker) guarantees per-customer order.
pub(super) async fn handle(inner: &Inner, msg: Inbound) -> Result<Turn, DeskError> {
    let text = msg.text.trim().to_string();
    if text.is_empty() {
        return Err(DeskError::Invalid(
            "the message is empty: write some text".into(),
        ));
    }
    let identity = msg.identity();
    let _conversation_guard = inner.stripe(&identity.key()).lock().await;
    let now = Utc::now();
    let store = &inner.store;
    let mut change = Change::default();

    let customer = customer_for(inner, &msg, &identity, &mut change, now).await?;
    let open = match store.open_conversation(&identity)? {
        Some(id) => store.conversation(&id)?,
        None => None,
    };
    let mut record = match open {
        Some(r) if r.status != Status::Closed => r,
        _ => {
            let r = new_conversation(&customer, &identity, now);
            change.open.push((identity.clone(), Some(r.id.clone())));
            r
        }
    };

    let analysis = inner
        .nlu
        .analyze(text.clone())
        .await
        .map_err(|e| DeskError::Unavailable(format!("the language model failed: {e}")))?;
    record
        .sentiment_trajectory
        .push(analysis.sentiment_scores.negative);
    record.last_customer_at = now;
    record.updated = now;
    push_message(
        &mut record,
        &mut change,
        Speaker::Customer,
        &text,
        msg.time,
        Some(analysis.clone()),
    );

    let mut events = vec![DeskEventKind::CustomerMessage { text: text.clone() }];
    let mut replies = Vec::new();
    let mut queue_slot = None;
    // Held from the queue decision until the change is applied, so positions stay true.
    let mut queue_guard = None;
    let mut others = Vec::new();

    match record.status {
        Status::Bot => {
            let intent = inner.dialogue.effective_intent(
                &analysis,
                record.pending.as_ref(),
                record.offered_human,
            );
            if let Some(n) = slot_value(&analysis, "order_number") {
                record.slots.insert("order_number".into(), n);
            }
            let unresolved = record.unresolved_turns + u32::from(intent == OUT_OF_SCOPE);
            let order_value = order_value(inner, &record).await;
            let situation = Situation {
                analysis: &analysis,
                intent: &intent,
                negative_history: &record.sentiment_trajectory,
                tier: customer.tier.as_deref(),
                lifetime_value: customer.lifetime_value,
                order_value,
                unresolved_turns: unresolved,
            };
            match policy::decide(&inner.rules, &situation) {
                Some(escalation) => {
                    queue_guard = Some(inner.queue_lock.lock().await);
                    record.unresolved_turns = unresolved;
                    record.status = Status::Queued;
                    record.queue = Some(escalation.queue.clone());
                    record.priority = escalation.priority;
                    record.escalation.extend(escalation.reasons.iter().cloned());
                    record.queued_since = Some(now);
                    record.pending = None;
                    record.offered_human = false;
                    let entry = QueueEntry {
                        queue: escalation.queue.clone(),
                        conversation_id: record.id.clone(),
                        customer: record.customer.clone(),
                        channel: record.channel,
                        priority: escalation.priority,
                        enqueued_at: now,
                        reasons: escalation.reasons.clone(),
                    };
                    let mut entries = store.queue_entries()?;
                    entries.push(entry.clone());
                    change.enqueue.push(entry);
                    let position = queue::position(&entries, &escalation.queue, &record.id);
                    let reply = queue::queued_text(position);
                    push_message(&mut record, &mut change, Speaker::Bot, &reply, now, None);
                    replies.push(reply.clone());
                    events.push(DeskEventKind::BotReply { text: reply });
                    events.push(DeskEventKind::Queued {
                        queue: escalation.queue.clone(),
                        priority: escalation.priority,
                        reasons: escalation.reasons,
                    });
                    events.push(DeskEventKind::StatusChanged {
                        status: Status::Queued,
                    });
                    queue_slot = Some(QueueSlot {
                        name: escalation.queue.clone(),
                        position,
                    });
                    // Everyone behind moves down one place.
                    others = queue::positions(&entries, &escalation.queue)
                        .into_iter()
                        .filter(|(c, _)| c != &record.id)
                        .collect();
                }
                None => {
                    let answer = inner
                        .dialogue
                        .answer(&intent, &analysis, &mut record.slots)
                        .await;
                    record.pending = answer.pending;
                    record.offered_human = answer.offered_human;
                    if !answer.resolved {
                        record.unresolved_turns += 1;
                    }
                    push_message(
                        &mut record,
                        &mut change,
                        Speaker::Bot,
                        &answer.text,
                        now,
                        None,
                    );
                    events.push(DeskEventKind::BotReply {
                        text: answer.text.clone(),
                    });
                    replies.push(answer.text);
                }
            }
        }
        Status::Queued => {
            // A customer who gets angrier while waiting moves up: the rules are asked
            // again, and a higher priority replaces the old one (same queue, same wait).
            let order_value = order_value(inner, &record).await;
            let escalation = policy::decide(
                &inner.rules,
                &Situation {
                    analysis: &analysis,
                    intent: &analysis.intent,
                    negative_history: &record.sentiment_trajectory,
                    tier: customer.tier.as_deref(),
                    lifetime_value: customer.lifetime_value,
                    order_value,
                    unresolved_turns: record.unresolved_turns,
                },
            );
            queue_guard = Some(inner.queue_lock.lock().await);
            let mut entries = store.queue_entries()?;
            let name = record.queue.clone().unwrap_or_default();
            if let Some(raised) = escalation.filter(|e| e.priority > record.priority) {
                if let Some(entry) = entries
                    .iter_mut()
                    .find(|e| e.queue == name && e.conversation_id == record.id)
                {
                    entry.priority = raised.priority;
                    entry.reasons.extend(raised.reasons.iter().cloned());
                    change.enqueue.push(entry.clone());
                    record.priority = raised.priority;
                    record.escalation.extend(raised.reasons);
                    others = queue::positions(&entries, &name)
                        .into_iter()
                        .filter(|(c, _)| c != &record.id)
                        .collect();
                }
            }
            let position = queue::position(&entries, &name, &record.id);
            let reply = queue::still_waiting_text(position);
            push_message(&mut record, &mut change, Speaker::Bot, &reply, now, None);
            events.push(DeskEventKind::BotReply {
                text: reply.clone(),
            });
            replies.push(reply);
            queue_slot = Some(QueueSlot { name, position });
        }
        // An agent owns it: the bot stays silent, the agent sees the message live.
        Status::WithAgent | Status::Closed => {}
    }

    let status = record.status;
    let id = record.id.clone();
    change.conversations.push(record);
    store.apply(change)?;
    drop(queue_guard);
    store.flush().await?;
    for kind in events {
        inner.emit(&id, kind);
    }
    if let Some(slot) = &queue_slot {
        queue::announce(inner, &slot.name, others);
    }
    Ok(Turn {
        conversation_id: id,
        status,
        replies: replies.into_iter().map(|text| Reply { text }).collect(),
        queue: queue_slot,
    })
}

/// The value of the order under discussion, when a rule looks at it.
async fn order_value(inner: &Inner, record: &ConversationRecord) -> Option<f64> {
    let wanted = inner
        .rules
        .rules
        .iter()
        .any(|r| matches!(r.condition, Condition::OrderValue { .. }));
    let number = record.slots.get("order_number")?;
    if !wanted {
        return None;
    }
    match inner.dialogue.order(number).await {
        Ok(order) => order.map(|o| o.total),
        Err(e) => {
            tracing::warn!(error = %e, "order look-up for the order-value rule failed");
            None
        }
    }
}

pub(crate) fn push_message(
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

fn new_conversation(
    customer: &Customer,
    identity: &Identity,
    now: DateTime<Utc>,
) -> ConversationRecord {
    ConversationRecord {
        id: ConversationId::fresh(),
        customer: customer.id.clone(),
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
    }
}

/// The customer behind this identity, created on first contact; a trusted profile updates
/// it (and the shop fills what the profile leaves out, from its own customer record).
async fn customer_for(
    inner: &Inner,
    msg: &Inbound,
    identity: &Identity,
    change: &mut Change,
    now: DateTime<Utc>,
) -> Result<Customer, DeskError> {
    let store = &inner.store;
    let existing = match store.customer_of(identity)? {
        Some(id) => store.customer(&id)?,
        None => None,
    };
    let mut dirty = existing.is_none();
    let mut customer = existing.unwrap_or_else(|| {
        let id = uuid::Uuid::new_v4().to_string();
        change.identities.push((identity.clone(), id.clone()));
        Customer {
            id,
            tier: None,
            lifetime_value: None,
            name: None,
            email: None,
            shop_customer_id: None,
            identities: vec![identity.clone()],
            created: now,
        }
    });
    if let Some(p) = &msg.profile {
        let before = customer.clone();
        if let Some(shop_id) = &p.customer_id {
            let known =
                customer.shop_customer_id.as_ref() == Some(shop_id) && customer.tier.is_some();
            customer.shop_customer_id = Some(shop_id.clone());
            if !known && (p.tier.is_none() || p.lifetime_value.is_none()) {
                match inner.dialogue.commerce().customer(shop_id).await {
                    Ok(Some(c)) => {
                        customer.tier = Some(c.tier);
                        customer.lifetime_value = Some(c.lifetime_value);
                        customer.name = Some(c.name);
                        customer.email = Some(c.email);
                    }
                    Ok(None) => tracing::warn!(shop_id, "the shop does not know this customer"),
                    Err(e) => tracing::warn!(error = %e, "customer look-up failed"),
                }
            }
        }
        if p.tier.is_some() {
            customer.tier = p.tier.as_ref().map(|t| t.to_lowercase());
        }
        if p.lifetime_value.is_some() {
            customer.lifetime_value = p.lifetime_value;
        }
        if p.name.is_some() {
            customer.name = p.name.clone();
        }
        if p.email.is_some() {
            customer.email = p.email.clone();
        }
        dirty |= customer != before;
    }
    if dirty {
        change.customers.push(customer.clone());
    }
    Ok(customer)
}
