//! `/health` and `/metrics`, both public. Neither scans the store per request: the figures
//! that need a scan (queued conversations per queue, agents' assignments, whether the store
//! answers) are a cached snapshot recomputed at most once per [`FIGURES_TTL`] by one
//! request at a time (off the async threads), while the others get the snapshot as it is.
//! Everything else they show is a counter or gauge read in O(1) (open widget sockets,
//! uptime, the chat platforms' states). So a flood of probes costs O(1) each.

use super::AppState;
use crate::desk::Desk;
use crate::metrics;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How old a snapshot may be before a request recomputes it.
pub const FIGURES_TTL: Duration = Duration::from_secs(5);

/// One reading of the figures that need the store.
#[derive(Debug, Clone)]
pub struct Snapshot {
    taken: Instant,
    /// When it was taken (shown as `figures_as_of`).
    pub as_of: chrono::DateTime<chrono::Utc>,
    /// `Err(why)` when the store did not answer.
    pub store: Result<(), String>,
    /// Customers waiting, per queue.
    pub queues: Vec<(String, usize)>,
    pub agents: usize,
    /// The store's engine, this node's name, and who holds which lease.
    pub engine: &'static str,
    pub node: String,
    pub leases: Vec<crate::store::Lease>,
}

impl Snapshot {
    async fn take(desk: &Desk) -> Snapshot {
        let queues = desk.queues().await;
        let (engine, node, leases) = desk.nodes().await;
        Snapshot {
            engine,
            node,
            leases: leases.unwrap_or_default(),
            taken: Instant::now(),
            as_of: chrono::Utc::now(),
            store: queues.as_ref().map(|_| ()).map_err(|e| e.to_string()),
            queues: queues
                .map(|qs| qs.into_iter().map(|q| (q.name, q.entries.len())).collect())
                .unwrap_or_default(),
            agents: desk.agents().await.len(),
        }
    }

    pub fn waiting(&self) -> usize {
        self.queues.iter().map(|(_, n)| n).sum()
    }
}

/// The cached [`Snapshot`]; see the module's comment.
#[derive(Default)]
pub struct Figures {
    current: Mutex<Option<Arc<Snapshot>>>,
    /// Held by the one request that recomputes.
    refreshing: tokio::sync::Mutex<()>,
}

impl Figures {
    fn cached(&self) -> Option<Arc<Snapshot>> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn fresh(&self) -> Option<Arc<Snapshot>> {
        self.cached().filter(|s| s.taken.elapsed() < FIGURES_TTL)
    }

    /// The snapshot, recomputed first when older than [`FIGURES_TTL`] and no other request
    /// is recomputing it already (that one's result is awaited only when there is none yet).
    pub async fn get(&self, desk: &Desk) -> Arc<Snapshot> {
        if let Some(s) = self.fresh() {
            return s;
        }
        let _refreshing = match self.refreshing.try_lock() {
            Ok(guard) => guard,
            Err(_) => match self.cached() {
                Some(stale) => return stale,
                None => self.refreshing.lock().await,
            },
        };
        if let Some(s) = self.fresh() {
            return s;
        }
        let desk = desk.clone();
        let snapshot = match tokio::spawn(async move { Snapshot::take(&desk).await }).await {
            Ok(s) => Arc::new(s),
            Err(e) => Arc::new(Snapshot {
                taken: Instant::now(),
                as_of: chrono::Utc::now(),
                store: Err(format!("the health check stopped: {e}")),
                queues: Vec::new(),
                agents: 0,
                engine: "unknown",
                node: String::new(),
                leases: Vec::new(),
            }),
        };
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(snapshot.clone());
        snapshot
    }
}

/// 200 with the state of each component once the desk answers; 503 otherwise.
/// The node's name and who holds which lease (host names) are shown to the operator's
/// monitoring only (as for `/metrics`); everyone else gets the status without them.
pub async fn health(
    State(state): State<AppState>,
    super::limits::ClientAddr(ip): super::limits::ClientAddr,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    let figures = state.limits.figures.get(&state.desk).await;
    let ok = figures.store.is_ok();
    let rules = state.cockpit.state(crate::cockpit::RULES);
    // Each watched configuration: its version in force, and whether a change was refused.
    let config: serde_json::Map<String, serde_json::Value> = state
        .cockpit
        .all()
        .map(|live| {
            let s = live.state();
            (
                live.kind().to_string(),
                serde_json::json!({"version": s.version, "refused": s.refused.is_some()}),
            )
        })
        .collect();
    let mut body = serde_json::json!({
        "status": if ok { "ready" } else { "degraded" },
        "components": {
            "store": match &figures.store {
                Ok(()) => format!("ok ({})", figures.engine),
                Err(e) => format!("error: {e}"),
            },
            "nlu": format!("ok (first message in {} ms)", state.nlu_first_ms),
            "queues": figures.queues.len(),
            "agents": figures.agents,
            "channels": state.channels.snapshot(),
            "widget_sockets": state.limits.open_sockets(),
            "open_files_limit": super::open_files::raised(),
            "rules": {
                "version": rules.version,
                // A change of the file was refused: the version above stays in force.
                "refused": rules.refused.is_some(),
            },
            "config": config,
        },
        "waiting": figures.waiting(),
        "figures_as_of": figures.as_of,
        "uptime_secs": state.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    if monitoring(&state, ip, &headers) {
        body["components"]["rules"] = serde_json::json!(rules);
        for live in state.cockpit.all() {
            body["components"]["config"][live.kind()] = serde_json::json!(live.state());
        }
        body["node"] = serde_json::json!(figures.node);
        body["leases"] = serde_json::json!(figures.leases.iter().map(|l| serde_json::json!({
            "name": l.name,
            "holder": l.holder,
            "mine": l.holder == figures.node || l.holder.starts_with(&format!("{}/", figures.node)),
            "until": l.until,
        })).collect::<Vec<_>>());
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Prometheus text, for a scraper with `server.metrics_key` or from `server.metrics_from`.
/// Whether the caller is the operator's monitoring: `server.metrics_key` as a bearer
/// token, or an address in `server.metrics_from`.
fn monitoring(state: &AppState, ip: std::net::IpAddr, headers: &axum::http::HeaderMap) -> bool {
    let server = &state.config.server;
    let keyed = server.metrics_key.as_deref().is_some_and(|key| {
        use subtle::ConstantTimeEq as _;
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        bool::from(sent.as_bytes().ct_eq(key.as_bytes()))
    });
    keyed
        || server
            .metrics_from
            .iter()
            .filter_map(|r| crate::config::IpRange::parse(r).ok())
            .any(|r| r.contains(ip))
}

pub async fn metrics_text(
    State(state): State<AppState>,
    super::limits::ClientAddr(ip): super::limits::ClientAddr,
    headers: axum::http::HeaderMap,
) -> Response {
    if !monitoring(&state, ip, &headers) {
        return (
            StatusCode::FORBIDDEN,
            "/metrics is for your monitoring only: send Authorization: Bearer <server.metrics_key>, \
             or add this address to server.metrics_from\n",
        )
            .into_response();
    }
    let figures = state.limits.figures.get(&state.desk).await;
    for (queue, depth) in &figures.queues {
        metrics::queue_depth(queue, *depth);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
