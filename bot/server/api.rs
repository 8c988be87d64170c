//! The REST channel and the agents' API.
//!
//! - `POST /api/v1/messages` (an API key with the `messages` scope): a customer's message.
//!   The `user_id` is the integration's own: it is filed under the key's id, so two
//!   integrations can never write into each other's customers.
//! - `GET /api/v1/conversations/{id}`: for a `messages` key, only conversations written
//!   with that key (messages with direction, text and time; status; queue); for an agent
//!   session or an `agent`/`lead`/`admin` key, the full transcript.
//! - `GET /api/v1/queues`: an agent session or an `agent`/`lead`/`admin` key.
//! - `GET|DELETE /api/v1/customers/{id}` (export, erase) and `POST /api/v1/api-keys`: an
//!   admin agent's session or an `admin` key (see `privacy.rs`).

pub use super::api_keys::Caller;
use super::auth::Scope;
use super::error::{ApiJson, AppError};
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
}

/// The REST channel's user for `user_id` sent with key `key_id`.
pub fn channel_user(key_id: &str, user_id: &str) -> String {
    format!("{key_id}:{user_id}")
}

async fn post_message(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PostMessage>,
) -> Result<ApiJson<Turn>, AppError> {
    let key = match caller {
        Caller::Key { record, scope } if scope.allows(Scope::Messages) => record,
        Caller::Key { .. } => {
            return Err(AppError::Forbidden(
                "this API key cannot post messages: create one with --scope messages".into(),
            ))
        }
        Caller::Agent { .. } => return Err(AppError::api_key_required()),
    };
    let user = check_user_id(&body.user_id)?;
    if let Err(e) = check_text(&body.text, state.config.server.max_text_len) {
        metrics::message_rejected("invalid");
        return Err(e);
    }
    let mut msg = Inbound::new(ChannelKind::Rest, channel_user(&key.id, user), body.text);
    if let Some(token) = body.customer_token.as_deref() {
        msg.profile = Some(profile_from_token(&state, token)?);
    }
    Ok(ApiJson(state.intake.receive(msg).await?.turn))
}

async fn queues(caller: Caller, State(state): State<AppState>) -> Result<Response, AppError> {
    if !caller.is_agent() {
        return Err(AppError::Forbidden(
            "this API key cannot read the queues: it needs the agent, lead or admin scope".into(),
        ));
    }
    let queues: Vec<QueueView> = state.desk.queues()?;
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
        return super::console::transcript(&state, &id);
    }
    let Caller::Key { record, .. } = caller else {
        unreachable!("agents are handled above")
    };
    let not_found = || AppError::NotFound(format!("no conversation {id} for this API key"));
    let c = state
        .desk
        .conversation(&crate::message::ConversationId(id.clone()))?
        .ok_or_else(not_found)?;
    let prefix = channel_user(&record.id, "");
    let Some(user_id) = (c.channel == ChannelKind::Rest)
        .then(|| c.channel_user.strip_prefix(&prefix))
        .flatten()
    else {
        return Err(not_found());
    };
    let queue = c
        .queue
        .clone()
        .filter(|_| c.status == Status::Queued)
        .map(|name| {
            let position = state
                .desk
                .queues()
                .ok()
                .and_then(|qs| {
                    qs.into_iter()
                        .find(|q| q.name == name)?
                        .entries
                        .into_iter()
                        .find(|e| e.conversation_id == c.id)
                        .map(|e| e.position)
                })
                .unwrap_or(0);
            crate::desk::QueueSlot { name, position }
        });
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
