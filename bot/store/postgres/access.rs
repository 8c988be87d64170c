//! The PostgreSQL engine's [`AccessControl`]: `api_keys`, `sessions`, `audit`.

use super::*;

/// Appends one audit line inside `tx`.
pub(super) async fn insert_audit(
    tx: &deadpool_postgres::Transaction<'_>,
    line: &AuditLine,
) -> Result<(), StoreError> {
    let st = tx
        .prepare_cached("INSERT INTO audit (nanos, body) VALUES ($1, $2)")
        .await?;
    tx.execute(&st, &[&nanos(line.time), &json(line)]).await?;
    Ok(())
}

pub(super) fn nanos(time: DateTime<Utc>) -> i64 {
    time.timestamp_nanos_opt().unwrap_or(0)
}

#[async_trait]
impl AccessControl for PgStore {
    async fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO api_keys (id, body) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET body = $2",
            &[&key.id, &json(key)],
        )
        .await?;
        Ok(())
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.body(
            "api_keys",
            "SELECT body FROM api_keys WHERE id = $1",
            &[&id],
        )
        .await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.bodies("api_keys", "SELECT body FROM api_keys ORDER BY id", &[])
            .await
    }

    async fn remove_api_key(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .exec("DELETE FROM api_keys WHERE id = $1", &[&id])
            .await?
            > 0)
    }

    async fn put_session(&self, id: &str, session: &SessionRecord) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO sessions (id, expires, body) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET expires = $2, body = $3",
            &[&id, &session.expires, &json(session)],
        )
        .await?;
        Ok(())
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.body(
            "sessions",
            "SELECT body FROM sessions WHERE id = $1",
            &[&id],
        )
        .await
    }

    async fn remove_session(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .exec("DELETE FROM sessions WHERE id = $1", &[&id])
            .await?
            > 0)
    }

    async fn purge_sessions(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        Ok(self
            .exec("DELETE FROM sessions WHERE expires < $1", &[&now])
            .await? as usize)
    }

    async fn audit_lines(&self) -> Result<Vec<AuditLine>, StoreError> {
        self.bodies("audit", "SELECT body FROM audit ORDER BY nanos, seq", &[])
            .await
    }

    async fn audit(&self, line: &AuditLine) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO audit (nanos, body) VALUES ($1, $2)",
            &[&nanos(line.time), &json(line)],
        )
        .await?;
        Ok(())
    }
}
