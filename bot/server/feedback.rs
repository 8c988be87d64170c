//! Learning from escalations, the console's API (`crate::cockpit::feedback` computes,
//! `desk/feedback.rs` keeps the marks):
//!
//! - `POST /console/api/conversations/{id}/feedback` `{"mark": "needed" | "not_needed" |
//!   "wrong_answer", "reason"?: "one line", "message"?: index}`: an agent marks the
//!   conversation's escalation, or a bot answer (`message`, else the bot's latest answer)
//!   wrong. CSRF-checked like every console action. Answers `{"conversation", "verdict",
//!   "marks": [{"by", "at", "mark", "reason"?, "escalation"?, "message"?, "intent"?}]}`; 403
//!   for a conversation the agent did not handle, 404 for an unknown one, 409 for an
//!   escalation mark on a conversation that never escalated, 400 for a bad reason or index.
//! - `GET /console/api/conversations/{id}/feedback`: the same answer, for any agent.
//! - `GET /console/api/feedback?since=30d` (leads and admins): the figures of
//!   [`FeedbackReport`] over the conversations changed in the window (`h`, `d` or `w`).

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{AgentAction, AgentSession};
use super::error::{ApiJson, AppError};
use super::AppState;
use crate::cockpit::feedback::{parse_since, report, verdict_of, FeedbackReport};
use crate::message::ConversationId;
use crate::store::{Mark, MarkKind};

/// Most conversations one report reads (newest changed first); past it the report says
/// `truncated`.
pub const MAX_CONVERSATIONS: usize = 20_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/console/api/conversations/{id}/feedback",
            get(marks).post(mark),
        )
        .route("/console/api/feedback", get(figures))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkBody {
    mark: MarkKind,
    #[serde(default)]
    reason: Option<String>,
    /// Wrong answers: the bot message's index in the conversation.
    #[serde(default)]
    message: Option<u64>,
}

fn answer(id: &str, marks: &[Mark]) -> ApiJson<Value> {
    ApiJson(json!({"conversation": id, "verdict": verdict_of(marks), "marks": marks}))
}

async fn mark(
    AgentAction(agent): AgentAction,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MarkBody>,
) -> Result<ApiJson<Value>, AppError> {
    let marks = state
        .desk
        .mark(
            &agent,
            &ConversationId(id.clone()),
            body.mark,
            body.reason.as_deref(),
            body.message,
        )
        .await?;
    Ok(answer(&id, &marks))
}

async fn marks(
    _agent: AgentSession,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<Value>, AppError> {
    let record = state
        .store
        .conversation(&ConversationId(id.clone()))
        .await
        .map_err(|e| AppError::from(crate::desk::DeskError::Storage(e)))?
        .ok_or_else(|| AppError::NotFound(format!("no conversation {id}")))?;
    Ok(answer(&id, &record.feedback))
}

#[derive(Deserialize)]
struct Window {
    #[serde(default)]
    since: Option<String>,
}

async fn figures(
    AgentSession(agent): AgentSession,
    State(state): State<AppState>,
    Query(window): Query<Window>,
) -> Result<ApiJson<FeedbackReport>, AppError> {
    match state.desk.agent(&agent) {
        Some(a) if a.is_lead() => {}
        _ => {
            return Err(AppError::Forbidden(
                "only a lead or an admin (role = \"lead\" or \"admin\" in [[agents]]) may see \
                 the figures of every agent's marks"
                    .into(),
            ))
        }
    }
    let since = parse_since(window.since.as_deref().unwrap_or("30d"), Utc::now())?;
    let records = state
        .store
        .conversations_since(since, MAX_CONVERSATIONS)
        .await
        .map_err(|e| AppError::from(crate::desk::DeskError::Storage(e)))?;
    let truncated = records.len() >= MAX_CONVERSATIONS;
    Ok(ApiJson(report(&records, since, truncated)))
}
