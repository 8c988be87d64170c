//! The shop behind the bot: order, refund and account look-ups go through the `Commerce`
//! trait. Two backends: a demo shop read from a JSON file (`demo`), and the shop's own
//! service over JSON/HTTP (`webhook`, like Rasa's action server).

pub mod demo;
pub mod webhook;

use crate::config::CommerceConfig;
use chrono::NaiveDate;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub use demo::DemoShop;
pub use webhook::WebhookShop;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Paid, being prepared in the warehouse.
    Paid,
    Shipped,
    /// Shipped but late (the carrier reported a delay).
    Delayed,
    Delivered,
    RefundPending,
    Refunded,
    Cancelled,
}

impl OrderState {
    /// How the bot says it: "Order 10001 is {words}."
    pub fn words(self) -> &'static str {
        match self {
            OrderState::Paid => "paid and being prepared in our warehouse",
            OrderState::Shipped => "on its way",
            OrderState::Delayed => "delayed",
            OrderState::Delivered => "delivered",
            OrderState::RefundPending => "being refunded",
            OrderState::Refunded => "refunded",
            OrderState::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub name: String,
    pub quantity: u32,
    pub price: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shipment {
    pub carrier: String,
    pub tracking_number: String,
    pub shipped_on: NaiveDate,
    #[serde(default)]
    pub eta: Option<NaiveDate>,
    #[serde(default)]
    pub delivered_on: Option<NaiveDate>,
    /// Why it is late, when it is.
    #[serde(default)]
    pub delay_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    pub amount: f64,
    pub requested_on: NaiveDate,
    #[serde(default)]
    pub completed_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub number: String,
    pub customer_id: String,
    pub state: OrderState,
    pub placed_on: NaiveDate,
    pub total: f64,
    pub currency: String,
    pub items: Vec<OrderItem>,
    #[serde(default)]
    pub shipment: Option<Shipment>,
    #[serde(default)]
    pub refund: Option<Refund>,
}

/// A customer as the shop knows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShopCustomer {
    pub id: String,
    pub name: String,
    pub email: String,
    /// `standard`, `gold` or `vip`.
    pub tier: String,
    pub lifetime_value: f64,
    /// The postcode of the customer's address; with the email, what only the buyer knows
    /// when the bot checks an anonymous customer (`Commerce::verify_order`).
    #[serde(default)]
    pub postcode: Option<String>,
}

/// Who a shop call is made for: the conversation's verified shop customer (none when the
/// customer is anonymous) and the orders a check by the bot covered. The shop answers about
/// an order, or acts on it, only when the caller owns it (`Caller::owns`); for any other
/// order it answers as for a missing one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub verified_orders: Vec<String>,
}

impl Caller {
    /// Nobody verified: the shop tells them nothing about any order.
    pub fn anonymous() -> Caller {
        Caller::default()
    }

    /// A customer the shop vouched for (a signed token, a trusted integration).
    pub fn customer(id: &str) -> Caller {
        Caller {
            customer_id: Some(id.to_string()),
            verified_orders: Vec::new(),
        }
    }

    /// Whether this caller may see and act on `order`.
    pub fn owns(&self, order: &Order) -> bool {
        self.customer_id.as_deref() == Some(order.customer_id.as_str())
            || self.verified_orders.iter().any(|n| n == &order.number)
    }
}

/// What happened to a refund or cancellation request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RequestOutcome {
    /// Done or started; `order` is the order afterwards.
    Accepted { order: Order },
    /// Not possible in the order's state; `why` is said to the customer.
    Refused { why: String },
}

#[derive(Debug, thiserror::Error)]
pub enum CommerceError {
    #[error("cannot read the shop data file {path}: {source} (check commerce.demo_file, or remove it to use the built-in demo shop)")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("shop data file {path}: {source}")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("shop data file {path}: {message}")]
    Data { path: String, message: String },
    #[error("shop service did not answer within {0} ms")]
    Timeout(u64),
    #[error("shop service failed ({action}): {source}")]
    Service {
        action: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("shop service refused {action}: HTTP {status}")]
    Status {
        action: String,
        status: reqwest::StatusCode,
    },
}

