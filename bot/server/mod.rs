//! The HTTP/WebSocket server: web widget (`widget.rs`, live sockets through `hub.rs`), REST
//! channel (`api.rs`), agent console and agent API (`console.rs`), agent sessions and
//! signed tokens (`auth.rs`), input checks (`validate.rs`), errors as JSON (`error.rs`),
//! throttling (`throttle.rs`: bounded token buckets, login throttling) and the abuse limits
//! of the widget and REST (`limits.rs`), `/health` and `/metrics` (`health.rs`). [`router`]
//! builds the whole router from an [`AppState`], so tests can drive it in-process;
//! `crate::app` starts it on a real listener through `accept.rs` (the accept loop: header-read
//! timeout, connections per address, graceful stop), with connection info (the client
//! address the limits key on).

pub mod accept;
pub mod api;
mod api_keys;
pub mod auth;
mod cockpit;
pub mod console;
pub mod error;
mod events;
mod feedback;
pub mod health;
pub mod hub;
mod intents;
mod kpis;
pub mod limits;
pub mod logins;
pub mod open_files;
mod presence;
pub mod privacy;
mod reports;
mod search;
mod unanswered;
pub use crate::throttle;
pub mod validate;
mod whatif;
pub mod widget;

use crate::config::Config;
use crate::desk::Desk;
use crate::intake::Intake;
use crate::outbox::health::ChannelHealth;
use axum::routing::get;
use axum::Router;
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
    pub store: Arc<dyn crate::store::Store>,
    /// Login throttling and the bound on password checks.
    pub logins: Arc<logins::LoginGuard>,
    /// Abuse limits (`[limits]`): message rates, widget sessions and sockets; and the
    /// cached figures of `/health`.
    pub limits: Arc<limits::Limits>,
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
    /// The configuration the lead edits (rules, intents, ...), watched and versioned.
    pub cockpit: crate::cockpit::Cockpit,
    /// How the what-if builds the desks it replays on (the composition root's).
    pub replay_desks: crate::replay::whatif::DeskMaker,
}

/// The whole router, built from its state so tests can drive it.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// [`router`] plus stateless routes of its own (the chat platforms' webhooks).
pub fn router_with(state: AppState, extra: Router) -> Router {
    let body_limit = state.config.server.max_text_len * 4 + 16 * 1024;
    Router::new()
        .route("/health", get(health::health))
        .route("/metrics", get(health::metrics_text))
        .merge(api::routes())
        .merge(widget::routes())
        .merge(console::routes())
        .merge(cockpit::routes())
        .merge(feedback::routes())
        .merge(reports::routes())
        .merge(unanswered::routes())
        .merge(whatif::routes())
        .merge(intents::routes())
        .merge(kpis::routes())
        .merge(presence::routes())
        .merge(search::routes())
        .merge(events::routes(&state))
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
