//! Proactive notices: the shop (its systems, with a `shop` API key) tells us that an order
//! is delayed, has shipped or was refunded, or that a product is back in stock
//! (`POST /api/v1/events`, `server/events.rs`), and the order's owner hears it from us on
//! the channel they last wrote from.
//!
//! - `mod.rs`: the events (types, checks: sizes bounded, dates read, an unknown type named
//!   with the types there are) and the texts we write ourselves; [`handle`] runs one event.
//! - `quiet.rs`: quiet hours (held, then sent when they end) and the task that releases
//!   held notices.
//! - `crate::desk::notice`: who gets it, the customer's choices ("stop notices", "offers
//!   on"), the daily cap, the notice written into their conversation with its outbox record,
//!   and what a notice proves (nothing: later questions about the order still go through
//!   the usual checks).
//!
//! The same event `id` twice sends once: the second gets the first outcome back
//! (`"repeated": true`), for as long as the store keeps inbound ids (7 days).

mod quiet;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use crate::config::NoticesConfig;
use crate::desk::notice::{self as desk_notice, Delivered, Notice, NoticeContext};
use crate::desk::{Desk, DeskError};

pub use crate::desk::notice::release_held;
pub use quiet::{next_quiet_end, quiet_until, spawn_release};

/// The event types the shop may send.
pub const TYPES: [&str; 4] = [
    "order_delayed",
    "order_shipped",
    "refund_issued",
    "back_in_stock",
];

/// Longest order number, voucher code, product name and reason we take.
const MAX_ORDER: usize = 64;
const MAX_VOUCHER: usize = 40;
const MAX_PRODUCT: usize = 120;
const MAX_REASON: usize = 200;
const MAX_URL: usize = 500;
/// Event ids: as the REST channel's message ids.
const MAX_ID: usize = 100;

/// One event from the shop, as sent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// The order will come later than promised: `new_date` (`YYYY-MM-DD`), why, and what
    /// the customer may do: `alternatives` of `wait` and `cancel`, and a `voucher` code.
    OrderDelayed {
        #[serde(default)]
        id: Option<String>,
        order: String,
        new_date: String,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        alternatives: Option<Vec<String>>,
        #[serde(default)]
        voucher: Option<String>,
    },
    OrderShipped {
        #[serde(default)]
        id: Option<String>,
        order: String,
        #[serde(default)]
        tracking_url: Option<String>,
    },
    RefundIssued {
        #[serde(default)]
        id: Option<String>,
        order: String,
        #[serde(default)]
        amount: Option<f64>,
        #[serde(default)]
        currency: Option<String>,
    },
    /// Promotional: sent only to a customer who asked for offers ("offers on").
    BackInStock {
        #[serde(default)]
        id: Option<String>,
        product: String,
        /// The shop's id of the customer who asked to be told.
        #[serde(default)]
        customer: Option<String>,
    },
}

/// Why an event was not taken.
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    /// The event is malformed (422): the message says what to send instead.
    #[error("{0}")]
    Invalid(String),
    /// The shop does not know the order (404).
    #[error("the shop does not know order {0}: check the number (the shop's `order_owner` answers for it)")]
    UnknownOrder(String),
    #[error(transparent)]
    Desk(#[from] DeskError),
}

impl Event {
    /// Reads an event from the shop's JSON: an unknown or missing `type` names the types.
    pub fn parse(value: serde_json::Value) -> Result<Event, NoticeError> {
        let kind = value
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("")
            .to_string();
        if !TYPES.contains(&kind.as_str()) {
            return Err(NoticeError::Invalid(format!(
                "unknown event type {kind:?}: send \"type\" as one of {}",
                TYPES.join(", ")
            )));
        }
        serde_json::from_value(value)
            .map_err(|e| NoticeError::Invalid(format!("{kind} event: {e}")))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Event::OrderDelayed { .. } => "order_delayed",
            Event::OrderShipped { .. } => "order_shipped",
            Event::RefundIssued { .. } => "refund_issued",
            Event::BackInStock { .. } => "back_in_stock",
        }
    }

    pub fn id(&self) -> Option<&str> {
        match self {
            Event::OrderDelayed { id, .. }
            | Event::OrderShipped { id, .. }
            | Event::RefundIssued { id, .. }
            | Event::BackInStock { id, .. } => id.as_deref(),
        }
    }

    /// The order it is about (none for back in stock).
    pub fn order(&self) -> Option<&str> {
        match self {
            Event::OrderDelayed { order, .. }
            | Event::OrderShipped { order, .. }
            | Event::RefundIssued { order, .. } => Some(order),
            Event::BackInStock { .. } => None,
        }
    }

    pub fn promotional(&self) -> bool {
        matches!(self, Event::BackInStock { .. })
    }
}

