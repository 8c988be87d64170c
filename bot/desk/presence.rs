//! Whether an agent is available for auto-assignment (`assign.rs`), as kept in the store's
//! shared settings (`available:NAME`), so every node sees it. Who changes it, and what that
//! hands back and hands out: `availability.rs`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::DeskError;
use super::inner::Inner;
use super::locked::require_agent;
use crate::message::ConversationId;

/// The prefix of the availability settings: `available:NAME` -> [`Presence`] (JSON).
pub(super) const AVAILABLE: &str = "available:";

/// What the store keeps of an available agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Presence {
    pub(super) since: DateTime<Utc>,
    /// The console session that said so: when it ends, the agent is away.
    #[serde(default)]
    pub(super) session: Option<String>,
}

/// An agent's availability, as the console shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Availability {
    pub agent: String,
    pub available: bool,
    /// Since when they are available.
    pub since: Option<DateTime<Utc>>,
    /// Whether this desk gives out conversations by itself (`[engine] auto_assign`).
    pub auto_assign: bool,
    /// The conversations going away put back in their queues.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handed_back: Vec<ConversationId>,
}

/// The available agents of this desk's config, by name.
pub(super) async fn present(inner: &Inner) -> Result<BTreeMap<String, Presence>, DeskError> {
    let mut out = BTreeMap::new();
    for (key, value) in inner.store.settings_under(AVAILABLE).await? {
        let name = &key[AVAILABLE.len()..];
        if !inner.agents.contains_key(name) {
            continue;
        }
        match serde_json::from_str::<Presence>(&value) {
            Ok(p) => {
                out.insert(name.to_string(), p);
            }
            Err(e) => {
                tracing::warn!(agent = name, error = %e, "unreadable availability: the agent counts as away");
            }
        }
    }
    Ok(out)
}

/// `agent`'s availability now.
pub(super) async fn availability(inner: &Inner, agent: &str) -> Result<Availability, DeskError> {
    require_agent(inner, agent)?;
    let presence = present(inner).await?.remove(agent);
    Ok(Availability {
        agent: agent.to_string(),
        available: presence.is_some(),
        since: presence.map(|p| p.since),
        auto_assign: inner.auto_assign,
        handed_back: Vec::new(),
    })
}
