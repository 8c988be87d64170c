//! The lead's intents page's data (roles `lead` and `admin`): each intent in force with
//! its examples and answer, and how it fared on this store's conversations.
//!
//! - `GET /console/api/intents?since=30d` → `{"intents": [{"name", "description",
//!   "examples", "answer", "action", "file", "messages", "mean_confidence",
//!   "wrong_answers"}], "out_of_scope": {"messages", "examples"}, "read"}`: `messages` is
//!   the customer messages read as the intent in the window (at most [`MOST`]
//!   conversations, newest first), `wrong_answers` the agents' "wrong answer" marks on it.
//! - `GET /console/lead` → the lead's pages (`assets/lead.html`), `/console/assets/lead.js`.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::AgentSession;
use super::cockpit::lead;
use super::error::{ApiJson, AppError};
use super::AppState;
use crate::cockpit::parse_since;
use crate::message::Speaker;
use crate::nlu::OUT_OF_SCOPE;
use crate::store::MarkKind;

/// The most conversations one figures page reads.
pub const MOST: usize = 2000;

const LEAD_HTML: &str = include_str!("assets/lead.html");
const LEAD_JS: &str = include_str!("assets/lead.js");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/api/intents", get(intents))
        .route("/console/lead", get(page))
        .route("/console/assets/lead.js", get(script))
}

async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match super::auth::agent_of(&state, &headers).await {
        Some(agent) if lead(&state, &agent).is_ok() => Html(LEAD_HTML).into_response(),
        Some(_) => Redirect::to("/console").into_response(),
        None => Redirect::to("/console/login").into_response(),
    }
}

async fn script(AgentSession(agent): AgentSession, State(state): State<AppState>) -> Response {
    if lead(&state, &agent).is_err() {
        return AppError::Forbidden("the lead's pages are for leads and admins".into())
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        LEAD_JS,
    )
        .into_response()
}

#[derive(Deserialize)]
struct Window {
    since: Option<String>,
}

#[derive(Default)]
struct Tally {
    messages: usize,
    confidence: f64,
    wrong: usize,
}

async fn intents(
    AgentSession(agent): AgentSession,
    State(state): State<AppState>,
    Query(window): Query<Window>,
) -> Result<ApiJson<Value>, AppError> {
    lead(&state, &agent)?;
    let since = window.since.as_deref().unwrap_or("30d");
    let from = parse_since(since, chrono::Utc::now())?;
    let internal = |e: crate::store::StoreError| AppError::Internal(e.to_string());
    let records = state
        .store
        .conversations_since(from, MOST)
        .await
        .map_err(internal)?;
    let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
    for record in &records {
        for mark in record
            .feedback
            .iter()
            .filter(|m| m.mark == MarkKind::WrongAnswer)
        {
            if let Some(intent) = &mark.intent {
                tally.entry(intent.clone()).or_default().wrong += 1;
            }
        }
        for m in state.store.messages(&record.id).await.map_err(internal)? {
            if m.from != Speaker::Customer {
                continue;
            }
            if let Some(a) = &m.analysis {
                let t = tally.entry(a.intent.clone()).or_default();
                t.messages += 1;
                t.confidence += a.intent_confidence as f64;
            }
        }
    }
    let figures = |name: &str| {
        let t = tally.get(name);
        let messages = t.map_or(0, |t| t.messages);
        json!({
            "messages": messages,
            "mean_confidence": t.filter(|t| t.messages > 0).map(|t| t.confidence / t.messages as f64),
            "wrong_answers": t.map_or(0, |t| t.wrong),
        })
    };
    let set = state.desk.intents();
    let place = state
        .cockpit
        .get(crate::cockpit::INTENTS)
        .map(|l| l.place().to_path_buf());
    let list: Vec<Value> = set
        .intents
        .iter()
        .map(|i| {
            let mut v = json!({
                "name": i.name,
                "description": i.description,
                "examples": i.examples,
                "answer": i.response.text,
                "action": i.response.action,
                "file": place.as_ref().map(|p| p.join(format!("{}.yaml", i.name)).display().to_string()),
            });
            if let (Some(obj), Value::Object(f)) = (v.as_object_mut(), figures(&i.name)) {
                obj.extend(f);
            }
            v
        })
        .collect();
    let mut out_of_scope = figures(OUT_OF_SCOPE);
    out_of_scope["examples"] = json!(set.out_of_scope.as_ref().map_or(0, |o| o.examples.len()));
    Ok(ApiJson(json!({
        "intents": list,
        "out_of_scope": out_of_scope,
        "read": records.len(),
        "since": since,
    })))
}
