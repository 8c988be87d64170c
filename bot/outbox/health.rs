//! What each chat platform is doing right now, for `/health` and for operators reading logs:
//! connected, starting, failing (with the reason and when it is retried), plus the outbox's
//! backlog. Adapters and the outbox write it; the server only reads a snapshot.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::message::ChannelKind;

/// The connection state of one platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelState {
    /// Configured; the first connection has not succeeded yet.
    Starting,
    /// Receiving updates (polling, webhook registered, or gateway session ready).
    Connected,
    /// The platform refused us or cannot be reached; retried with backoff.
    Failing,
    /// Stopped on purpose (shutdown).
    Stopped,
}

/// One platform's entry in `/health`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelStatus {
    pub state: ChannelState,
    /// Why it is failing, in words an operator can act on.
    pub error: Option<String>,
    /// When the state last changed.
    pub since: DateTime<Utc>,
    /// Messages waiting in the outbox for this platform.
    pub outbox_pending: usize,
    /// The last delivery error, cleared by the next successful delivery.
    pub delivery_error: Option<String>,
    /// Messages given up on for good (blocked bot, chat gone) since start.
    pub failed_deliveries: u64,
}

impl ChannelStatus {
    fn new(state: ChannelState) -> Self {
        ChannelStatus {
            state,
            error: None,
            since: Utc::now(),
            outbox_pending: 0,
            delivery_error: None,
            failed_deliveries: 0,
        }
    }
}

/// Shared, cheap to clone; one per process. Only platforms that are configured appear.
#[derive(Debug, Clone, Default)]
pub struct ChannelHealth {
    inner: Arc<RwLock<BTreeMap<ChannelKind, ChannelStatus>>>,
}

impl ChannelHealth {
    pub fn new() -> Self {
        Self::default()
    }

    fn update(&self, kind: ChannelKind, f: impl FnOnce(&mut ChannelStatus)) {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let entry = map
            .entry(kind)
            .or_insert_with(|| ChannelStatus::new(ChannelState::Starting));
        f(entry);
    }

    fn set_state(&self, kind: ChannelKind, state: ChannelState, error: Option<String>) {
        self.update(kind, |s| {
            if s.state != state {
                s.since = Utc::now();
            }
            s.state = state;
            s.error = error;
        });
    }

    pub fn starting(&self, kind: ChannelKind) {
        self.set_state(kind, ChannelState::Starting, None);
    }

    pub fn connected(&self, kind: ChannelKind) {
        self.set_state(kind, ChannelState::Connected, None);
    }

    pub fn failing(&self, kind: ChannelKind, error: impl Into<String>) {
        self.set_state(kind, ChannelState::Failing, Some(error.into()));
    }

    pub fn stopped(&self, kind: ChannelKind) {
        self.set_state(kind, ChannelState::Stopped, None);
    }

    pub(crate) fn outbox_pending(&self, kind: ChannelKind, pending: usize) {
        self.update(kind, |s| s.outbox_pending = pending);
    }

    pub(crate) fn delivery_error(&self, kind: ChannelKind, error: Option<String>) {
        self.update(kind, |s| s.delivery_error = error);
    }

    pub(crate) fn delivery_failed(&self, kind: ChannelKind) {
        self.update(kind, |s| s.failed_deliveries += 1);
    }

    /// The state of one platform, if it is configured.
    pub fn get(&self, kind: ChannelKind) -> Option<ChannelStatus> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        map.get(&kind).cloned()
    }

    /// Every configured platform, keyed by its name (`telegram`, `discord`), ready to be
    /// serialized into the `/health` body.
    pub fn snapshot(&self) -> BTreeMap<String, ChannelStatus> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .map(|(k, v)| (k.as_str().to_string(), v.clone()))
            .collect()
    }

    /// True when no configured platform is failing.
    pub fn all_connected(&self) -> bool {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        map.values().all(|s| s.state == ChannelState::Connected)
    }
}
