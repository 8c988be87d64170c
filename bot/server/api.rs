//! The REST channel (`POST /api/v1/messages`) for integrations and scripts, and the agent
//! API's read side (`GET /api/v1/queues`, `GET /api/v1/conversations/{id}`), which needs an
//! agent session.

use super::console::AgentSession;
use super::error::{ApiJson, AppError};
use super::{metrics, AppState};
use crate::desk::{Conversation, QueueView, Reply, Turn};
use crate::message::{ChannelKind, ConversationId, Inbound, Profile, Status};
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use std::time::Instant;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/messages", post(post_message))
        .route("/api/v1/queues", get(queues))
        .route("/api/v1/conversations/{id}", get(conversation))
}

/// Longest accepted channel user id.
pub const MAX_USER_ID: usize = 200;

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

/// Checks a customer's text against the configured limit; the error says what to change.
pub fn check_text(text: &str, max_chars: usize) -> Result<(), AppError> {
    if text.trim().is_empty() {
        return Err(AppError::BadRequest(
            "`text` is empty: send the customer's message as a non-empty string".into(),
        ));
    }
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(AppError::TooLarge(format!(
            "`text` has {chars} characters; the limit is {max_chars} (server.max_text_len): \
             shorten the message or split it"
        )));
    }
    Ok(())
}

/// A trusted profile from a shop-signed customer token.
pub fn profile_from_token(state: &AppState, token: &str) -> Result<Profile, AppError> {
    let claims = state.signer.verify_customer(token).map_err(|e| {
        AppError::Unauthorized(format!(
            "customer_token refused: {e}; sign it with the server secret (see the README)"
        ))
    })?;
    Ok(Profile {
        tier: claims.tier,
        lifetime_value: claims.lifetime_value,
        name: claims.name,
        email: claims.email,
        customer_id: Some(claims.customer_id),
    })
}

/// Hands one message to the desk, counting it and its latency.
/// A `/link` command is answered here and never reaches the NLU.
pub async fn deliver(state: &AppState, msg: Inbound) -> Result<Turn, AppError> {
    if let Some(text) = state.linker.answer(&msg).await {
        return Ok(link_turn(state, &msg, text));
    }
    let channel = msg.channel.as_str();
    let started = Instant::now();
    match state.desk.receive(msg).await {
        Ok(turn) => {
            metrics::message_handled(channel, started.elapsed(), turn.replies.len());
            Ok(turn)
        }
        Err(e) => {
            metrics::message_rejected(match e {
                crate::desk::DeskError::Busy => "busy",
                _ => "error",
            });
            Err(e.into())
        }
    }
}

/// The answer to a link command, shaped like any other turn.
fn link_turn(state: &AppState, msg: &Inbound, text: String) -> Turn {
    let open = state
        .desk
        .conversation_of(msg.channel, &msg.channel_user)
        .ok()
        .flatten()
        .and_then(|id| state.desk.conversation(&id).ok().flatten());
    let (conversation_id, status) = match open {
        Some(c) => (c.id, c.status),
        None => (
            ConversationId(format!("link:{}", msg.identity())),
            Status::Bot,
        ),
    };
    Turn {
        conversation_id,
        status,
        replies: vec![Reply { text }],
        queue: None,
    }
}

async fn post_message(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PostMessage>,
) -> Result<ApiJson<Turn>, AppError> {
    let user = body.user_id.trim();
    if user.is_empty() {
        return Err(AppError::BadRequest(
            "`user_id` is empty: send the id of the customer in your system".into(),
        ));
    }
    if user.chars().count() > MAX_USER_ID {
        return Err(AppError::BadRequest(format!(
            "`user_id` is longer than {MAX_USER_ID} characters"
        )));
    }
    if let Err(e) = check_text(&body.text, state.config.server.max_text_len) {
        metrics::message_rejected("invalid");
        return Err(e);
    }
    let mut msg = Inbound::new(ChannelKind::Rest, user, body.text);
    if let Some(token) = body.customer_token.as_deref() {
        msg.profile = Some(profile_from_token(&state, token)?);
    }
    Ok(ApiJson(deliver(&state, msg).await?))
}

async fn queues(
    _agent: AgentSession,
    State(state): State<AppState>,
) -> Result<ApiJson<Vec<QueueView>>, AppError> {
    Ok(ApiJson(state.desk.queues()?))
}

async fn conversation(
    _agent: AgentSession,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<Conversation>, AppError> {
    state
        .desk
        .conversation(&ConversationId(id.clone()))?
        .map(ApiJson)
        .ok_or_else(|| AppError::NotFound(format!("no conversation {id}")))
}
