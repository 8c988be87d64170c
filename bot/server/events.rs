//! `POST /api/v1/events`: the shop's events (order delayed, shipped, refund issued, back in
//! stock) become notices to the order's owner (`crate::notices`). Only a key of the `shop`
//! scope (`frontdesk api-key create NAME --scope shop`) or an admin's key or session may
//! post; a shop key reaches nothing else (`api_keys.rs`).
//!
//! Answers: 202 with what happened (`{"sent": true, "outcome": "sent", "channel":
//! "telegram"}`, or `{"sent": false, "outcome": "held", "why": "quiet hours: ...",
//! "held_until": ...}`), 401 without a valid key, 403 for a key of another scope, 404 when
//! the shop does not know the order, 422 for an event we cannot read (the message says
//! what to send).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use super::api_keys::{Caller, Scope, SHOP_PATH};
use super::error::{ApiJson, AppError};
use super::AppState;
use crate::notices::NoticeError;

/// The route, and the task that sends notices held for the end of quiet hours (started
/// with the router: one per server).
pub(super) fn routes(state: &AppState) -> Router<AppState> {
    crate::notices::spawn_release(
        state.desk.clone(),
        state.config.notices.clone(),
        state.stopping.clone(),
    );
    Router::new().route(SHOP_PATH, post(post_event))
}

async fn post_event(
    State(state): State<AppState>,
    caller: Result<Caller, AppError>,
    body: Result<ApiJson<serde_json::Value>, AppError>,
) -> Result<Response, AppError> {
    let allowed = match caller {
        Ok(Caller::Key { scope, .. }) => scope.allows(Scope::Shop),
        Ok(caller @ Caller::Agent { .. }) => caller.is_admin(),
        Err(AppError::Unauthorized(_)) => {
            return Err(AppError::Unauthorized(
                "send the shop's API key as `Authorization: Bearer KEY` (create one with \
                 `frontdesk api-key create NAME --scope shop`)"
                    .into(),
            ))
        }
        Err(e) => return Err(e),
    };
    if !allowed {
        return Err(AppError::Forbidden(
            "only the shop posts events: use a key made with `frontdesk api-key create NAME \
             --scope shop` (or an admin's)"
                .into(),
        ));
    }
    let ApiJson(event) = body?;
    let now = chrono::Utc::now();
    match crate::notices::handle(&state.desk, &state.config.notices, event, now).await {
        Ok(delivered) => Ok((StatusCode::ACCEPTED, ApiJson(delivered)).into_response()),
        Err(NoticeError::Invalid(m)) => Err(AppError::Unprocessable(m)),
        Err(e @ NoticeError::UnknownOrder(_)) => Err(AppError::NotFound(e.to_string())),
        Err(NoticeError::Desk(e)) => Err(e.into()),
    }
}
