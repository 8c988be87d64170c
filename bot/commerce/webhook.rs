//! The shop's own service, called with JSON over HTTP. Every call is one POST to the
//! configured URL:
//!
//! | request body                                        | answer (200)                       |
//! |-----------------------------------------------------|------------------------------------|
//! | `{"action":"get_order","order_number":"10001","caller":Caller}` | `{"order": Order or null}` |
//! | `{"action":"get_customer","customer_id":"C001"}`     | `{"customer": ShopCustomer or null}` |
//! | `{"action":"verify_order","order_number":"10001","answer":".."}` | `{"verified": true or false}` |
//! | `{"action":"request_refund","order_number":"10001","caller":Caller,"idempotency_key":".."}` | `{"outcome":"accepted","order":..}` or `{"outcome":"refused","why":".."}` |
//! | `{"action":"cancel_order","order_number":"10001","caller":Caller,"idempotency_key":".."}` | same as request_refund |
//!
//! `caller` is `{"customer_id": "C001" or null, "verified_orders": ["10001"]}`: the shop
//! customer the conversation is verified as, and the orders the bot's check (email or
//! postcode, `verify_order`) covered. The shop must answer about an order, or act on it,
//! only when the caller owns it (its customer, or a verified order), and otherwise answer
//! 404 exactly as for a missing order. `idempotency_key` is the same when the same
//! confirmation is sent again: the shop must act once and answer the first outcome again.
//! `verify_order` compares the answer, any case, with the order's customer email or
//! postcode, and says false for a missing order.
//!
//! A 404 means "no such order/customer" (or "not yours"). Anything else, a timeout or a body that does not
//! parse is an error the desk reports as "I can't reach the shop right now".

use super::{Caller, Commerce, CommerceError, Order, RequestOutcome, ShopCustomer};
use futures::future::BoxFuture;
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::{json, Value};
use std::time::Duration;

pub struct WebhookShop {
    url: String,
    client: reqwest::Client,
    timeout: Duration,
}

#[derive(Deserialize)]
struct OrderAnswer {
    order: Option<Order>,
}

#[derive(Deserialize)]
struct VerifyAnswer {
    verified: bool,
}

#[derive(Deserialize)]
struct OwnerAnswer {
    customer_id: Option<String>,
}

#[derive(Deserialize)]
struct LinkAnswer {
    sent: bool,
}

#[derive(Deserialize)]
struct CustomerAnswer {
    customer: Option<ShopCustomer>,
}

impl WebhookShop {
    pub fn new(url: &str, timeout: Duration) -> Result<WebhookShop, CommerceError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|source| CommerceError::Service {
                action: "start".into(),
                source,
            })?;
        Ok(WebhookShop {
            url: url.to_string(),
            client,
            timeout,
        })
    }

    /// POSTs `body`; `Ok(None)` on 404.
    async fn call<T: DeserializeOwned>(&self, body: Value) -> Result<Option<T>, CommerceError> {
        let action = body["action"].as_str().unwrap_or("?").to_string();
        let response = self
            .client
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    CommerceError::Timeout(self.timeout.as_millis() as u64)
                } else {
                    CommerceError::Service {
                        action: action.clone(),
                        source: e,
                    }
                }
            })?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(CommerceError::Status { action, status });
        }
        let value = response.json::<T>().await.map_err(|e| {
            if e.is_timeout() {
                CommerceError::Timeout(self.timeout.as_millis() as u64)
            } else {
                CommerceError::Service {
                    action: format!("{action} (unexpected answer)"),
                    source: e,
                }
            }
        })?;
        Ok(Some(value))
    }
}

impl Commerce for WebhookShop {
    /// `{"action": "order_owner", "order_number"}` → `{"customer_id"}`; a shop that does
    /// not know the action (404) names no owner, and checks are counted per order only.
    fn order_owner<'a>(
        &'a self,
        number: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, CommerceError>> {
        Box::pin(async move {
            let answer: Option<OwnerAnswer> = self
                .call(json!({"action": "order_owner", "order_number": number}))
                .await?;
            Ok(answer.and_then(|a| a.customer_id))
        })
    }

    /// `{"action": "send_access_link", "order_number"}` → `{"sent"}` (404: not sent).
    fn send_access_link<'a>(
        &'a self,
        number: &'a str,
    ) -> BoxFuture<'a, Result<bool, CommerceError>> {
        Box::pin(async move {
            let answer: Option<LinkAnswer> = self
                .call(json!({"action": "send_access_link", "order_number": number}))
                .await?;
            Ok(answer.is_some_and(|a| a.sent))
        })
    }

    fn order<'a>(
        &'a self,
        number: &'a str,
        caller: &'a Caller,
    ) -> BoxFuture<'a, Result<Option<Order>, CommerceError>> {
        Box::pin(async move {
            let answer: Option<OrderAnswer> = self
                .call(json!({"action": "get_order", "order_number": number, "caller": caller}))
                .await?;
            // The desk trusts no shop blindly: an order of someone else is not shown.
            Ok(answer.and_then(|a| a.order).filter(|o| caller.owns(o)))
        })
    }

    fn verify_order<'a>(
        &'a self,
        number: &'a str,
        answer: &'a str,
    ) -> BoxFuture<'a, Result<bool, CommerceError>> {
        Box::pin(async move {
            let verdict: Option<VerifyAnswer> = self
                .call(json!({"action": "verify_order", "order_number": number, "answer": answer}))
                .await?;
            Ok(verdict.is_some_and(|v| v.verified))
        })
    }

    fn customer<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ShopCustomer>, CommerceError>> {
        Box::pin(async move {
            let answer: Option<CustomerAnswer> = self
                .call(json!({"action": "get_customer", "customer_id": id}))
                .await?;
            Ok(answer.and_then(|a| a.customer))
        })
    }

    fn request_refund<'a>(
        &'a self,
        number: &'a str,
        caller: &'a Caller,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<RequestOutcome>, CommerceError>> {
        Box::pin(async move {
            self.call(json!({
                "action": "request_refund",
                "order_number": number,
                "caller": caller,
                "idempotency_key": idempotency_key,
            }))
            .await
        })
    }

    fn cancel_order<'a>(
        &'a self,
        number: &'a str,
        caller: &'a Caller,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<RequestOutcome>, CommerceError>> {
        Box::pin(async move {
            self.call(json!({
                "action": "cancel_order",
                "order_number": number,
                "caller": caller,
                "idempotency_key": idempotency_key,
            }))
            .await
        })
    }
}