/// An event checked: what the customer is told, and what a later question may use.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub text: String,
    pub context: Option<NoticeContext>,
    /// The shop customer it is for when the event names them (back in stock).
    pub customer: Option<String>,
}

fn invalid(message: String) -> NoticeError {
    NoticeError::Invalid(message)
}

/// `text` of 1 to `max` characters on one line (no control characters).
fn one_line(field: &str, text: &str, max: usize) -> Result<String, NoticeError> {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(invalid(format!(
            "`{field}` must be 1 to {max} characters on one line"
        )));
    }
    Ok(t.to_string())
}

/// `text` of 1 to `max` characters of `A-Z a-z 0-9` and `extra`.
fn token(field: &str, text: &str, max: usize, extra: &[char]) -> Result<String, NoticeError> {
    let ok = !text.is_empty()
        && text.len() <= max
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c));
    if !ok {
        let extra: String = extra.iter().map(|c| format!(" '{c}'")).collect();
        return Err(invalid(format!(
            "`{field}` must be 1 to {max} characters of A-Z, a-z, 0-9{extra}"
        )));
    }
    Ok(text.to_string())
}

/// Checks `event` against `today` and writes its text.
pub fn check(event: &Event, today: NaiveDate, now: DateTime<Utc>) -> Result<Checked, NoticeError> {
    if let Some(id) = event.id() {
        token("id", id, MAX_ID, &['.', '_', ':', '-'])?;
    }
    if let Some(order) = event.order() {
        token("order", order, MAX_ORDER, &['.', '_', '-'])?;
    }
    let stop = " (Write \"stop notices\" if you'd rather not get these.)";
    Ok(match event {
        Event::OrderDelayed {
            order,
            new_date,
            reason,
            alternatives,
            voucher,
            ..
        } => {
            let date = NaiveDate::parse_from_str(new_date.trim(), "%Y-%m-%d").map_err(|_| {
                invalid(format!(
                    "`new_date` {new_date:?} is not a date: send it as YYYY-MM-DD, e.g. 2026-12-24"
                ))
            })?;
            if date < today - chrono::Days::new(1) || date > today + chrono::Days::new(730) {
                return Err(invalid(format!(
                    "`new_date` {date} is in the past or more than two years away: send the \
                     date the order should now arrive"
                )));
            }
            let reason = reason
                .as_deref()
                .map(|r| one_line("reason", r, MAX_REASON))
                .transpose()?;
            let voucher = voucher
                .as_deref()
                .map(|v| token("voucher", v, MAX_VOUCHER, &['-', '_']))
                .transpose()?;
            let mut offered: Vec<String> = Vec::new();
            for a in alternatives.as_deref().unwrap_or(&["wait".to_string()]) {
                match a.as_str() {
                    "wait" | "cancel" => {
                        if !offered.contains(a) {
                            offered.push(a.clone())
                        }
                    }
                    "voucher" if voucher.is_some() => {}
                    "voucher" => {
                        return Err(invalid(
                            "`alternatives` names a voucher but no `voucher` code was sent: \
                             send the code in `voucher`"
                                .into(),
                        ))
                    }
                    other => {
                        return Err(invalid(format!(
                            "unknown alternative {other:?}: `alternatives` may hold \"wait\" and \
                             \"cancel\" (a voucher goes in `voucher`)"
                        )))
                    }
                }
            }
            let mut text = format!(
                "News about your order {order}: it is delayed{}. It should now arrive on {}.",
                reason.map(|r| format!(" ({r})")).unwrap_or_default(),
                desk_notice::long_date(date)
            );
            if offered.iter().any(|a| a == "wait") {
                text.push_str(" If that works for you, there is nothing to do.");
            }
            if offered.iter().any(|a| a == "cancel") {
                text.push_str(
                    " If you would rather not wait, you can cancel it: just say \"cancel it\".",
                );
            }
            if let Some(code) = &voucher {
                text.push_str(&format!(
                    " Sorry for the wait: here is a voucher for your next order: {code}."
                ));
            }
            text.push_str(stop);
            Checked {
                text,
                context: Some(NoticeContext {
                    kind: event.kind().into(),
                    order: order.clone(),
                    new_date: Some(date),
                    alternatives: offered,
                    voucher,
                    said_at: now,
                }),
                customer: None,
            }
        }
        Event::OrderShipped {
            order,
            tracking_url,
            ..
        } => {
            let url = tracking_url
                .as_deref()
                .map(|u| {
                    let u = one_line("tracking_url", u, MAX_URL)?;
                    let web = u.starts_with("https://") || u.starts_with("http://");
                    if !web || u.contains(char::is_whitespace) {
                        return Err(invalid(
                            "`tracking_url` must be an http:// or https:// link without spaces"
                                .into(),
                        ));
                    }
                    Ok(u)
                })
                .transpose()?;
            let text = format!(
                "Good news: your order {order} has shipped.{}{stop}",
                url.map(|u| format!(" Track it here: {u}"))
                    .unwrap_or_default()
            );
            Checked {
                text,
                context: Some(context_of(event.kind(), order, now)),
                customer: None,
            }
        }
        Event::RefundIssued {
            order,
            amount,
            currency,
            ..
        } => {
            let currency = currency
                .as_deref()
                .map(|c| {
                    let ok = c.len() == 3 && c.chars().all(|x| x.is_ascii_uppercase());
                    ok.then(|| c.to_string()).ok_or_else(|| {
                        invalid("`currency` must be three capital letters, e.g. EUR".into())
                    })
                })
                .transpose()?;
            let sum = match amount {
                Some(a) if !a.is_finite() || *a <= 0.0 || *a >= 1e9 => {
                    return Err(invalid(
                        "`amount` must be a positive number below 1000000000".into(),
                    ))
                }
                Some(a) => format!(
                    " {a:.2}{}",
                    currency.map(|c| format!(" {c}")).unwrap_or_default()
                ),
                None => String::new(),
            };
            let text = format!(
                "We have refunded{sum} for your order {order}. It usually reaches your account \
                 within 5 to 10 business days.{stop}"
            );
            Checked {
                text,
                context: Some(context_of(event.kind(), order, now)),
                customer: None,
            }
        }
        Event::BackInStock {
            product, customer, ..
        } => {
            let product = one_line("product", product, MAX_PRODUCT)?;
            let customer =
                match customer {
                    Some(c) => token("customer", c, MAX_ORDER, &['.', '_', '-', ':', '@'])?,
                    None => return Err(invalid(
                        "a back_in_stock event names the shop's `customer` who asked to be told"
                            .into(),
                    )),
                };
            Checked {
                text: format!(
                    "Good news: {product} is back in stock. (Write \"offers off\" if you'd \
                     rather not get these.)"
                ),
                context: None,
                customer: Some(customer),
            }
        }
    })
}

