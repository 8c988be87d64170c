//! The shop's notices inside the desk (`crate::notices` turns the shop's events into them):
//! who gets one (the order's owner, on the channel they last wrote from that still takes
//! our messages), the customer's own choices (opt-out, offers, the daily cap), the notice
//! written into their conversation as one change (its outbox record with it), and the
//! notices held for the end of quiet hours.
//!
//! What a notice proves: nothing. It is our own message to an identity filed under the shop
//! customer (one that proved the shop account, or one linked to it with `/link`); having
//! received it proves no more than the link did. So the conversation keeps the notice's
//! order as its order and may repeat what the notice said (number, new date, what the shop
//! offers), and everything else about the order, and every action on it, goes through the
//! usual checks (`dialogue/notice.rs`).
//!
//! `preference.rs`: the customer's notice commands; `held.rs`: the release of notices held
//! for the end of quiet hours.

mod held;
mod preference;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::error::{DeskError, Unavailable};
use super::inner::Inner;
use super::record::{cap_front, new_conversation, push_message};
use super::types::DeskEventKind;
use super::Desk;
use crate::message::{ChannelKind, Identity, Speaker, Status};
use crate::store::{Change, ConversationRecord, Customer};

pub use held::release_held;
pub(in crate::desk) use preference::apply_preference;
pub use preference::{preference_command, Preference};

/// The conversation slot that keeps the latest order notice ([`NoticeContext`], JSON).
pub const CONTEXT_SLOT: &str = "notice";
/// The conversation slot of the notices held for the end of quiet hours ([`Held`], JSON).
pub const HELD_SLOT: &str = "notice_held";
/// How far back the release of held notices looks (quiet hours last less than a day; a
/// notice held longer, because no node ran, is released at the next start within this).
pub const HELD_FOR_AT_MOST: Duration = Duration::hours(48);
/// Notice times kept per customer (the cap reads the last day only).
const SENT_KEPT: usize = 64;

/// A notice ready for one shop customer.
#[derive(Debug, Clone)]
pub struct Notice {
    /// The shop's id of the customer it is for.
    pub shop_customer: String,
    /// The event's type (`order_delayed`, ...), for logs.
    pub kind: String,
    /// Sent only to customers who asked for offers.
    pub promotional: bool,
    pub text: String,
    /// What a later question about the order may be answered from (order notices).
    pub context: Option<NoticeContext>,
    /// The shop's id of the event: the same id again gets the first outcome, nothing more.
    pub event_id: Option<String>,
    /// Quiet hours: held and sent at this time.
    pub hold_until: Option<DateTime<Utc>>,
    /// Notices one customer gets in 24 hours at most.
    pub max_per_day: u32,
}

/// A date as the notices and their follow-ups say it: "Thursday 24 December 2026".
pub fn long_date(d: NaiveDate) -> String {
    d.format("%A %-d %B %Y").to_string()
}

/// What a notice about an order said, kept on the conversation it went to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoticeContext {
    pub kind: String,
    pub order: String,
    #[serde(default)]
    pub new_date: Option<NaiveDate>,
    /// What the shop lets the customer do about it (`wait`, `cancel`).
    #[serde(default)]
    pub alternatives: Vec<String>,
    #[serde(default)]
    pub voucher: Option<String>,
    pub said_at: DateTime<Utc>,
}

/// A notice waiting for the end of quiet hours on its conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    pub text: String,
    #[serde(default)]
    pub context: Option<NoticeContext>,
    pub until: DateTime<Utc>,
    #[serde(default)]
    pub promotional: bool,
}

/// What became of a notice: the shop's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivered {
    pub sent: bool,
    /// `sent`, `held`, `opted_out`, `not_opted_in`, `capped`, `blocked`, `no_channel`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_until: Option<DateTime<Utc>>,
    /// The same event id came before: this is its first outcome, nothing was done again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeated: bool,
}

impl Delivered {
    fn not(outcome: &str, why: &str) -> Delivered {
        Delivered {
            sent: false,
            outcome: outcome.into(),
            channel: None,
            why: Some(why.into()),
            held_until: None,
            repeated: false,
        }
    }
}

/// The identity whose inbound ids are the shop's event ids (every shop key shares it, so a
/// rotated key does not send an event again).
fn events_identity() -> Identity {
    Identity::new(ChannelKind::Rest, "shop:events")
}

/// The shop customer who placed `order` (`Commerce::order_owner`); `None` when the shop
/// does not know the order.
pub async fn order_owner(desk: &Desk, order: &str) -> Result<Option<String>, DeskError> {
    desk.inner
        .dialogue
        .commerce()
        .order_owner(order)
        .await
        .map_err(|e| Unavailable::Shop(e.to_string()).into())
}

/// The first outcome of the shop's event `event_id`, when it came before.
pub async fn earlier_outcome(desk: &Desk, event_id: &str) -> Result<Option<Delivered>, DeskError> {
    let seen = desk
        .inner
        .store
        .seen_inbound(&events_identity(), event_id)
        .await?;
    Ok(seen
        .and_then(|v| serde_json::from_value::<Delivered>(v).ok())
        .map(|d| Delivered {
            repeated: true,
            ..d
        }))
}

