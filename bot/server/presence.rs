//! Agents' availability for auto-assignment (`desk/presence.rs`, `desk/assign.rs`):
//!
//! - `GET /console/api/me/availability`: `{"agent", "available", "since"?, "auto_assign"}`.
//! - `POST /console/api/me/availability` `{"available": bool}` (CSRF-checked like every
//!   console action): available, for as long as this console session lasts (a logout or
//!   an expired session makes the agent away within seconds); or away, which puts the
//!   agent's conversations back at their place in their queues for the others (listed in
//!   `handed_back`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::auth::{check_csrf, check_origin, session_of, AgentSession};
use super::error::{ApiJson, AppError};
use super::AppState;
use crate::desk::Availability;

pub fn routes() -> Router<AppState> {
    Router::new().route("/console/api/me/availability", get(show).post(set))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetAvailability {
    available: bool,
}

async fn show(
    AgentSession(agent): AgentSession,
    State(state): State<AppState>,
) -> Result<ApiJson<Availability>, AppError> {
    Ok(ApiJson(state.desk.availability(&agent).await?))
}

async fn set(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<ApiJson<SetAvailability>, AppError>,
) -> Result<ApiJson<Availability>, AppError> {
    // Who asks first: the body of a stranger is not read.
    let session = session_of(&state, &headers)
        .await
        .ok_or_else(AppError::login_required)?;
    check_origin(&state, &headers)?;
    check_csrf(&state, &headers, &session.sid)?;
    let ApiJson(body) = body?;
    let availability = state
        .desk
        .set_availability(&session.agent, body.available, Some(&session.sid))
        .await?;
    Ok(ApiJson(availability))
}
