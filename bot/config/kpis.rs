//! `[kpis]`: how the KPIs are counted and how often `/metrics` shows them again.

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KpisConfig {
    /// A customer who writes again within this many hours after a conversation's last
    /// message was not helped by it: it counts neither as contained nor as resolved at
    /// first contact.
    pub recontact_hours: u32,
    /// `/metrics` shows the KPIs of the last this many hours ...
    pub metrics_window_hours: u32,
    /// ... computed again every this many seconds (0: not on `/metrics`).
    pub metrics_every_secs: u64,
}

impl Default for KpisConfig {
    fn default() -> Self {
        KpisConfig {
            recontact_hours: 24,
            metrics_window_hours: 24,
            metrics_every_secs: 60,
        }
    }
}

impl KpisConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: &str| ConfigError::Invalid {
            key: format!("kpis.{key}"),
            message: message.into(),
        };
        if !(1..=24 * 30).contains(&self.recontact_hours) {
            return Err(bad("recontact_hours", "must be 1 to 720 hours"));
        }
        if !(1..=24 * 31).contains(&self.metrics_window_hours) {
            return Err(bad("metrics_window_hours", "must be 1 to 744 hours"));
        }
        if self.metrics_every_secs > 86_400 {
            return Err(bad(
                "metrics_every_secs",
                "must be 0 (off) to 86400 seconds; each pass reads the window's conversations, \
                 so keep it at a minute or more on a busy desk",
            ));
        }
        Ok(())
    }
}
