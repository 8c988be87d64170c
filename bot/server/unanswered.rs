//! The unanswered inbox's API (roles `lead` and `admin`; `crate::cockpit::unanswered`):
//!
//! - `GET /console/api/unanswered?since=30d`: the messages the bot could not answer since
//!   then, grouped, largest first: `{"groups": [{"id", "count", "examples", "kinds",
//!   "last_seen"}], "read", "conversations", "since"}`.
//! - `POST /console/api/unanswered/{id}/intent` `{"name", "answer"?, "description"?,
//!   "examples"?, "since"?}`: writes `NAME.yaml` into the intents folder (`engine.intents_dir`)
//!   with the group's messages as examples; the live reload trains on it. Never replaces a
//!   file.
//! - `POST /console/api/unanswered/{id}/article` `{"title", "since"?}`: writes a draft into
//!   `drafts/` of the help centre's folder (`kb.dir`).
//!
//! Both actions are CSRF-checked and written to the audit. A group is found again by its id
//! in the same window (`since`, default 30 days): new messages since the page was read may
//! have changed it, and then it is not found (read the inbox again).

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{AgentAction, AgentSession};
use super::cockpit::lead;
use super::error::{ApiJson, AppError};
use super::AppState;
use crate::cockpit::unanswered::drafts::{self, DraftError, NewIntent};
use crate::cockpit::unanswered::{self as inbox, Group, Inbox, Replies};
use crate::store::AuditLine;

/// The window when none is given.
pub const DEFAULT_SINCE: &str = "30d";
/// Longest answer, description or extra example accepted.
const MAX_TEXT: usize = 4000;
/// Most extra examples accepted.
const MAX_MORE: usize = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/api/unanswered", get(list))
        .route("/console/api/unanswered/{id}/intent", post(to_intent))
        .route("/console/api/unanswered/{id}/article", post(to_article))
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

#[derive(Debug, Deserialize)]
struct Window {
    since: Option<String>,
}

/// The out-of-scope answer of the intents in force, if they have one.
fn folder_answer(state: &AppState) -> Option<String> {
    state
        .desk
        .intents()
        .out_of_scope
        .as_ref()
        .map(|o| o.response.text.clone())
}

/// The inbox of the window `since` (`DEFAULT_SINCE` when none).
async fn read_inbox(
    state: &AppState,
    since: Option<&str>,
) -> Result<(Inbox, DateTime<Utc>, Replies), AppError> {
    let since = crate::cockpit::parse_since(since.unwrap_or(DEFAULT_SINCE), Utc::now())?;
    let help = state.desk.help_centre().ok_or_else(|| {
        AppError::Conflict(
            "the unanswered inbox groups messages with the local encoder, which this server \
             reaches through its help centre, and the help centre is off: set kb.enabled = true"
                .into(),
        )
    })?;
    let replies = Replies::new(folder_answer(state), state.desk.llm().is_some());
    let read = inbox::inbox(state.store.as_ref(), since, &replies, help.as_ref())
        .await
        .map_err(internal)?;
    Ok((read, since, replies))
}

async fn list(
    AgentSession(agent): AgentSession,
    State(state): State<AppState>,
    window: Result<Query<Window>, axum::extract::rejection::QueryRejection>,
) -> Result<ApiJson<Value>, AppError> {
    lead(&state, &agent)?;
    let Query(window) = window.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let (read, since, _) = read_inbox(&state, window.since.as_deref()).await?;
    Ok(ApiJson(json!({
        "groups": read.groups,
        "read": read.read,
        "conversations": read.conversations,
        "since": since,
    })))
}

fn find(read: Inbox, id: &str) -> Result<Group, AppError> {
    read.groups.into_iter().find(|g| g.id == id).ok_or_else(|| {
        AppError::NotFound(format!(
            "no group {id} in the unanswered inbox of this window: new messages may have \
             changed it; read the inbox again (with the same `since`)"
        ))
    })
}

fn bounded(what: &str, text: Option<&str>) -> Result<(), AppError> {
    match text {
        Some(t) if t.chars().count() > MAX_TEXT => Err(AppError::BadRequest(format!(
            "the {what} is longer than {MAX_TEXT} characters: shorten it"
        ))),
        _ => Ok(()),
    }
}

fn draft_error(e: DraftError) -> AppError {
    match e {
        DraftError::Invalid(m) => AppError::BadRequest(m),
        e @ DraftError::Exists(_) => AppError::Conflict(e.to_string()),
        e @ DraftError::Write { .. } => internal(e),
    }
}

