//! The sled engine's [`Versions`]: the `versions` tree, keyed by the neutral key (kind, tab,
//! 20-digit id), so a kind's versions sort in the order applied.

use super::*;
use crate::store::{version_key, ConfigVersion, Versions};

impl SledStore {
    fn newest_version(&self, kind: &str) -> Result<Option<ConfigVersion>, StoreError> {
        match self.trees[VERSIONS]
            .scan_prefix(format!("{kind}\t"))
            .next_back()
        {
            Some(kv) => Ok(Some(decode(TREES[VERSIONS], &kv?.1)?)),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl Versions for SledStore {
    async fn add_version(&self, version: ConfigVersion) -> Result<ConfigVersion, StoreError> {
        // One writer at a time per process: the id is the newest one's plus one.
        let _one = self.versions_lock.lock().await;
        let newest = self.newest_version(&version.kind)?;
        if let Some(newest) = newest.as_ref().filter(|n| n.sha256 == version.sha256) {
            return Ok(newest.clone());
        }
        let version = ConfigVersion {
            id: newest.map_or(1, |n| n.id + 1),
            ..version
        };
        self.trees[VERSIONS].insert(version_key(&version.kind, version.id), encode(&version))?;
        self.note_write();
        Ok(version)
    }

    async fn versions(&self, kind: &str, limit: usize) -> Result<Vec<ConfigVersion>, StoreError> {
        self.trees[VERSIONS]
            .scan_prefix(format!("{kind}\t"))
            .rev()
            .take(limit)
            .map(|kv| decode(TREES[VERSIONS], &kv?.1))
            .collect()
    }

    async fn version(&self, kind: &str, id: u64) -> Result<Option<ConfigVersion>, StoreError> {
        self.get(VERSIONS, version_key(kind, id).as_bytes())
    }
}
