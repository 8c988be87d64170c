//! API keys, sessions and the audit trail: the part of the store the server's access
//! control reads.

use super::*;

/// API keys, agents' sessions and the audit trail: what the server's access control needs.
/// Part of every [`Store`]. Each call is durable once [`Store::flush`] returns.
#[async_trait]
pub trait AccessControl {
    /// Keeps `key` under its id (a later one with the same id replaces it).
    async fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;
    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// Every key, in id order.
    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Whether a key with this id was there.
    async fn remove_api_key(&self, id: &str) -> Result<bool, StoreError>;
    async fn put_session(&self, id: &str, session: &SessionRecord) -> Result<(), StoreError>;
    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError>;
    /// Whether a session with this id was there.
    async fn remove_session(&self, id: &str) -> Result<bool, StoreError>;
    /// Deletes the sessions that expired before `now`; returns how many.
    async fn purge_sessions(&self, now: DateTime<Utc>) -> Result<usize, StoreError>;
    /// Every audit line, oldest first.
    async fn audit_lines(&self) -> Result<Vec<AuditLine>, StoreError>;
    /// Appends `line`; two lines of the same instant are both kept, in the order written.
    async fn audit(&self, line: &AuditLine) -> Result<(), StoreError>;
}
