//! The lead's pages' API (roles `lead` and `admin`) for what the cockpit watches: the rules,
//! the intents, and the canned replies, prompts and help centre when the config names them.
//! `{kind}` is one of `GET /console/api/config`'s kinds.
//!
//! - `GET /console/api/config`: each kind's state (version in force, a refused change
//!   with its file, line and reason), where it lives, whether it is built in.
//! - `GET /console/api/config/{kind}`: the state, the text in force, the newest 50 versions.
//! - `GET /console/api/config/{kind}/versions/{id}`: one version's text and its diff
//!   against the version before it.
//! - `POST /console/api/config/{kind}/check` `{"text"}`: the checks the server runs on a
//!   change, without applying it (`{"ok": true}` or the problem's file, line and reason).
//! - `PUT /console/api/config/{kind}` `{"text"}`: checked, written and put in force as the
//!   newest version (422 with the problem when it does not pass; nothing changes).
//! - `POST /console/api/config/{kind}/versions/{id}/rollback`: version `id` becomes the
//!   newest and is put in force (and written).
//!
//! `/console/api/rules...` are the same for the rules. Actions are CSRF-checked like every
//! console action.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{AgentAction, AgentSession};
use super::error::{ApiJson, AppError};
use super::AppState;
use crate::cockpit::{with_diff, CockpitError, Live, RULES};

/// The most text one edit may carry (a rules file or an intents folder, JSON-escaped).
const MAX_EDIT: usize = 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/api/config", get(kinds))
        .route("/console/api/config/{kind}", get(one).put(edit))
        .route("/console/api/config/{kind}/check", post(check))
        .route("/console/api/config/{kind}/versions/{id}", get(version))
        .route(
            "/console/api/config/{kind}/versions/{id}/rollback",
            post(rollback),
        )
        .route("/console/api/rules", get(rules))
        .route("/console/api/rules/versions/{id}", get(rules_version))
        .route(
            "/console/api/rules/versions/{id}/rollback",
            post(rules_rollback),
        )
        // A whole folder is one edit; who sends it is checked before the body is read.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_EDIT + 64 * 1024))
}

/// Leads and admins only.
pub(super) fn lead(state: &AppState, agent: &str) -> Result<(), AppError> {
    match state.desk.agent(agent) {
        Some(a) if a.is_lead() => Ok(()),
        _ => Err(AppError::Forbidden(
            "this is for leads: only an agent with role = \"lead\" or \"admin\" in [[agents]] \
             may see the lead's pages (configuration, reports, the unanswered inbox, KPIs)"
                .into(),
        )),
    }
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

fn live<'a>(state: &'a AppState, kind: &str) -> Result<&'a Live, AppError> {
    state.cockpit.get(kind).ok_or_else(|| {
        AppError::NotFound(format!(
            "`{kind}` is not watched here: GET /console/api/config lists what is (canned replies, prompts and the help centre once the config names their file or folder)"
        ))
    })
}

/// Edits and rollbacks write the lead's own files, never the binary's built-in copies.
fn writable(state: &AppState, kind: &str) -> Result<(), AppError> {
    if state.cockpit.is_built_in(kind) {
        return Err(AppError::Conflict(format!(
            "this server runs the built-in {kind}, which are not files of yours: `frontdesk init DIR` \
             writes editable copies; point the config at them (engine.rules, engine.intents_dir), then change them"
        )));
    }
    Ok(())
}

async fn kinds(
    AgentSession(agent): AgentSession,
    State(state): State<AppState>,
) -> Result<ApiJson<Value>, AppError> {
    lead(&state, &agent)?;
    let list: Vec<Value> = state
        .cockpit
        .all()
        .map(|l| {
            json!({"kind": l.kind(), "place": l.place().display().to_string(),
                   "built_in": state.cockpit.is_built_in(l.kind()), "state": l.state()})
        })
        .collect();
    Ok(ApiJson(json!({ "kinds": list })))
}

async fn one(
    AgentSession(agent): AgentSession,
    State(state): State<AppState>,
    Path(kind): Path<String>,
) -> Result<ApiJson<Value>, AppError> {
    lead(&state, &agent)?;
    describe(&state, &kind).await.map(ApiJson)
}

