//! `[store]`: where the desk's state lives. Unset, sled in `server.data_dir/store` (one
//! binary is a whole deployment); a `postgres://` URL puts it in PostgreSQL, which every
//! node of a deployment shares.

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (`FRONTDESK_STORE_URL`). Unset: sled
    /// in the data folder.
    pub url: Option<String>,
    /// With PostgreSQL: how long a node's leases on the Telegram poller, the Discord gateway
    /// and the couriers outlive it, in seconds (the longest pause before another node takes
    /// over when it dies).
    pub lease_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: None,
            lease_secs: 15,
        }
    }
}

impl StoreConfig {
    /// The URL must name PostgreSQL: a typo must not silently fall back to a local store
    /// that the other nodes cannot see.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(3..=600).contains(&self.lease_secs) {
            return Err(ConfigError::Invalid {
                key: "store.lease_secs".into(),
                message: "must be 3 to 600 seconds".into(),
            });
        }
        match self.url.as_deref() {
            None => Ok(()),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(())
            }
            Some(_) => Err(ConfigError::Invalid {
                key: "store.url".into(),
                message: "must be a postgres:// URL such as \
                          postgres://frontdesk:PASSWORD@db.internal:5432/frontdesk; leave it \
                          unset to keep the store in the data folder"
                    .into(),
            }),
        }
    }
}
