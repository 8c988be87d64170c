//! The lead's what-if before "apply" (roles `lead` and `admin`): a proposed rules text
//! replayed against the rules in force on this store's own conversations, with what differs
//! (`crate::replay::whatif`).
//!
//! - `POST /console/api/config/rules/whatif` `{"text", "since"?: "7d", "queue"?}` → the
//!   comparison as JSON (`changed`, `load_before`/`load_after` by hour, `labels_before`/
//!   `labels_after`, counts), `html` with the same as a page. At most [`MOST`]
//!   conversations, newest first; one what-if at a time per server (a second waits).
//!   The text is checked first: a refused one answers 422 with its line, and nothing is
//!   replayed. Nothing is applied: `PUT /console/api/config/rules` does that.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::auth::AgentAction;
use super::cockpit::lead;
use super::error::{ApiJson, AppError};
use super::AppState;
use crate::cockpit::RULES;
use crate::policy::Rules;
use crate::replay::whatif::{self, Side};

/// The most conversations one what-if replays.
pub const MOST: usize = 500;

/// One what-if at a time: each replays every message twice through the NLU.
static ONE_AT_A_TIME: Semaphore = Semaphore::const_new(1);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/api/config/rules/whatif", post(rules_what_if))
        // a rules file is small; who sends it is checked before the body is read
        .layer(axum::extract::DefaultBodyLimit::max(256 * 1024))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ask {
    text: String,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    queue: Option<String>,
}

async fn rules_what_if(
    AgentAction(agent): AgentAction,
    State(state): State<AppState>,
    axum::Json(ask): axum::Json<Ask>,
) -> Result<ApiJson<Value>, AppError> {
    lead(&state, &agent)?;
    let live = state
        .cockpit
        .get(RULES)
        .ok_or_else(|| AppError::NotFound("the rules are not watched on this server".into()))?;
    let path = live.place().to_path_buf();
    let proposed = Rules::parse(&ask.text, &path).map_err(|e| {
        let at = e.line(&ask.text).map_or(String::new(), |l| format!(":{l}"));
        AppError::Unprocessable(format!("{}{at}: {}", path.display(), e.reason()))
    })?;
    let since = ask.since.as_deref().unwrap_or("7d");
    let from = crate::cockpit::parse_since(since, chrono::Utc::now())?;
    let _turn = ONE_AT_A_TIME
        .acquire()
        .await
        .map_err(|_| AppError::Busy("the server is stopping".into()))?;
    let history = whatif::from_store(state.store.as_ref(), from, ask.queue.as_deref(), MOST)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let nlu = whatif::Remembering::new(state.desk.nlu());
    let in_force = state.desk.rules();
    let started = std::time::Instant::now();
    let result = whatif::what_if(
        &state.replay_desks,
        Side {
            rules: (*in_force).clone(),
            nlu: nlu.clone(),
            intents_dir: None,
        },
        Side {
            rules: proposed,
            nlu: nlu as Arc<_>,
            intents_dir: None,
        },
        &history,
        &|| {},
    )
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?;
    tracing::info!(%agent, conversations = result.conversations, changed = result.changed.len(),
        took_ms = started.elapsed().as_millis() as u64, "what-if from the console");
    let title = format!(
        "the proposed rules against version {} on the last {since}{}",
        live.state().version.unwrap_or(0),
        ask.queue
            .as_ref()
            .map_or(String::new(), |q| format!(" in queue {q}"))
    );
    let mut body = serde_json::to_value(&result).map_err(|e| AppError::Internal(e.to_string()))?;
    body["queues"] = json!(result
        .queue_totals()
        .into_iter()
        .map(|(q, b, a)| json!({"queue": q, "before": b, "after": a}))
        .collect::<Vec<_>>());
    body["title"] = json!(title);
    body["html"] = json!(crate::evaluation::report::whatif_page(&result, &title));
    Ok(ApiJson(body))
}