async fn describe(state: &AppState, kind: &str) -> Result<Value, AppError> {
    let live = live(state, kind)?;
    let versions = state.store.versions(kind, 50).await.map_err(internal)?;
    let now = live.state();
    let text = versions
        .iter()
        .find(|v| Some(v.id) == now.version)
        .map(|v| v.text.clone());
    let list: Vec<Value> = versions
        .iter()
        .map(|v| {
            json!({"id": v.id, "author": v.author, "time": v.time, "summary": v.summary,
                   "sha256": v.sha256})
        })
        .collect();
    Ok(json!({
        "kind": kind,
        "file": live.place().display().to_string(),
        "built_in": state.cockpit.is_built_in(kind),
        "state": now,
        "text": text,
        "versions": list,
    }))
}

async fn version(
    AgentSession(agent): AgentSession,
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, u64)>,
) -> Result<ApiJson<Value>, AppError> {
    lead(&state, &agent)?;
    live(&state, &kind)?;
    let Some((v, diff)) = with_diff(state.store.as_ref(), &kind, id)
        .await
        .map_err(internal)?
    else {
        return Err(AppError::NotFound(format!("no version {id} of the {kind}")));
    };
    Ok(ApiJson(json!({"version": v, "diff": diff})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Text {
    text: String,
}

fn bounded(text: &Text) -> Result<(), AppError> {
    if text.text.len() > MAX_EDIT {
        return Err(AppError::BadRequest(format!(
            "{} bytes is more than one change may carry ({MAX_EDIT}); edit the files on disk instead",
            text.text.len()
        )));
    }
    Ok(())
}

async fn check(
    AgentAction(agent): AgentAction,
    State(state): State<AppState>,
    Path(kind): Path<String>,
    axum::Json(text): axum::Json<Text>,
) -> Result<ApiJson<Value>, AppError> {
    lead(&state, &agent)?;
    bounded(&text)?;
    let live = live(&state, &kind)?;
    Ok(ApiJson(match live.source().check(&text.text) {
        Ok(()) => json!({"ok": true}),
        Err(p) => json!({"ok": false, "problem": p}),
    }))
}

async fn edit(
    AgentAction(agent): AgentAction,
    State(state): State<AppState>,
    Path(kind): Path<String>,
    axum::Json(text): axum::Json<Text>,
) -> Result<ApiJson<Value>, AppError> {
    lead(&state, &agent)?;
    bounded(&text)?;
    writable(&state, &kind)?;
    let live = live(&state, &kind)?;
    match live.edit(&text.text, &agent).await {
        Ok(v) => {
            tracing::info!(%agent, kind, version = v.id, summary = %v.summary, "configuration edited from the console");
            Ok(ApiJson(
                json!({"version": v.id, "author": v.author, "summary": v.summary}),
            ))
        }
        Err(CockpitError::Refused(p)) => {
            Err(AppError::Unprocessable(format!("{p}; nothing was changed")))
        }
        Err(e) => Err(internal(e)),
    }
}

async fn rollback(
    AgentAction(agent): AgentAction,
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, u64)>,
) -> Result<ApiJson<Value>, AppError> {
    lead(&state, &agent)?;
    writable(&state, &kind)?;
    let live = live(&state, &kind)?;
    match live.rollback(id, &agent).await {
        Ok(v) => {
            tracing::info!(%agent, kind, to = id, version = v.id, "rolled back from the console");
            Ok(ApiJson(
                json!({"version": v.id, "author": v.author, "summary": v.summary}),
            ))
        }
        Err(e @ CockpitError::NoSuchVersion { .. }) => Err(AppError::NotFound(e.to_string())),
        Err(e @ CockpitError::Unreadable { .. }) => Err(AppError::Conflict(e.to_string())),
        Err(e) => Err(internal(e)),
    }
}

async fn rules(session: AgentSession, state: State<AppState>) -> Result<ApiJson<Value>, AppError> {
    one(session, state, Path(RULES.to_string())).await
}

async fn rules_version(
    session: AgentSession,
    state: State<AppState>,
    Path(id): Path<u64>,
) -> Result<ApiJson<Value>, AppError> {
    version(session, state, Path((RULES.to_string(), id))).await
}

async fn rules_rollback(
    action: AgentAction,
    state: State<AppState>,
    Path(id): Path<u64>,
) -> Result<ApiJson<Value>, AppError> {
    rollback(action, state, Path((RULES.to_string(), id))).await
}
