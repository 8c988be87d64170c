//! The REST channel and the agents' API.
//!
//! - `POST /api/v1/messages` (an API key with the `messages` scope): a customer's message.
//!   The `user_id` is the integration's own: it is filed under the key's id, so two
//!   integrations can never write into each other's customers. An optional `message_id`
//!   (idempotency key) makes a retried message count once. Limited per customer (the key's
//!   `user_id`) and per client address (`limits.rs`): 429 with `Retry-After` beyond.
//! - `GET /api/v1/conversations/{id}`: for a `messages` key, only conversations written
//!   with that key (messages with direction, text and time; status; queue); for an agent
//!   session or an `agent`/`lead`/`admin` key, the full transcript.
//! - `GET /api/v1/queues`: an agent session or an `agent`/`lead`/`admin` key.
//! - `GET|DELETE /api/v1/customers/{id}` (export, erase) and `POST /api/v1/api-keys`: an
//!   admin agent's session or an `admin` key (see `privacy.rs`).

pub use super::api_keys::Caller;
use super::auth::Scope;
use super::error::{ApiJson, AppError};
use super::limits::ClientAddr;
use super::validate::{check_text, check_user_id, profile_from_token};
use super::AppState;
use crate::desk::{QueueView, Turn};
use crate::message::{ChannelKind, Inbound, Speaker, Status};
use crate::metrics;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/messages", post(post_message))
        .route("/api/v1/queues", get(queues))
        .route("/api/v1/conversations/{id}", get(conversation))
        .route(
            "/api/v1/customers/{id}",
            get(super::privacy::export).delete(super::privacy::erase),
        )
        .route("/api/v1/api-keys", post(super::privacy::create_key))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    pub user_id: String,
    pub text: String,
    /// A customer token signed by the shop (see `auth::CustomerClaims`); only then is the
    /// profile (tier, lifetime value) trusted.
    #[serde(default)]
    pub customer_token: Option<String>,
    /// The integration's id for this message (idempotency key, [`MAX_MESSAGE_ID`]
    /// characters of `A-Z a-z 0-9 . _ : -`): sending the same message again with the same
    /// id (a retry after a timeout) is not handled twice.
    #[serde(default)]
    pub message_id: Option<String>,
}

/// Longest accepted client message id (REST `message_id`, the widget's string `id`).
pub const MAX_MESSAGE_ID: usize = 100;

/// A client's id for a message: 1 to [`MAX_MESSAGE_ID`] characters of `A-Z a-z 0-9 . _ :
/// -`; `field` names it in the error.
pub fn check_message_id<'a>(id: &'a str, field: &str) -> Result<&'a str, AppError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_MESSAGE_ID
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if ok {
        Ok(id)
    } else {
        Err(AppError::BadRequest(format!(
            "`{field}` must be 1 to {MAX_MESSAGE_ID} characters of A-Z, a-z, 0-9, '.', '_', ':' \
             and '-' (for example a UUID); send the same id again only when retrying the same \
             message"
        )))
    }
}

/// The REST channel's user for `user_id` sent with key `key_id`.
pub fn channel_user(key_id: &str, user_id: &str) -> String {
    format!("{key_id}:{user_id}")
}