/// Sends (or holds) `notice` for its shop customer: on the channel they last wrote from
/// that still takes our messages, unless they opted out, are blocked, or had enough
/// notices today. One change stores the bot line, its outbox record, the customer's count
/// and the event id.
pub async fn deliver(desk: &Desk, notice: Notice) -> Result<Delivered, DeskError> {
    let inner = &desk.inner;
    if let Some(id) = &notice.event_id {
        if let Some(first) = earlier_outcome(desk, id).await? {
            return Ok(first);
        }
    }
    let (customer_id, identity) = match recipient(inner, &notice.shop_customer).await? {
        Ok(found) => found,
        Err(refused) => return remember(inner, &notice, refused).await,
    };
    let _guard = inner.lock_customer(&identity.key()).await?;
    // Again under the lock: two deliveries of one event reach the same identity, in turn.
    if let Some(id) = &notice.event_id {
        if let Some(first) = earlier_outcome(desk, id).await? {
            return Ok(first);
        }
    }
    let now = Utc::now();
    let Some(mut customer) = inner.store.customer(&customer_id).await? else {
        return remember(inner, &notice, no_channel()).await;
    };
    if let Some(refused) = refusal(&mut customer, notice.promotional, notice.max_per_day, now) {
        return remember(inner, &notice, refused).await;
    }
    customer.notices.sent.push(now);
    cap_front(&mut customer.notices.sent, SENT_KEPT);
    let mut change = Change::default();
    let mut record = conversation_for(inner, &mut customer, &identity, &mut change, now).await?;
    let outcome = match notice.hold_until.filter(|t| *t > now) {
        Some(until) => {
            let mut held = held_of(&record);
            held.push(Held {
                text: notice.text.clone(),
                context: notice.context.clone(),
                until,
                promotional: notice.promotional,
            });
            record.slots.insert(
                HELD_SLOT.into(),
                serde_json::to_string(&held).expect("held notices serialize"),
            );
            Delivered {
                sent: false,
                outcome: "held".into(),
                channel: Some(identity.channel.as_str().into()),
                why: Some(format!(
                    "quiet hours: held, and sent on {} at {}",
                    identity.channel,
                    until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )),
                held_until: Some(until),
                repeated: false,
            }
        }
        None => {
            say(
                &mut record,
                &mut change,
                &notice.text,
                notice.context.clone(),
                now,
            );
            Delivered {
                sent: true,
                outcome: "sent".into(),
                channel: Some(identity.channel.as_str().into()),
                why: None,
                held_until: None,
                repeated: false,
            }
        }
    };
    let id = record.id.clone();
    change.customers.retain(|c| c.id != customer.id);
    change.customers.push(customer);
    change.conversations.push(record);
    if let Some(event) = &notice.event_id {
        change
            .inbound
            .push((events_identity(), event.clone(), to_value(&outcome)));
    }
    inner.store.apply(change).await?;
    inner.store.flush().await?;
    if outcome.sent {
        inner.emit(
            &id,
            DeskEventKind::BotReply {
                text: notice.text.clone(),
            },
        );
    }
    tracing::info!(kind = %notice.kind, conversation = %id, outcome = %outcome.outcome, "shop notice");
    Ok(outcome)
}

fn to_value(d: &Delivered) -> serde_json::Value {
    serde_json::to_value(d).expect("an outcome serializes")
}

fn no_channel() -> Delivered {
    Delivered::not(
        "no_channel",
        "this customer has no channel we may write to: they never wrote to us, or every \
         channel they used refused our messages since",
    )
}

/// Keeps the outcome of a notice that was not sent under its event id (a repeat gets it).
async fn remember(
    inner: &Inner,
    notice: &Notice,
    outcome: Delivered,
) -> Result<Delivered, DeskError> {
    if let Some(event) = &notice.event_id {
        let change = Change {
            inbound: vec![(events_identity(), event.clone(), to_value(&outcome))],
            ..Change::default()
        };
        inner.store.apply(change).await?;
        inner.store.flush().await?;
    }
    tracing::info!(kind = %notice.kind, outcome = %outcome.outcome, "shop notice not sent");
    Ok(outcome)
}

/// Why `customer` gets no notice now, if they do not: blocked, opted out (or never opted in
/// to offers), or the day's notices used up. Forgets send times older than a day.
fn refusal(
    customer: &mut Customer,
    promotional: bool,
    max_per_day: u32,
    now: DateTime<Utc>,
) -> Option<Delivered> {
    if customer.blocked.is_some() {
        return Some(Delivered::not(
            "blocked",
            "our team blocked this customer: nothing is sent to them",
        ));
    }
    if promotional && !customer.notices.offers {
        return Some(Delivered::not(
            "not_opted_in",
            "this customer did not ask for offers (they write \"offers on\" to get them)",
        ));
    }
    if !promotional && customer.notices.opted_out {
        return Some(Delivered::not(
            "opted_out",
            "this customer asked for no notices (\"stop notices\")",
        ));
    }
    let day_ago = now - Duration::hours(24);
    customer.notices.sent.retain(|t| *t > day_ago);
    if customer.notices.sent.len() >= max_per_day as usize {
        return Some(Delivered::not(
            "capped",
            &format!(
                "this customer had {max_per_day} notices in the last 24 hours \
                 (notices.max_per_day): not sent"
            ),
        ));
    }
    None
}

