//! The REST channel (`POST /api/v1/messages`) for integrations and scripts. The agent API's
//! read side (`GET /api/v1/queues`, `GET /api/v1/conversations/{id}`) is served by the
//! console's handlers, behind an agent session.

use super::error::{ApiJson, AppError};
use super::validate::{check_text, check_user_id, profile_from_token};
use super::AppState;
use crate::desk::Turn;
use crate::message::{ChannelKind, Inbound};
use crate::metrics;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/messages", post(post_message))
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

async fn post_message(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PostMessage>,
) -> Result<ApiJson<Turn>, AppError> {
    let user = check_user_id(&body.user_id)?;
    if let Err(e) = check_text(&body.text, state.config.server.max_text_len) {
        metrics::message_rejected("invalid");
        return Err(e);
    }
    let mut msg = Inbound::new(ChannelKind::Rest, user, body.text);
    if let Some(token) = body.customer_token.as_deref() {
        msg.profile = Some(profile_from_token(&state, token)?);
    }
    Ok(ApiJson(state.intake.receive(msg).await?.turn))
}
