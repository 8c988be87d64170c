//! The HTTP/WebSocket server: web widget (`widget.rs`, live sockets through `hub.rs`), REST
//! channel (`api.rs`), agent console and agent API (`console.rs`), agent sessions and
//! signed tokens (`auth.rs`), input checks (`validate.rs`), errors as JSON (`error.rs`),
//! `/health` and `/metrics` (here). [`router`] builds the whole router from an [`AppState`],
//! so tests can drive it in-process; `crate::app` starts it on a real listener.

pub mod api;
mod api_keys;
pub mod auth;
pub mod console;
pub mod error;
pub mod hub;
pub mod privacy;
pub mod throttle;
pub mod validate;
pub mod widget;

use crate::channels::health::ChannelHealth;
use crate::config::Config;
use crate::desk::Desk;
use crate::intake::Intake;
use crate::metrics;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

/// Everything a handler needs; cheap to clone (handles and `Arc`s only).
#[derive(Clone)]
pub struct AppState {
    pub desk: Desk,
    /// The one door for customers' messages (widget and REST here; the platforms too).
    pub intake: Intake,
    /// The keys of each purpose (widget, customer, session, CSRF).
    pub keys: Arc<auth::Keys>,
    /// The store itself, for API keys, sessions and the privacy commands.
    pub store: Arc<crate::store::SledStore>,
    /// Login throttling and the bound on password checks.
    pub logins: Arc<throttle::LoginGuard>,
    pub config: Arc<Config>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Flips to true when the server stops; open WebSockets close on it.
    pub stopping: watch::Receiver<bool>,
    /// Routes desk events to the widget sockets watching each conversation.
    pub hub: Arc<hub::Hub>,
    pub started: Instant,
    /// How long the NLU took for its first message at start.
    pub nlu_first_ms: u64,
    /// The state of each chat platform (Telegram, Discord), for `/health`.
    pub channels: ChannelHealth,
}

/// The whole router, built from its state so tests can drive it.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// [`router`] plus stateless routes of its own (the chat platforms' webhooks).
pub fn router_with(state: AppState, extra: Router) -> Router {
    let body_limit = state.config.server.max_text_len * 4 + 16 * 1024;
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .merge(api::routes())
        .merge(widget::routes())
        .merge(console::routes())
        .with_state(state)
        .merge(extra)
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// Resolves once the server is stopping (the guard `wait_for` returns is not `Send`, so it
/// is dropped here rather than held in a `select!` arm).
pub async fn until_stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}

/// 200 with the state of each component once the desk answers; 503 otherwise.
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.desk.queues();
    let waiting: usize = store
        .as_ref()
        .map(|qs| qs.iter().map(|q| q.entries.len()).sum())
        .unwrap_or(0);
    let ok = store.is_ok();
    let body = serde_json::json!({
        "status": if ok { "ready" } else { "degraded" },
        "components": {
            "store": if ok { "ok".to_string() } else { format!("error: {}", store.as_ref().err().map(|e| e.to_string()).unwrap_or_default()) },
            "nlu": format!("ok (first message in {} ms)", state.nlu_first_ms),
            "queues": store.as_ref().map(|qs| qs.len()).unwrap_or(0),
            "agents": state.desk.agents().len(),
            "channels": state.channels.snapshot(),
        },
        "waiting": waiting,
        "uptime_secs": state.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    let status = if ok {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    if let Ok(queues) = state.desk.queues() {
        for q in &queues {
            metrics::queue_depth(&q.name, q.entries.len());
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
