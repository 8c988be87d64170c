//! The sled engine's [`AccessControl`]: the `api_keys`, `sessions` and `audit` trees.

use super::*;

impl SledStore {
    pub(super) fn audit_key(time: DateTime<Utc>) -> [u8; 8] {
        (time.timestamp_nanos_opt().unwrap_or(0) as u64).to_be_bytes()
    }
}

#[async_trait]
impl AccessControl for SledStore {
    async fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        self.trees[API_KEYS].insert(key.id.as_bytes(), encode(key))?;
        self.note_write();
        Ok(())
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get(API_KEYS, id.as_bytes())
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.trees[API_KEYS]
            .iter()
            .map(|kv| decode("api_keys", &kv?.1))
            .collect()
    }

    async fn remove_api_key(&self, id: &str) -> Result<bool, StoreError> {
        let removed = self.trees[API_KEYS].remove(id.as_bytes())?.is_some();
        self.note_write();
        Ok(removed)
    }

    async fn put_session(&self, id: &str, session: &SessionRecord) -> Result<(), StoreError> {
        self.trees[SESSIONS].insert(id.as_bytes(), encode(session))?;
        self.note_write();
        Ok(())
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.get(SESSIONS, id.as_bytes())
    }

    async fn remove_session(&self, id: &str) -> Result<bool, StoreError> {
        let removed = self.trees[SESSIONS].remove(id.as_bytes())?.is_some();
        self.note_write();
        Ok(removed)
    }

    async fn purge_sessions(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut purged = 0;
        for kv in self.trees[SESSIONS].iter() {
            let (k, v) = kv?;
            let expired = serde_json::from_slice::<SessionRecord>(&v)
                .map(|s| s.expires < now)
                .unwrap_or(true);
            if expired && self.trees[SESSIONS].remove(&k)?.is_some() {
                purged += 1;
            }
        }
        self.note_write();
        Ok(purged)
    }

    async fn audit_lines(&self) -> Result<Vec<AuditLine>, StoreError> {
        self.trees[AUDIT]
            .iter()
            .map(|kv| decode("audit", &kv?.1))
            .collect()
    }

    async fn audit(&self, line: &AuditLine) -> Result<(), StoreError> {
        let mut key = Self::audit_key(line.time);
        // Two lines in the same nanosecond: the next free key.
        while self.trees[AUDIT]
            .compare_and_swap(key, None as Option<&[u8]>, Some(encode(line)))?
            .is_err()
        {
            key = (u64::from_be_bytes(key) + 1).to_be_bytes();
        }
        self.note_write();
        Ok(())
    }
}
