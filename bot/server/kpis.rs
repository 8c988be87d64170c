//! The KPIs (`crate::kpis`) for leads: as JSON or CSV through the API, and as the console's
//! dashboard page.
//!
//! - `GET /api/v1/kpis?since=&until=&queue=&channel=&intent=&rule=&agent=&by=&format=`: an
//!   API key of the `lead` (or `admin`) scope, or a lead's console session. `since` is a
//!   window back from now (`24h`, `7d`, `2w`), a date (`2026-12-01`, UTC) or an RFC 3339
//!   time (default `24h`); `until` likewise or `now` (default). Each KPI is
//!   `{"value", "n", "formula"}`; `by` splits the figures by queue, channel, intent, rule or
//!   agent; `format=csv` gives the same as CSV.
//! - `GET /console/api/kpis`: the same for the console (its CSV link).
//! - `GET /console/kpis`: the dashboard (roles `lead` and `admin`).

use std::collections::BTreeMap;

use axum::extract::{Query as UrlQuery, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};

use super::api_keys::{Caller, Scope};
use super::auth::AgentSession;
use super::cockpit::lead;
use super::error::AppError;
use super::AppState;
use crate::kpis::{self, Dimension, Query, Report};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/kpis", get(api))
        .route("/console/api/kpis", get(console_api))
        .route("/console/kpis", get(dashboard))
}

/// The longest period one report covers.
const MAX_DAYS: i64 = 366;

/// Leads and admins, by console session (as the other lead pages) or by an API key of the
/// `lead` scope.
fn require_lead(state: &AppState, caller: &Caller) -> Result<(), AppError> {
    match caller {
        Caller::Agent { name, .. } => lead(state, name),
        Caller::Key { scope, .. } if scope.allows(Scope::Lead) => Ok(()),
        Caller::Key { .. } => Err(AppError::Forbidden(
            "the KPIs are for leads: send a key made with `frontdesk api-key create NAME \
             --scope lead`, or log in as an agent with role = \"lead\" or \"admin\""
                .into(),
        )),
    }
}

/// A point in time as the query gives it: a window back from `now` (`7d`), a date (its
/// midnight, UTC) or an RFC 3339 time.
fn point(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, AppError> {
    let t = text.trim();
    if t == "now" {
        return Ok(now);
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Ok(at.with_timezone(&Utc));
    }
    crate::cockpit::parse_since(t, now).map_err(|_| {
        AppError::BadRequest(format!(
            "cannot read the time {:?}: write a window back from now (24h, 7d, 2w), a date \
             (2026-12-01) or an RFC 3339 time",
            t.chars().take(40).collect::<String>()
        ))
    })
}

/// The query's parameters as a KPI query (checked: a known dimension, a period forward and
/// at most a year, short filter values).
pub fn parse(params: &BTreeMap<String, String>, now: DateTime<Utc>) -> Result<Query, AppError> {
    let get = |k: &str| params.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    if let Some((k, _)) = params.iter().find(|(_, v)| v.chars().count() > 200) {
        return Err(AppError::BadRequest(format!(
            "{k} is too long (200 characters at most)"
        )));
    }
    let since = point(get("since").unwrap_or("24h"), now)?;
    let until = point(get("until").unwrap_or("now"), now)?;
    if until <= since {
        return Err(AppError::BadRequest("until must come after since".into()));
    }
    if until - since > chrono::Duration::days(MAX_DAYS) {
        return Err(AppError::BadRequest(format!(
            "one report covers at most {MAX_DAYS} days: narrow since/until"
        )));
    }
    let by = get("by")
        .map(|b| b.parse::<Dimension>())
        .transpose()
        .map_err(AppError::BadRequest)?;
    let owned = |k: &str| get(k).map(str::to_string);
    Ok(Query {
        since,
        until,
        queue: owned("queue"),
        channel: owned("channel"),
        intent: owned("intent"),
        rule: owned("rule"),
        agent: owned("agent"),
        by,
    })
}

/// The report for `params` on the store, with the rules in force (each queue's SLA and
/// opening hours).
pub async fn report_for(
    state: &AppState,
    params: &BTreeMap<String, String>,
) -> Result<Report, AppError> {
    let now = Utc::now();
    let query = parse(params, now)?;
    let rules = state.desk.rules();
    let settings = kpis::settings_of(&rules, state.config.kpis.recontact_hours);
    let clock = kpis::business_clock(&rules);
    kpis::report(state.store.as_ref(), &query, &settings, &clock, now)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))
}

fn respond(report: &Report, params: &BTreeMap<String, String>) -> Result<Response, AppError> {
    match params.get("format").map(String::as_str) {
        None | Some("json") => Ok(axum::Json(report).into_response()),
        Some("csv") => {
            let csv = kpis::to_csv(report).map_err(|e| AppError::Internal(e.to_string()))?;
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"kpis.csv\"",
                    ),
                ],
                csv,
            )
                .into_response())
        }
        Some(other) => Err(AppError::BadRequest(format!(
            "format {:?} is not offered: use json or csv",
            other.chars().take(20).collect::<String>()
        ))),
    }
}

async fn api(
    State(state): State<AppState>,
    caller: Caller,
    UrlQuery(params): UrlQuery<BTreeMap<String, String>>,
) -> Result<Response, AppError> {
    require_lead(&state, &caller)?;
    let report = report_for(&state, &params).await?;
    respond(&report, &params)
}

async fn console_api(
    State(state): State<AppState>,
    session: AgentSession,
    UrlQuery(params): UrlQuery<BTreeMap<String, String>>,
) -> Result<Response, AppError> {
    lead(&state, &session.0)?;
    let report = report_for(&state, &params).await?;
    respond(&report, &params)
}

/// A page that runs no script and loads nothing from elsewhere.
const PAGE_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'";

async fn dashboard(
    State(state): State<AppState>,
    session: AgentSession,
    RawQuery(raw): RawQuery,
    UrlQuery(params): UrlQuery<BTreeMap<String, String>>,
) -> Result<Response, AppError> {
    lead(&state, &session.0)?;
    let report = report_for(&state, &params).await?;
    let page = kpis::page::dashboard(&report, raw.as_deref().unwrap_or(""));
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PAGE_POLICY),
        ],
        page,
    )
        .into_response())
}