/// The customer record and identity a notice for shop customer `shop` goes to: of every
/// identity filed under them, the one they last wrote from whose channel has not refused
/// our messages since (a blocked bot, a closed DM); identities with no open conversation
/// come after, the latest linked first.
async fn recipient(
    inner: &Inner,
    shop: &str,
) -> Result<Result<(String, Identity), Delivered>, DeskError> {
    let store = &inner.store;
    let customers: Vec<Customer> = store
        .find_customers(shop)
        .await?
        .into_iter()
        .filter(|c| c.shop_customer_id.as_deref() == Some(shop))
        .collect();
    if !customers.is_empty() && customers.iter().all(|c| c.blocked.is_some()) {
        return Ok(Err(Delivered::not(
            "blocked",
            "our team blocked this customer: nothing is sent to them",
        )));
    }
    // (known last message, when, order in the record, customer, identity)
    let mut best: Option<(bool, DateTime<Utc>, usize, String, Identity)> = None;
    for c in customers.iter().filter(|c| c.blocked.is_none()) {
        for (n, identity) in c.identities.iter().enumerate() {
            if store.customer_of(identity).await?.as_deref() != Some(c.id.as_str()) {
                continue;
            }
            let open = match store.open_conversation(identity).await? {
                Some(id) => store.conversation(&id).await?,
                None => None,
            };
            let key = match &open {
                Some(r) => {
                    let left = r
                        .delivery_failures
                        .iter()
                        .any(|f| f.channel == identity.channel && f.time >= r.last_customer_at);
                    if left {
                        continue;
                    }
                    (true, r.last_customer_at, n)
                }
                None => (false, c.created, n),
            };
            let better = best
                .as_ref()
                .is_none_or(|(k, t, i, _, _)| key > (*k, *t, *i));
            if better {
                best = Some((key.0, key.1, key.2, c.id.clone(), identity.clone()));
            }
        }
    }
    Ok(best
        .map(|(_, _, _, c, identity)| (c, identity))
        .ok_or_else(no_channel))
}

/// The conversation `identity` writes into (a new one when it has none open).
async fn conversation_for(
    inner: &Inner,
    customer: &mut Customer,
    identity: &Identity,
    change: &mut Change,
    now: DateTime<Utc>,
) -> Result<ConversationRecord, DeskError> {
    let open = match inner.store.open_conversation(identity).await? {
        Some(id) => inner.store.conversation(&id).await?,
        None => None,
    };
    Ok(match open {
        Some(r) if r.status != Status::Closed && r.customer == customer.id => r,
        _ => {
            let r = new_conversation(&customer.id, identity, now);
            change.open.push((identity.clone(), Some(r.id.clone())));
            customer.conversations = customer.conversations.saturating_add(1);
            r
        }
    })
}

/// The notice as a bot line of the conversation (its outbox record comes with the change),
/// and its order as the conversation's order from now on.
fn say(
    record: &mut ConversationRecord,
    change: &mut Change,
    text: &str,
    context: Option<NoticeContext>,
    now: DateTime<Utc>,
) {
    push_message(record, change, Speaker::Bot, text, now, None);
    record.updated = now;
    if let Some(context) = context {
        record
            .slots
            .insert("order_number".into(), context.order.clone());
        record.slots.insert(
            CONTEXT_SLOT.into(),
            serde_json::to_string(&context).expect("a notice context serializes"),
        );
    }
}

/// The notices held on a conversation.
fn held_of(record: &ConversationRecord) -> Vec<Held> {
    record
        .slots
        .get(HELD_SLOT)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_the_last_day_and_choices_come_first() {
        let now = Utc::now();
        let mut c: Customer = serde_json::from_value(serde_json::json!({
            "id": "c1", "tier": null, "lifetime_value": null, "name": null, "email": null,
            "shop_customer_id": "C1", "identities": [], "created": now,
        }))
        .unwrap();
        c.notices.sent = vec![now - Duration::hours(30), now - Duration::hours(2)];
        assert_eq!(refusal(&mut c, false, 2, now), None);
        assert_eq!(c.notices.sent.len(), 1, "older than a day: forgotten");
        c.notices.sent.push(now);
        assert_eq!(refusal(&mut c, false, 2, now).unwrap().outcome, "capped");
        assert_eq!(
            refusal(&mut c, true, 9, now).unwrap().outcome,
            "not_opted_in"
        );
        c.notices.opted_out = true;
        assert_eq!(refusal(&mut c, false, 9, now).unwrap().outcome, "opted_out");
        c.notices.offers = true;
        assert_eq!(
            refusal(&mut c, true, 9, now),
            None,
            "offers are their own choice"
        );
    }
}
