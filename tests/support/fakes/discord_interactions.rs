//! Message components on the fake Discord: a user presses a button under a message, which
//! the gateway dispatches as an INTERACTION_CREATE (a component interaction, as serenity
//! reads it); the bot's answer to `POST /interactions/{id}/{token}/callback` is recorded.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{bot_user_json, customer_json, message_json, FakeDiscord, Sent, Shared, BOT_USER_ID};

/// The bot's answer to one interaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    pub interaction_id: u64,
    pub token: String,
    /// 6: acknowledged only; 7: the message updated (`data` says how).
    pub kind: u64,
    pub data: Value,
}

impl FakeDiscord {
    /// User `user` presses the button `custom_id` under the bot's message `sent` (a forged
    /// press names any id it likes); returns the interaction's id.
    pub fn press(&self, user: u64, sent: &Sent, custom_id: &str) -> u64 {
        self.with(|inner| {
            let id = inner.id();
            let message_id = inner.id();
            let mut message = message_json(
                message_id,
                sent.channel_id,
                None,
                &bot_user_json(),
                &sent.content,
            );
            message["components"] = sent.components.clone();
            let interaction = json!({
                "id": id.to_string(),
                "application_id": BOT_USER_ID.to_string(),
                "type": 3,
                "data": {"custom_id": custom_id, "component_type": 2},
                "channel_id": sent.channel_id.to_string(),
                "user": customer_json(user),
                "token": format!("token-{id}"),
                "version": 1,
                "message": message,
                "app_permissions": "0",
                "locale": "en-US",
                "entitlements": [],
                "authorizing_integration_owners": {},
                "context": 1,
                "attachment_size_limit": 8_388_608,
            });
            inner
                .events
                .push_back(("INTERACTION_CREATE".into(), interaction));
            id
        })
    }

    /// The interaction callbacks the bot sent.
    pub fn callbacks(&self) -> Vec<Callback> {
        self.shared.inner.lock().unwrap().callbacks.clone()
    }

    /// Waits until the bot answered interaction `id`.
    pub async fn wait_for_callback(&self, id: u64) -> Callback {
        let what = format!("the bot to answer interaction {id}");
        self.shared
            .rec
            .until(&what, || {
                self.callbacks()
                    .into_iter()
                    .find(|c| c.interaction_id == id)
            })
            .await
    }
}

/// The buttons of a sent message: rows of (label, custom id); empty when it has none.
pub fn buttons(sent: &Sent) -> Vec<Vec<(String, String)>> {
    let rows = sent.components.as_array().cloned().unwrap_or_default();
    rows.iter()
        .map(|row| {
            let items = row["components"].as_array().cloned().unwrap_or_default();
            items
                .iter()
                .map(|b| {
                    let label = b["label"].as_str().unwrap_or_default().to_string();
                    let id = b["custom_id"].as_str().unwrap_or_default().to_string();
                    (label, id)
                })
                .collect()
        })
        .collect()
}

/// `POST /interactions/{id}/{token}/callback`: needs no bot token (the interaction's token
/// is the proof), answers 204 as Discord does.
pub(super) async fn callback(
    State(shared): State<Arc<Shared>>,
    Path((interaction, token)): Path<(u64, String)>,
    Json(body): Json<Value>,
) -> Response {
    shared
        .rec
        .call(format!("POST /interactions/{interaction}/callback"));
    if token != format!("token-{interaction}") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Invalid interaction token", "code": 50027})),
        )
            .into_response();
    }
    shared.inner.lock().unwrap().callbacks.push(Callback {
        interaction_id: interaction,
        token,
        kind: body["type"].as_u64().unwrap_or_default(),
        data: body["data"].clone(),
    });
    shared.rec.bump();
    StatusCode::NO_CONTENT.into_response()
}
