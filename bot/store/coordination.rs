//! What the nodes sharing one store agree on through it: leases (one customer's messages
//! handled by one node at a time; one Telegram poller, one Discord gateway, one courier per
//! channel, one timer runner), settings every node must share (the master secret), and
//! live events from the other nodes. With sled there is one node: every lease is its own
//! and nothing is published. With PostgreSQL: the `leases` and `settings` tables, and
//! LISTEN/NOTIFY on the channel `frontdesk_events`.

use super::*;
use std::time::Duration;

/// A lease as `/health` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub until: DateTime<Utc>,
}

/// Part of every [`Store`].
#[async_trait]
pub trait Coordination {
    /// This process's name among the nodes that share the store.
    fn node(&self) -> &str;
    /// Whether other processes may share the store (PostgreSQL). With sled, this process is
    /// the only one: leases are always its own, and nothing needs publishing.
    fn shared(&self) -> bool;
    /// Takes (or renews) lease `name` for `holder` (this node's name, or a name of one of
    /// its tasks) until `ttl` from now; `false` while another holder has it and it has not
    /// run out. A node that dies loses its leases when they run out.
    async fn take_lease(&self, name: &str, holder: &str, ttl: Duration)
        -> Result<bool, StoreError>;
    /// Gives lease `name` back, if `holder` has it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;
    /// The leases held now (not run out), by name.
    async fn leases(&self) -> Result<Vec<Lease>, StoreError>;
    /// The value of setting `name` every node agrees on: the one stored, or `proposal` when
    /// none was stored yet (the first node to ask decides).
    async fn agreed_setting(&self, name: &str, proposal: &str) -> Result<String, StoreError>;
    /// Sets (`Some`) or removes (`None`) setting `name`, for every node: state the nodes
    /// share and change as they run (an agent's availability, whose turn is next).
    async fn set_setting(&self, name: &str, value: Option<&str>) -> Result<(), StoreError>;
    /// Every setting whose name starts with `prefix`, in name order.
    async fn settings_under(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// Tells every other node `payload` (at most 7,000 bytes; larger ones are not sent).
    async fn publish(&self, payload: &str) -> Result<(), StoreError>;
    /// What the other nodes publish, from now on. A gap (the listening connection was lost
    /// and made again) arrives as [`RESYNC`]: whoever shows live state reads it again.
    fn published(&self) -> tokio::sync::broadcast::Receiver<String>;
}

/// Published after the listening connection was lost: events may have been missed.
pub const RESYNC: &str = "resync";

/// Runs `task` on this node only while it holds lease `name`: takes the lease (trying again
/// every `ttl / 3` while another node holds it), renews it every `ttl / 3`, and aborts the
/// task the moment a renewal fails or takes longer than `ttl / 6`, so the task stops before
/// the lease it last renewed can run out for the other nodes (a node too starved to renew
/// in time stops instead of running beside the next holder: the two-node kill campaign saw
/// one Telegram message sent by both). Returns when `stop` turns true (the lease is given
/// back).
pub async fn while_leader<F, Fut>(
    store: Arc<dyn Store>,
    name: String,
    ttl: Duration,
    mut task: F,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let every = ttl / 3;
    let mut running: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let held = match tokio::time::timeout(every / 2, store.take_lease(&name, store.node(), ttl))
            .await
        {
            Ok(Ok(held)) => held,
            Ok(Err(e)) => {
                tracing::warn!(lease = %name, error = %e, "cannot renew a lease; stepping down");
                false
            }
            Err(_) => {
                tracing::warn!(lease = %name, waited_ms = (every / 2).as_millis() as u64,
                    "a lease renewal took too long; stepping down");
                false
            }
        };
        match (held, running.is_some()) {
            (true, false) => {
                tracing::info!(lease = %name, node = store.node(), "lease taken: this node runs it");
                running = Some(tokio::spawn(task()));
            }
            (false, true) => {
                tracing::warn!(lease = %name, node = store.node(), "lease lost: this node stops it");
                if let Some(t) = running.take() {
                    t.abort();
                }
            }
            _ => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {
                if *stop.borrow() {
                    break;
                }
            }
        }
    }
    if let Some(t) = running.take() {
        t.abort();
        let _ = t.await;
    }
    let _ = store.release_lease(&name, store.node()).await;
}
