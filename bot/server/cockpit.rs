//! The lead's pages' API (roles `lead` and `admin`): the escalation rules in force, their
//! versions with who applied them and what changed, and putting an older version back.
//!
//! - `GET /console/api/rules`: the state (version in force, a refused change with its file,
//!   line and reason), the file's text in force, the newest 50 versions.
//! - `GET /console/api/rules/versions/{id}`: one version's text and its diff against the
//!   version before it.
//! - `POST /console/api/rules/versions/{id}/rollback`: version `id` becomes the newest and is
//!   put in force (and written to the file); CSRF-checked like every console action.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::auth::{AgentAction, AgentSession};
use super::error::{ApiJson, AppError};
use super::AppState;
use crate::cockpit::{with_diff, CockpitError, RULES};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/api/rules", get(rules))
        .route("/console/api/rules/versions/{id}", get(version))
        .route("/console/api/rules/versions/{id}/rollback", post(rollback))
}

/// Leads and admins only.
fn lead(state: &AppState, agent: &str) -> Result<(), AppError> {
    match state.desk.agent(agent) {
        Some(a) if a.is_lead() => Ok(()),
        _ => Err(AppError::Forbidden(
            "only a lead or an admin (role = \"lead\" or \"admin\" in [[agents]]) may see and change the rules"
                .into(),
        )),
    }
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

async fn rules(
    AgentSession(agent): AgentSession,
    State(state): State<AppState>,
) -> Result<ApiJson<Value>, AppError> {
    lead(&state, &agent)?;
    let versions = state.store.versions(RULES, 50).await.map_err(internal)?;
    let live = state.rules.state();
    let text = versions
        .iter()
        .find(|v| Some(v.id) == live.version)
        .map(|v| v.text.clone());
    let list: Vec<Value> = versions
        .iter()
        .map(|v| {
            json!({"id": v.id, "author": v.author, "time": v.time, "summary": v.summary,
                   "sha256": v.sha256})
        })
        .collect();
    Ok(ApiJson(json!({
        "file": state.rules.path().display().to_string(),
        "state": live,
        "text": text,
        "versions": list,
    })))
}

async fn version(
    AgentSession(agent): AgentSession,
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<ApiJson<Value>, AppError> {
    lead(&state, &agent)?;
    let Some((v, diff)) = with_diff(state.store.as_ref(), id)
        .await
        .map_err(internal)?
    else {
        return Err(AppError::NotFound(format!("no version {id} of the rules")));
    };
    Ok(ApiJson(json!({"version": v, "diff": diff})))
}

async fn rollback(
    AgentAction(agent): AgentAction,
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<ApiJson<Value>, AppError> {
    lead(&state, &agent)?;
    if state.config.engine.rules.is_none() {
        return Err(AppError::Conflict(
            "this server runs the built-in rules, which are not a file of yours: `frontdesk init DIR` \
             writes an editable rules.toml; point engine.rules at it, then roll back"
                .into(),
        ));
    }
    match state.rules.rollback(id, &agent).await {
        Ok(v) => {
            tracing::info!(%agent, to = id, version = v.id, "rules rolled back from the console");
            Ok(ApiJson(
                json!({"version": v.id, "author": v.author, "summary": v.summary}),
            ))
        }
        Err(e @ CockpitError::NoSuchVersion(_)) => Err(AppError::NotFound(e.to_string())),
        Err(e @ CockpitError::Unreadable { .. }) => Err(AppError::Conflict(e.to_string())),
        Err(e) => Err(internal(e)),
    }
}
