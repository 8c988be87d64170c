//! The demo shop: customers and orders from a JSON file, kept in memory. Refunds and
//! cancellations change the in-memory copy only, so a restart shows the file again. It
//! enforces ownership like a real shop should: an order the caller does not own is
//! answered as missing, and an action's idempotency key is remembered with its outcome.

use super::{
    Caller, Commerce, CommerceError, Order, OrderState, Refund, RequestOutcome, ShopCustomer,
};
use futures::future::BoxFuture;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, RwLock};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShopFile {
    customers: Vec<ShopCustomer>,
    orders: Vec<Order>,
}

pub struct DemoShop {
    customers: HashMap<String, ShopCustomer>,
    orders: RwLock<HashMap<String, Order>>,
    /// Outcomes of the actions done so far, by idempotency key.
    done: Mutex<HashMap<String, Option<RequestOutcome>>>,
    /// Orders whose owner was sent a sign-in link (the demo sends no email).
    links: Mutex<Vec<String>>,
}

impl DemoShop {
    pub fn load(path: &Path) -> Result<DemoShop, CommerceError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CommerceError::Read {
            path: name.clone(),
            source,
        })?;
        DemoShop::from_json(&text).map_err(|e| match e {
            CommerceError::Json { source, .. } => CommerceError::Json {
                path: name.clone(),
                source,
            },
            CommerceError::Data { message, .. } => CommerceError::Data {
                path: name,
                message,
            },
            other => other,
        })
    }

    pub fn from_json(text: &str) -> Result<DemoShop, CommerceError> {
        let file: ShopFile = serde_json::from_str(text).map_err(|source| CommerceError::Json {
            path: "<json>".into(),
            source,
        })?;
        let customers: HashMap<_, _> = file
            .customers
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
        let mut orders = HashMap::new();
        for o in file.orders {
            if !customers.contains_key(&o.customer_id) {
                return Err(CommerceError::Data {
                    path: "<json>".into(),
                    message: format!(
                        "order {} names unknown customer {}",
                        o.number, o.customer_id
                    ),
                });
            }
            orders.insert(o.number.clone(), o);
        }
        Ok(DemoShop {
            customers,
            orders: RwLock::new(orders),
            done: Mutex::new(HashMap::new()),
            links: Mutex::new(Vec::new()),
        })
    }

    /// The orders whose owners were sent a sign-in link, oldest first.
    pub fn access_links_sent(&self) -> Vec<String> {
        self.links.lock().expect("demo shop lock").clone()
    }

    /// Changes order `number` for `caller` once per idempotency `key` (a repeated key gets
    /// the first outcome back); `None` when the caller does not own it or it is missing.
    fn change(
        &self,
        number: &str,
        caller: &Caller,
        key: &str,
        change: impl FnOnce(&mut Order) -> Result<(), String>,
    ) -> Option<RequestOutcome> {
        let mut done = self.done.lock().expect("demo shop lock");
        if let Some(outcome) = done.get(key) {
            return outcome.clone();
        }
        let mut orders = self.orders.write().expect("demo shop lock");
        let outcome = orders
            .get_mut(number)
            .filter(|o| caller.owns(o))
            .map(|order| match change(order) {
                Ok(()) => RequestOutcome::Accepted {
                    order: order.clone(),
                },
                Err(why) => RequestOutcome::Refused { why },
            });
        if !key.is_empty() {
            done.insert(key.to_string(), outcome.clone());
        }
        outcome
    }
}

impl Commerce for DemoShop {
    fn order_owner<'a>(
        &'a self,
        number: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, CommerceError>> {
        let owner = self
            .orders
            .read()
            .expect("demo shop lock")
            .get(number)
            .map(|o| o.customer_id.clone());
        Box::pin(async move { Ok(owner) })
    }

    fn send_access_link<'a>(
        &'a self,
        number: &'a str,
    ) -> BoxFuture<'a, Result<bool, CommerceError>> {
        let known = self
            .orders
            .read()
            .expect("demo shop lock")
            .contains_key(number);
        if known {
            // A real shop emails the link; the demo only notes it.
            tracing::info!(
                order = number,
                "demo shop: a sign-in link would be emailed to the order's owner"
            );
            self.links
                .lock()
                .expect("demo shop lock")
                .push(number.to_string());
        }
        Box::pin(async move { Ok(known) })
    }

    fn order<'a>(
        &'a self,
        number: &'a str,
        caller: &'a Caller,
    ) -> BoxFuture<'a, Result<Option<Order>, CommerceError>> {
        let found = self
            .orders
            .read()
            .expect("demo shop lock")
            .get(number)
            .filter(|o| caller.owns(o))
            .cloned();
        Box::pin(async move { Ok(found) })
    }

    fn verify_order<'a>(
        &'a self,
        number: &'a str,
        answer: &'a str,
    ) -> BoxFuture<'a, Result<bool, CommerceError>> {
        let answer = answer.trim().to_lowercase();
        let owner = self
            .orders
            .read()
            .expect("demo shop lock")
            .get(number)
            .and_then(|o| self.customers.get(&o.customer_id).cloned());
        let matches = !answer.is_empty()
            && owner.is_some_and(|c| {
                let squash = |s: &str| s.split_whitespace().collect::<String>().to_lowercase();
                c.email.to_lowercase() == answer
                    || c.postcode
                        .as_deref()
                        .is_some_and(|p| squash(p) == squash(&answer))
            });
        Box::pin(async move { Ok(matches) })
    }

    fn customer<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ShopCustomer>, CommerceError>> {
        let found = self.customers.get(id).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn request_refund<'a>(
        &'a self,
        number: &'a str,
        caller: &'a Caller,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<RequestOutcome>, CommerceError>> {
        let today = chrono::Utc::now().date_naive();
        let outcome = self.change(number, caller, idempotency_key, |o| match o.state {
            OrderState::RefundPending => {
                Err("A refund for this order is already in progress.".into())
            }
            OrderState::Refunded => Err("This order has already been refunded.".into()),
            OrderState::Cancelled => {
                Err("This order was cancelled before it shipped, so nothing was charged.".into())
            }
            _ => {
                o.state = OrderState::RefundPending;
                o.refund = Some(Refund {
                    amount: o.total,
                    requested_on: today,
                    completed_on: None,
                });
                Ok(())
            }
        });
        Box::pin(async move { Ok(outcome) })
    }

    fn cancel_order<'a>(
        &'a self,
        number: &'a str,
        caller: &'a Caller,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<RequestOutcome>, CommerceError>> {
        let outcome = self.change(number, caller, idempotency_key, |o| match o.state {
            OrderState::Paid => {
                o.state = OrderState::Cancelled;
                Ok(())
            }
            OrderState::Cancelled => Err("This order is already cancelled.".into()),
            OrderState::Shipped | OrderState::Delayed => Err(
                "It has already shipped, so it can't be cancelled any more; once it arrives you can send it back for free within 30 days."
                    .into(),
            ),
            _ => Err(format!(
                "It is {} already, so there is nothing left to cancel.",
                o.state.words()
            )),
        });
        Box::pin(async move { Ok(outcome) })
    }
}
