//! API keys, sessions and the audit trail, in the store's trees (see `TREES`).

use super::*;

/// API keys, agents' sessions and the audit trail: what the server's access control needs.
/// Part of every [`Store`]. Each call is durable once [`Store::flush`] returns.
pub trait AccessControl {
    /// Keeps `key` under its id (a later one with the same id replaces it).
    fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;
    fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// Every key, in id order.
    fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Whether a key with this id was there.
    fn remove_api_key(&self, id: &str) -> Result<bool, StoreError>;
    fn put_session(&self, id: &str, session: &SessionRecord) -> Result<(), StoreError>;
    fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError>;
    /// Whether a session with this id was there.
    fn remove_session(&self, id: &str) -> Result<bool, StoreError>;
    /// Deletes the sessions that expired before `now`; returns how many.
    fn purge_sessions(&self, now: DateTime<Utc>) -> Result<usize, StoreError>;
    /// Every audit line, oldest first.
    fn audit_lines(&self) -> Result<Vec<AuditLine>, StoreError>;
    /// Appends `line`; two lines of the same instant are both kept, in the order written.
    fn audit(&self, line: &AuditLine) -> Result<(), StoreError>;
}

impl SledStore {
    pub(super) fn audit_key(time: DateTime<Utc>) -> [u8; 8] {
        (time.timestamp_nanos_opt().unwrap_or(0) as u64).to_be_bytes()
    }
}

impl AccessControl for SledStore {
    fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        self.trees[API_KEYS].insert(key.id.as_bytes(), encode(key))?;
        self.note_write();
        Ok(())
    }

    fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get(API_KEYS, id.as_bytes())
    }

    fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.trees[API_KEYS]
            .iter()
            .map(|kv| decode("api_keys", &kv?.1))
            .collect()
    }

    fn remove_api_key(&self, id: &str) -> Result<bool, StoreError> {
        let removed = self.trees[API_KEYS].remove(id.as_bytes())?.is_some();
        self.note_write();
        Ok(removed)
    }

    fn put_session(&self, id: &str, session: &SessionRecord) -> Result<(), StoreError> {
        self.trees[SESSIONS].insert(id.as_bytes(), encode(session))?;
        self.note_write();
        Ok(())
    }

    fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.get(SESSIONS, id.as_bytes())
    }

    fn remove_session(&self, id: &str) -> Result<bool, StoreError> {
        let removed = self.trees[SESSIONS].remove(id.as_bytes())?.is_some();
        self.note_write();
        Ok(removed)
    }

    fn purge_sessions(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
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

    fn audit_lines(&self) -> Result<Vec<AuditLine>, StoreError> {
        self.trees[AUDIT]
            .iter()
            .map(|kv| decode("audit", &kv?.1))
            .collect()
    }

    fn audit(&self, line: &AuditLine) -> Result<(), StoreError> {
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