/// Order, refund and account look-ups. Every order call names its [`Caller`]: an order the
/// caller does not own is `None`, exactly like a missing one, so the answer never tells
/// whether it exists. Actions carry an idempotency key: a repeated key returns the first
/// outcome and does nothing again.
pub trait Commerce: Send + Sync + 'static {
    fn order<'a>(
        &'a self,
        number: &'a str,
        caller: &'a Caller,
    ) -> BoxFuture<'a, Result<Option<Order>, CommerceError>>;
    fn customer<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ShopCustomer>, CommerceError>>;
    /// Whether `answer` is the email address or the postcode of the customer who placed
    /// order `number` (any case). False for a missing order too.
    fn verify_order<'a>(
        &'a self,
        number: &'a str,
        answer: &'a str,
    ) -> BoxFuture<'a, Result<bool, CommerceError>>;
    /// Asks for a refund of the whole order.
    fn request_refund<'a>(
        &'a self,
        number: &'a str,
        caller: &'a Caller,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<RequestOutcome>, CommerceError>>;
    fn cancel_order<'a>(
        &'a self,
        number: &'a str,
        caller: &'a Caller,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<RequestOutcome>, CommerceError>>;
    /// The shop customer who placed order `number`, for counting wrong checks per customer
    /// across their orders (never shown to anyone). `None` when unknown or not told.
    fn order_owner<'a>(
        &'a self,
        number: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, CommerceError>> {
        let _ = number;
        Box::pin(async { Ok(None) })
    }
    /// Asks the shop to email the owner of order `number` a link that opens the chat signed
    /// in (sent when the order's checks were paused after wrong answers: the owner gets in,
    /// a guesser does not). Whether the shop sent one.
    fn send_access_link<'a>(
        &'a self,
        number: &'a str,
    ) -> BoxFuture<'a, Result<bool, CommerceError>> {
        let _ = number;
        Box::pin(async { Ok(false) })
    }
}

/// Builds the backend the config names; `demo_file` is the demo shop's data (the
/// configured file, or the built-in one).
pub fn from_config(
    config: &CommerceConfig,
    demo_file: &std::path::Path,
) -> Result<Arc<dyn Commerce>, CommerceError> {
    match config.backend.as_str() {
        "webhook" => Ok(Arc::new(WebhookShop::new(
            config.webhook_url.as_deref().unwrap_or_default(),
            std::time::Duration::from_millis(config.timeout_ms),
        )?)),
        _ => Ok(Arc::new(DemoShop::load(demo_file)?)),
    }
}

fn day(d: NaiveDate) -> String {
    d.format("%A %-d %B").to_string()
}

pub(crate) fn money(amount: f64, currency: &str) -> String {
    format!("{amount:.2} {currency}")
}

impl Order {
    /// The sentence after "Order N is {state}." that a customer needs next.
    pub fn status_detail(&self) -> String {
        let ship = self.shipment.as_ref();
        match self.state {
            OrderState::Paid => format!(
                "We received your payment of {} on {}; you'll get the tracking link by email as soon as it ships.",
                money(self.total, &self.currency),
                day(self.placed_on)
            ),
            OrderState::Shipped => match ship {
                Some(s) => format!(
                    "It left on {} with {}, tracking number {}{}.",
                    day(s.shipped_on),
                    s.carrier,
                    s.tracking_number,
                    s.eta.map(|d| format!(", and should arrive by {}", day(d))).unwrap_or_default()
                ),
                None => "It has left our warehouse.".into(),
            },
            OrderState::Delayed => match ship {
                Some(s) => format!(
                    "{} reports a delay{}. Tracking number {}{}. Sorry about the wait.",
                    s.carrier,
                    s.delay_reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default(),
                    s.tracking_number,
                    s.eta.map(|d| format!("; the new estimate is {}", day(d))).unwrap_or_default()
                ),
                None => "It is taking longer than planned. Sorry about the wait.".into(),
            },
            OrderState::Delivered => match ship.and_then(|s| s.delivered_on.map(|d| (s, d))) {
                Some((s, d)) => format!("{} delivered it on {}.", s.carrier, day(d)),
                None => "It has been delivered.".into(),
            },
            OrderState::RefundPending => match &self.refund {
                Some(r) => format!(
                    "A refund of {} was requested on {} and is being processed; it usually takes 5 to 10 business days.",
                    money(r.amount, &self.currency),
                    day(r.requested_on)
                ),
                None => "The refund is being processed.".into(),
            },
            OrderState::Refunded => match &self.refund {
                Some(r) => format!(
                    "We refunded {}{} to your original payment method.",
                    money(r.amount, &self.currency),
                    r.completed_on.map(|d| format!(" on {}", day(d))).unwrap_or_default()
                ),
                None => "The money went back to your original payment method.".into(),
            },
            OrderState::Cancelled => "It was cancelled before shipping and you were not charged.".into(),
        }
    }

    /// The refund part of the order, said to a customer asking where their money is.
    pub fn refund_detail(&self) -> (String, String) {
        match (self.state, &self.refund) {
            (OrderState::RefundPending, Some(r)) => (
                "in progress".into(),
                format!(
                    "We approved {} on {}; it reaches your account within 5 to 10 business days.",
                    money(r.amount, &self.currency),
                    day(r.requested_on)
                ),
            ),
            (OrderState::Refunded, Some(r)) => (
                "complete".into(),
                format!(
                    "{} went back to your original payment method{}.",
                    money(r.amount, &self.currency),
                    r.completed_on.map(|d| format!(" on {}", day(d))).unwrap_or_default()
                ),
            ),
            _ => (
                "not started".into(),
                format!(
                    "There is no refund on this order yet (it is {}). I can start one if you like: just say you want a refund.",
                    self.state.words()
                ),
            ),
        }
    }
}
