//! The shop's own service, called with JSON over HTTP. Every call is one POST to the
//! configured URL:
//!
//! | request body                                        | answer (200)                       |
//! |-----------------------------------------------------|------------------------------------|
//! | `{"action":"get_order","order_number":"10001"}`      | `{"order": Order or null}`         |
//! | `{"action":"get_customer","customer_id":"C001"}`     | `{"customer": ShopCustomer or null}` |
//! | `{"action":"request_refund","order_number":"10001"}` | `{"outcome":"accepted","order":..}` or `{"outcome":"refused","why":".."}` |
//! | `{"action":"cancel_order","order_number":"10001"}`   | same as request_refund             |
//!
//! A 404 means "no such order/customer". Anything else, a timeout or a body that does not
//! parse is an error the desk reports as "I can't reach the shop right now".

use super::{Commerce, CommerceError, Order, RequestOutcome, ShopCustomer};
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
    fn order<'a>(&'a self, number: &'a str) -> BoxFuture<'a, Result<Option<Order>, CommerceError>> {
        Box::pin(async move {
            let answer: Option<OrderAnswer> = self
                .call(json!({"action": "get_order", "order_number": number}))
                .await?;
            Ok(answer.and_then(|a| a.order))
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
    ) -> BoxFuture<'a, Result<Option<RequestOutcome>, CommerceError>> {
        Box::pin(async move {
            self.call(json!({"action": "request_refund", "order_number": number}))
                .await
        })
    }

    fn cancel_order<'a>(
        &'a self,
        number: &'a str,
    ) -> BoxFuture<'a, Result<Option<RequestOutcome>, CommerceError>> {
        Box::pin(async move {
            self.call(json!({"action": "cancel_order", "order_number": number}))
                .await
        })
    }
}
