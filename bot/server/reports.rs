//! The evaluation reports in the console (roles `lead` and `admin`): the pages
//! `frontdesk eval ... --html <server.data_dir>/reports/NAME.html` wrote
//! (`crate::evaluation::report`).
//!
//! - `GET /console/api/reports`: `{"reports": [{"name", "size", "modified"}]}`, the `*.html`
//!   files of the reports folder, newest first (`modified` in RFC 3339, UTC; an absent folder
//!   is an empty list).
//! - `GET /console/reports/{name}`: one report, `name` as listed (letters, digits, `.`, `_`,
//!   `-`, ending in `.html`). A report is a file anyone with shell access wrote, so it is
//!   served under a policy that runs no script and loads nothing.

use std::path::PathBuf;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use super::auth::AgentSession;
use super::cockpit::lead;
use super::error::{ApiJson, AppError};
use super::AppState;

/// The folder of the data folder the console reads reports from.
pub const REPORTS_DIR: &str = "reports";

/// What a report page may do in the browser: show its inline styles and inline images.
const REPORT_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/api/reports", get(list))
        .route("/console/reports/{name}", get(show))
}

fn folder(state: &AppState) -> PathBuf {
    state.config.server.data_dir.join(REPORTS_DIR)
}

/// A report's file name: `[A-Za-z0-9._-]+` ending in `.html`, not hidden (no leading dot),
/// so it can name nothing outside the reports folder.
pub fn valid_name(name: &str) -> bool {
    let stem = name.strip_suffix(".html").unwrap_or("");
    !stem.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// One report of the list.
#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    size: u64,
    modified: String,
}

async fn list(
    AgentSession(agent): AgentSession,
    State(state): State<AppState>,
) -> Result<ApiJson<serde_json::Value>, AppError> {
    lead(&state, &agent)?;
    let dir = folder(&state);
    let mut entries = match tokio::fs::read_dir(&dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ApiJson(serde_json::json!({"reports": []})))
        }
        Err(e) => {
            return Err(AppError::Internal(format!(
                "cannot read the reports folder {}: {e}",
                dir.display()
            )))
        }
    };
    // (modified, listed): sorted on the time itself, not its text
    let mut found: Vec<(std::time::SystemTime, Listed)> = Vec::new();
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|e| AppError::Internal(format!("cannot list {}: {e}", dir.display())))?
    {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        // symlinks are not followed: a report is a plain file of the folder
        let Ok(meta) = tokio::fs::symlink_metadata(entry.path()).await else {
            continue;
        };
        if !valid_name(&name) || !meta.is_file() {
            continue;
        }
        let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
        let time: chrono::DateTime<chrono::Utc> = modified.into();
        found.push((
            modified,
            Listed {
                name,
                size: meta.len(),
                modified: time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            },
        ));
    }
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
    let reports: Vec<Listed> = found.into_iter().map(|(_, l)| l).collect();
    Ok(ApiJson(serde_json::json!({ "reports": reports })))
}

async fn show(
    AgentSession(agent): AgentSession,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    lead(&state, &agent)?;
    if !valid_name(&name) {
        return Err(AppError::BadRequest(format!(
            "{name:?} is not a report's name: use a name from GET /console/api/reports \
             (letters, digits, '.', '_' and '-', ending in .html)"
        )));
    }
    let path = folder(&state).join(&name);
    let missing = || {
        AppError::NotFound(format!(
            "no report {name}: write one with `frontdesk eval ... --html {}`",
            path.display()
        ))
    };
    match tokio::fs::symlink_metadata(&path).await {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Err(missing()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
        Err(e) => return Err(AppError::Internal(format!("cannot read {name}: {e}"))),
    }
    let page = tokio::fs::read(&path)
        .await
        .map_err(|e| AppError::Internal(format!("cannot read {}: {e}", path.display())))?;
    tracing::debug!(%agent, report = %name, "report shown");
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, REPORT_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        page,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn only_plain_html_names_are_reports() {
        for good in ["intents.html", "sent-2026_12.07.html", "a.b.html"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "../x.html",
            "..%2Fx.html",
            "a/b.html",
            "a\\b.html",
            ".html",
            ".hidden.html",
            "x.htm",
            "x.html.txt",
            "x y.html",
            "",
            "é.html",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
