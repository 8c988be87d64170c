//! The sled engine's [`Coordination`]: one node, so every lease is its own (kept in memory
//! for `/health`), settings in the `settings` tree, nothing published.

use super::*;
use std::time::Duration;

#[async_trait]
impl Coordination for SledStore {
    fn node(&self) -> &str {
        "local"
    }

    fn shared(&self) -> bool {
        false
    }

    async fn take_lease(
        &self,
        name: &str,
        _holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let until = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        leases.insert(name.to_string(), until);
        Ok(true)
    }

    async fn release_lease(&self, name: &str, _holder: &str) -> Result<(), StoreError> {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        leases.remove(name);
        Ok(())
    }

    async fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        let now = Utc::now();
        let leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<Lease> = leases
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(name, until)| Lease {
                name: name.clone(),
                holder: self.node().to_string(),
                until: *until,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn agreed_setting(&self, name: &str, proposal: &str) -> Result<String, StoreError> {
        let tree = &self.trees[SETTINGS];
        let _ = tree.compare_and_swap(name, None as Option<&[u8]>, Some(proposal.as_bytes()))?;
        self.note_write();
        Ok(self
            .get_string(SETTINGS, name.as_bytes())?
            .unwrap_or_else(|| proposal.to_string()))
    }

    async fn set_setting(&self, name: &str, value: Option<&str>) -> Result<(), StoreError> {
        let tree = &self.trees[SETTINGS];
        match value {
            Some(v) => tree.insert(name, v.as_bytes()).map(|_| ())?,
            None => tree.remove(name).map(|_| ())?,
        }
        self.note_write();
        Ok(())
    }

    async fn settings_under(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.trees[SETTINGS]
            .scan_prefix(prefix)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                ))
            })
            .collect()
    }

    async fn publish(&self, _payload: &str) -> Result<(), StoreError> {
        Ok(())
    }

    fn published(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.published.subscribe()
    }
}