/// Writes the action to the audit: who, what, the group (its id hashed like a subject).
async fn audit(state: &AppState, agent: &str, action: String, id: &str) -> Result<(), AppError> {
    state
        .store
        .audit(&AuditLine {
            time: Utc::now(),
            action,
            subject: crate::store::subject_hash(&format!("unanswered:{id}")),
            actor: format!("agent:{agent}"),
        })
        .await
        .map_err(internal)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentBody {
    name: String,
    answer: Option<String>,
    description: Option<String>,
    #[serde(default)]
    examples: Vec<String>,
    since: Option<String>,
}

async fn to_intent(
    AgentAction(agent): AgentAction,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<IntentBody>,
) -> Result<ApiJson<Value>, AppError> {
    lead(&state, &agent)?;
    let Some(dir) = state.config.engine.intents_dir.clone() else {
        return Err(AppError::Conflict(
            "this server runs the built-in intents, which are not a folder of yours: \
             `frontdesk init DIR` writes an editable intents folder; point engine.intents_dir \
             at it, then try again"
                .into(),
        ));
    };
    bounded("answer", body.answer.as_deref())?;
    bounded("description", body.description.as_deref())?;
    if body.examples.len() > MAX_MORE {
        return Err(AppError::BadRequest(format!(
            "at most {MAX_MORE} more examples: send fewer"
        )));
    }
    for e in &body.examples {
        bounded("example", Some(e))?;
    }
    let (read, _, replies) = read_inbox(&state, body.since.as_deref()).await?;
    let group = find(read, &id)?;
    // Without an answer: the one these customers were given so far (the folder's, which
    // `Replies::new` lists last, else the built-in one).
    let fallback = replies.cannot_help.last().cloned().unwrap_or_default();
    let yaml = drafts::intent_yaml(&NewIntent {
        name: &body.name,
        answer: body.answer.as_deref(),
        description: body.description.as_deref(),
        more_examples: &body.examples,
        group: &group,
        fallback: &fallback,
        author: &agent,
        now: Utc::now(),
    })
    .map_err(draft_error)?;
    let name = body.name.trim().to_string();
    let path = {
        let (dir, name, yaml) = (dir.clone(), name.clone(), yaml.clone());
        tokio::task::spawn_blocking(move || drafts::write_intent(&dir, &name, &yaml))
            .await
            .map_err(internal)?
            .map_err(draft_error)?
    };
    let examples = yaml.matches("\n  - ").count();
    tracing::info!(%agent, group = %id, intent = %name, file = %path.display(), examples,
        "intent written from the unanswered inbox");
    audit(
        &state,
        &agent,
        format!(
            "unanswered group {id} made intent {name} ({}) by agent {agent}",
            path.display()
        ),
        &id,
    )
    .await?;
    Ok(ApiJson(json!({
        "intent": name,
        "file": path.display().to_string(),
        "examples": examples,
        "messages": group.count,
        "answer_to_write": body.answer.as_deref().is_none_or(|a| a.trim().is_empty()),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArticleBody {
    title: String,
    since: Option<String>,
}

async fn to_article(
    AgentAction(agent): AgentAction,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ArticleBody>,
) -> Result<ApiJson<Value>, AppError> {
    lead(&state, &agent)?;
    let Some(kb_dir) = state.config.kb.dir.clone() else {
        return Err(AppError::Conflict(
            "this server runs the built-in help centre, which cannot be edited: set kb.dir to a \
             folder of articles of yours (`frontdesk init DIR` writes one), then try again"
                .into(),
        ));
    };
    bounded("title", Some(&body.title))?;
    let (read, _, _) = read_inbox(&state, body.since.as_deref()).await?;
    let group = find(read, &id)?;
    let path = {
        let (title, group, agent) = (body.title.clone(), group.clone(), agent.clone());
        tokio::task::spawn_blocking(move || {
            drafts::write_article(&kb_dir, &title, &group, &agent, Utc::now())
        })
        .await
        .map_err(internal)?
        .map_err(draft_error)?
    };
    tracing::info!(%agent, group = %id, file = %path.display(),
        "help-centre article draft written from the unanswered inbox");
    audit(
        &state,
        &agent,
        format!(
            "unanswered group {id} made article draft {} by agent {agent}",
            path.display()
        ),
        &id,
    )
    .await?;
    Ok(ApiJson(json!({
        "file": path.display().to_string(),
        "questions": group.texts.len().min(drafts::MAX_EXAMPLES),
        "messages": group.count,
    })))
}