async fn post_message(
    ClientAddr(ip): ClientAddr,
    State(state): State<AppState>,
    caller: Result<Caller, AppError>,
    body: Result<ApiJson<PostMessage>, AppError>,
) -> Result<ApiJson<Turn>, Response> {
    // A request refused before its customer is known still counts against its address, so
    // a flood of bad keys or bodies is limited too.
    let refuse = |e: AppError| match state.limits.api_message(ip) {
        Err(limited) => limited.into_response(),
        Ok(()) => e.into_response(),
    };
    let key = match caller.map_err(refuse)? {
        Caller::Key { record, scope } if scope.allows(Scope::Messages) => record,
        Caller::Key { .. } => {
            return Err(refuse(AppError::Forbidden(
                "this API key cannot post messages: create one with --scope messages".into(),
            )))
        }
        Caller::Agent { .. } => return Err(refuse(AppError::api_key_required())),
    };
    let ApiJson(body) = body.map_err(refuse)?;
    let user = check_user_id(&body.user_id).map_err(refuse)?;
    if let Err(e) = check_text(&body.text, state.config.server.max_text_len) {
        metrics::message_rejected("invalid");
        return Err(refuse(e));
    }
    let message_id = match body.message_id.as_deref() {
        Some(id) => Some(
            check_message_id(id, "message_id")
                .map_err(refuse)?
                .to_string(),
        ),
        None => None,
    };
    let channel_user = channel_user(&key.id, user);
    // The customer first: one customer sending too fast does not use up the allowance of
    // everyone else behind the same address.
    state
        .limits
        .customer_message(&format!("rest:{channel_user}"))
        .map_err(IntoResponse::into_response)?;
    state
        .limits
        .api_message(ip)
        .map_err(IntoResponse::into_response)?;
    let _in_flight = state
        .limits
        .api_turn(ip)
        .map_err(IntoResponse::into_response)?;
    let mut msg = Inbound::new(ChannelKind::Rest, channel_user, body.text);
    msg.origin = Some(super::limits::address_key(ip));
    if let Some(id) = message_id {
        msg = msg.with_message_id(id);
    }
    if let Some(token) = body.customer_token.as_deref() {
        msg.profile = Some(profile_from_token(&state, token).map_err(IntoResponse::into_response)?);
    }
    let received = state
        .intake
        .receive(msg)
        .await
        .map_err(|e| AppError::from(e).into_response())?;
    Ok(ApiJson(received.turn))
}

async fn queues(caller: Caller, State(state): State<AppState>) -> Result<Response, AppError> {
    if !caller.is_agent() {
        return Err(AppError::Forbidden(
            "this API key cannot read the queues: it needs the agent, lead or admin scope".into(),
        ));
    }
    let queues: Vec<QueueView> = state.desk.queues().await?;
    Ok(ApiJson(queues).into_response())
}

/// A conversation as the integration that wrote it sees it.
#[derive(Serialize)]
struct IntegrationView {
    conversation_id: String,
    user_id: String,
    status: Status,
    queue: Option<crate::desk::QueueSlot>,
    messages: Vec<IntegrationMessage>,
}

#[derive(Serialize)]
struct IntegrationMessage {
    /// `in` (the customer) or `out` (the bot or an agent).
    direction: &'static str,
    from: &'static str,
    text: String,
    time: chrono::DateTime<chrono::Utc>,
}

async fn conversation(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    if caller.is_agent() {
        return super::console::transcript(&state, &id).await;
    }
    let Caller::Key { record, .. } = caller else {
        unreachable!("agents are handled above")
    };
    let not_found = || AppError::NotFound(format!("no conversation {id} for this API key"));
    let c = state
        .desk
        .conversation(&crate::message::ConversationId(id.clone()))
        .await?
        .ok_or_else(not_found)?;
    let prefix = channel_user(&record.id, "");
    let Some(user_id) = (c.channel == ChannelKind::Rest)
        .then(|| c.channel_user.strip_prefix(&prefix))
        .flatten()
    else {
        return Err(not_found());
    };
    let queue = state.desk.queue_slot(&c).await;
    let messages = c
        .messages
        .iter()
        .map(|m| {
            let (direction, from) = match m.from {
                Speaker::Customer => ("in", "customer"),
                Speaker::Bot => ("out", "bot"),
                Speaker::Agent(_) => ("out", "agent"),
            };
            IntegrationMessage {
                direction,
                from,
                text: m.text.clone(),
                time: m.time,
            }
        })
        .collect();
    Ok(ApiJson(IntegrationView {
        conversation_id: c.id.0.clone(),
        user_id: user_id.to_string(),
        status: c.status,
        queue,
        messages,
    })
    .into_response())
}
