//! Conversation search for agents, leads and admins (any agent may read any conversation in
//! the console):
//!
//! `GET /console/api/search?customer=&order=&text=&from=&to=&limit=`: every field given must
//! match (empty ones are left out). `customer`: part of the customer's id, name, email or
//! channel user id; `order`: an order number (the conversation's order, or a message naming
//! it); `text`: words a message contains; `from`/`to`: RFC 3339 times or `YYYY-MM-DD` days
//! (`to` a day: up to the end of that day, UTC), the conversations active in between;
//! `limit`: 1 to 100 (default 20). Each field at most 200 characters. Answers
//! `{"results": [{"id", "customer", "channel", "channel_user", "status", "queue"?,
//! "assigned_agent"?, "created", "updated", "snippet"?}], "complete"}`, newest changed first
//! (`complete` false: the search stopped at its bound; narrow it). 401 without a console
//! session, 400 for a query it cannot run.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::auth::AgentSession;
use super::error::{ApiJson, AppError};
use super::AppState;
use crate::message::{ChannelKind, ConversationId, Status};
use crate::store::{SearchHit, SearchQuery, MAX_SEARCH_TEXT};

/// Conversations a search returns when it names no limit.
const DEFAULT_LIMIT: usize = 20;

pub fn routes() -> Router<AppState> {
    Router::new().route("/console/api/search", get(search))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    customer: Option<String>,
    order: Option<String>,
    text: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
}

/// One conversation found, as the console lists it.
#[derive(Serialize)]
struct Found {
    id: ConversationId,
    customer: String,
    channel: ChannelKind,
    channel_user: String,
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    queue: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assigned_agent: Option<String>,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snippet: Option<String>,
}

impl From<SearchHit> for Found {
    fn from(hit: SearchHit) -> Found {
        let c = hit.conversation;
        Found {
            id: c.id,
            customer: c.customer,
            channel: c.channel,
            channel_user: c.channel_user,
            status: c.status,
            queue: c.queue,
            assigned_agent: c.assigned_agent,
            created: c.created,
            updated: c.updated,
            snippet: hit.snippet,
        }
    }
}

#[derive(Serialize)]
struct Results {
    results: Vec<Found>,
    complete: bool,
}

async fn search(
    AgentSession(agent): AgentSession,
    State(state): State<AppState>,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<ApiJson<Results>, AppError> {
    let Query(p) = params.map_err(|e| {
        AppError::BadRequest(format!(
            "{}: use customer, order, text, from, to and limit",
            e.body_text()
        ))
    })?;
    let given = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let limit = match given(p.limit) {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse()
            .map_err(|_| AppError::BadRequest("limit must be a number from 1 to 100".into()))?,
    };
    let query = SearchQuery {
        customer: given(p.customer),
        order: given(p.order),
        text: given(p.text),
        from: given(p.from).map(|t| time(&t, false)).transpose()?,
        to: given(p.to).map(|t| time(&t, true)).transpose()?,
        limit,
    };
    let found = state.desk.search(&query).await?;
    tracing::info!(agent = %agent, hits = found.hits.len(), "conversation search");
    Ok(ApiJson(Results {
        results: found.hits.into_iter().map(Found::from).collect(),
        complete: found.complete,
    }))
}

/// An RFC 3339 time, or a day (`YYYY-MM-DD`, UTC): its start, or with `end` the next day's
/// start (a window `to` a day includes that day).
fn time(text: &str, end: bool) -> Result<DateTime<Utc>, AppError> {
    let bad = || {
        AppError::BadRequest(format!(
            "{text:?} is not a time: write 2025-03-01 or 2025-03-01T09:30:00Z"
        ))
    };
    if text.chars().count() > MAX_SEARCH_TEXT {
        return Err(bad());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad())?;
    let day = if end {
        day.succ_opt().ok_or_else(bad)?
    } else {
        day
    };
    Ok(day.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc())
}
