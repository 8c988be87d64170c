//! The HTTP/WebSocket server: web widget, REST channel, agent console, health and metrics.
//!
//! `serve` is the command; [`start`] runs the same server in-process on any address (tests and
//! `bench serve` bind 127.0.0.1:0) and hands back a [`RunningServer`] with the bound address
//! and a shutdown handle.

pub mod api;
pub mod auth;
pub mod bench;
pub mod console;
pub mod error;
pub mod hub;
pub mod metrics;
pub mod setup;
pub mod widget;

use crate::channels::health::ChannelHealth;
use crate::channels::identity::Linker;
use crate::channels::outbox::{FailedDelivery, FailureHook};
use crate::channels::platforms::{Platforms, PlatformsConfig};
use crate::config::Config;
use crate::desk::{Desk, Understand};
use anyhow::Context as _;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

#[derive(clap::Args, Debug, Default)]
pub struct ServeArgs {
    /// Address to listen on (overrides server.bind; default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// Data folder for the store and the generated secret (overrides server.data_dir).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Configuration file (default: ./frontdesk.toml when it exists, else built-in defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Everything a handler needs; cheap to clone (handles and `Arc`s only).
#[derive(Clone)]
pub struct AppState {
    pub desk: Desk,
    pub signer: Arc<auth::Signer>,
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
    /// Link codes: `/link` works from the widget and the REST channel too.
    pub linker: Linker,
}

/// The whole router, built from its state so tests can drive it.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// [`app`] plus stateless routes of its own (the chat platforms' webhooks).
pub fn app_with(state: AppState, extra: Router) -> Router {
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

/// A server running in this process.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub desk: Desk,
    /// The generated demo agent (name, password) when the config names no agents.
    pub demo_agent: Option<(String, String)>,
    /// The server secret, so an embedding shop (or a test) can sign customer tokens.
    pub signer: Arc<auth::Signer>,
    /// The state of each chat platform, as `/health` shows it.
    pub channels: ChannelHealth,
    platforms: Platforms,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// `http://ADDR`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, closes open sockets, waits for requests in flight and flushes the
    /// store.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.task
            .await
            .context("server task panicked")?
            .context("server failed")?;
        self.platforms.shutdown().await;
        self.desk.flush().await.context("flushing the store")?;
        Ok(())
    }
}

/// Opens the desk on `config` (store under `server.data_dir`) with `nlu`, binds
/// `server.bind` and serves until [`RunningServer::shutdown`]. Chat platforms come from the
/// `FRONTDESK_TELEGRAM_*` and `FRONTDESK_DISCORD_*` variables.
pub async fn start<U: Understand>(config: Config, nlu: U) -> anyhow::Result<RunningServer> {
    let platforms = PlatformsConfig::from_env()?;
    start_with_platforms(config, nlu, platforms).await
}

/// [`start`] with the chat platforms given here rather than read from the environment.
pub async fn start_with_platforms<U: Understand>(
    mut config: Config,
    nlu: U,
    platforms: PlatformsConfig,
) -> anyhow::Result<RunningServer> {
    let prepared = setup::prepare(&mut config)?;
    // One message through the NLU before anything listens: /health only ever reports a
    // server whose NLU has answered.
    let warm = Instant::now();
    nlu.analyze("hello, is anyone there?".into())
        .await
        .map_err(|e| anyhow::anyhow!("the NLU failed its first message: {e}"))?;
    let nlu_first_ms = warm.elapsed().as_millis() as u64;
    let desk = Desk::open(&config, nlu)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = tokio::net::TcpListener::bind(&config.server.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.bind))?;
    let addr = listener.local_addr()?;
    let (stop, stopping) = watch::channel(false);
    let signer = Arc::new(auth::Signer::new(&prepared.secret));
    let metrics = metrics::handle();
    metrics::spawn_upkeep(metrics.clone(), stopping.clone());
    console::spawn_event_metrics(desk.clone(), stopping.clone());
    let channels = ChannelHealth::new();
    let platforms = Platforms::start_with_failure_hook(
        &desk,
        &config.server.data_dir,
        platforms,
        channels.clone(),
        Some(record_failures(desk.clone())),
    )
    .await
    .context("starting the chat platforms")?;
    let extra = platforms.router();
    let state = AppState {
        desk: desk.clone(),
        signer: signer.clone(),
        config: Arc::new(config),
        metrics,
        stopping: stopping.clone(),
        hub: hub::Hub::start(&desk, stopping.clone()),
        started: Instant::now(),
        nlu_first_ms,
        channels: channels.clone(),
        linker: platforms.linker().clone(),
    };
    let mut until = stopping.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, app_with(state, extra))
            .with_graceful_shutdown(async move {
                let _ = until.wait_for(|s| *s).await;
            })
            .await
    });
    Ok(RunningServer {
        addr,
        desk,
        demo_agent: prepared.demo_agent,
        signer,
        channels,
        platforms,
        stop,
        task,
    })
}

/// Puts every reply a platform refuses for good on its conversation, for the agent.
fn record_failures(desk: Desk) -> FailureHook {
    Arc::new(move |failed: FailedDelivery| {
        let desk = desk.clone();
        Box::pin(async move {
            let m = &failed.message;
            if let Err(e) = desk
                .record_delivery_failure(&m.conversation_id, m.channel, &m.text, &failed.error)
                .await
            {
                tracing::warn!(conversation = %m.conversation_id, error = %e,
                    "could not record a failed delivery on its conversation");
            }
        })
    })
}

/// `frontdesk serve`: loads the config, the model and the store, serves until Ctrl-C or
/// SIGTERM, then shuts down cleanly.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(bind) = args.bind {
        config.server.bind = bind;
    }
    if let Some(data) = args.data {
        config.server.data_dir = data;
    }
    config.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let nlu = setup::load_nlu(&config).await?;
        let server = start(config, nlu).await?;
        if let Some((name, password)) = &server.demo_agent {
            tracing::warn!(
                "no agents configured: log into {}/console as `{name}` with password `{password}` \
                 (kept in the data dir; add [[agents]] to the config for real use)",
                server.url()
            );
        }
        tracing::info!(
            "frontdesk listening on {url} (demo shop {url}/, console {url}/console)",
            url = server.url()
        );
        shutdown_signal().await;
        tracing::info!("shutting down");
        server.shutdown().await
    })
}

/// Resolves once the server is stopping (the guard `wait_for` returns is not `Send`, so it
/// is dropped here rather than held in a `select!` arm).
pub async fn until_stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
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
