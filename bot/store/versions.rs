//! [`Versions`]: every applied version of a lead's editable files (the escalation rules
//! first), kept whole, with who applied it and when, so that a change can be compared and
//! rolled back, and every node of a shared store applies the same one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreError;

/// One applied version of one kind of file (`rules`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigVersion {
    /// 1, 2, 3... per kind, in the order applied.
    pub id: u64,
    pub kind: String,
    /// The whole file as applied.
    pub text: String,
    /// SHA-256 of `text`, hex.
    pub sha256: String,
    /// Who applied it: "file" (an edit of the file on node N), "rollback by ana to 3"...
    pub author: String,
    pub time: DateTime<Utc>,
    /// Lines added and removed against the version before ("+3 -1").
    pub summary: String,
}

#[async_trait]
pub trait Versions {
    /// Stores `version` as the next one of its kind, unless the newest of that kind has the
    /// same text already; returns the version now newest (`id` assigned here).
    async fn add_version(&self, version: ConfigVersion) -> Result<ConfigVersion, StoreError>;
    /// The newest `limit` versions of `kind`, newest first.
    async fn versions(&self, kind: &str, limit: usize) -> Result<Vec<ConfigVersion>, StoreError>;
    /// Version `id` of `kind`.
    async fn version(&self, kind: &str, id: u64) -> Result<Option<ConfigVersion>, StoreError>;
}

/// The neutral key of a version (see [`super::TABLES`]): kind, tab, 20-digit id.
pub fn version_key(kind: &str, id: u64) -> String {
    format!("{kind}\t{id:020}")
}