fn context_of(kind: &str, order: &str, now: DateTime<Utc>) -> NoticeContext {
    NoticeContext {
        kind: kind.into(),
        order: order.into(),
        new_date: None,
        alternatives: Vec::new(),
        voucher: None,
        said_at: now,
    }
}

/// Runs one event from the shop at `now`: checked, the order's owner found, their notice
/// sent, held for the end of quiet hours, or not sent with the reason. Counted in
/// `frontdesk_notices_total{type,outcome}`.
pub async fn handle(
    desk: &Desk,
    config: &NoticesConfig,
    value: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Delivered, NoticeError> {
    let event = Event::parse(value).inspect_err(|_| count("unknown", "invalid"))?;
    let kind = event.kind();
    let result = run(desk, config, &event, now).await;
    match &result {
        Ok(d) if d.repeated => count(kind, "repeated"),
        Ok(d) => count(kind, &d.outcome),
        Err(NoticeError::Invalid(_)) => count(kind, "invalid"),
        Err(NoticeError::UnknownOrder(_)) => count(kind, "unknown_order"),
        Err(NoticeError::Desk(_)) => count(kind, "error"),
    }
    result
}

async fn run(
    desk: &Desk,
    config: &NoticesConfig,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<Delivered, NoticeError> {
    let today = now.with_timezone(&config.zone()).date_naive();
    let checked = check(event, today, now)?;
    if let Some(id) = event.id() {
        if let Some(first) = desk_notice::earlier_outcome(desk, id).await? {
            return Ok(first);
        }
    }
    if !config.enabled {
        return Ok(Delivered {
            sent: false,
            outcome: "disabled".into(),
            channel: None,
            why: Some("notices are off here (notices.enabled = false)".into()),
            held_until: None,
            repeated: false,
        });
    }
    let shop_customer = match (&checked.customer, event.order()) {
        (Some(c), _) => c.clone(),
        (None, Some(order)) => desk_notice::order_owner(desk, order)
            .await?
            .ok_or_else(|| NoticeError::UnknownOrder(order.to_string()))?,
        (None, None) => {
            return Err(NoticeError::Invalid(
                "the event names neither an `order` nor a `customer`".into(),
            ))
        }
    };
    let notice = Notice {
        shop_customer,
        kind: event.kind().into(),
        promotional: event.promotional(),
        text: checked.text,
        context: checked.context,
        event_id: event.id().map(String::from),
        hold_until: quiet_until(config, now),
        max_per_day: config.max_per_day,
    };
    Ok(desk_notice::deliver(desk, notice).await?)
}

/// The counter of shop events by type and outcome.
pub const NOTICES: &str = "frontdesk_notices_total";

fn count(kind: &str, outcome: &str) {
    metrics::counter!(NOTICES, "type" => kind.to_string(), "outcome" => outcome.to_string())
        .increment(1);
}

#[cfg(test)]
mod tests;
