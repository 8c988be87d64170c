//! The PostgreSQL engine's [`Versions`]: the `versions` table (`003_versions.sql`). A new
//! version takes the next id of its kind under a lock on the kind, so nodes adding at once
//! queue and each gets its own id.

use super::*;
use crate::store::{ConfigVersion, Versions};

#[async_trait]
impl Versions for PgStore {
    async fn add_version(&self, version: ConfigVersion) -> Result<ConfigVersion, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // One writer per kind at a time (an advisory lock: the kind may have no row yet), so
        // nodes adding at once queue rather than race for the same id.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('versions' || E'\\t' || $1, 0))",
            &[&version.kind],
        )
        .await?;
        let newest: Option<ConfigVersion> = match tx
            .query_opt(
                "SELECT body FROM versions WHERE kind = $1 ORDER BY id DESC LIMIT 1",
                &[&version.kind],
            )
            .await?
        {
            Some(row) => Some(from_json("versions", row.get::<_, Json<_>>(0).0)?),
            None => None,
        };
        if let Some(newest) = newest.as_ref().filter(|n| n.sha256 == version.sha256) {
            return Ok(newest.clone());
        }
        let next = ConfigVersion {
            id: newest.map_or(1, |n| n.id + 1),
            ..version
        };
        tx.execute(
            "INSERT INTO versions (kind, id, body) VALUES ($1, $2, $3)",
            &[&next.kind, &(next.id as i64), &json(&next)],
        )
        .await?;
        tx.commit().await?;
        Ok(next)
    }

    async fn versions(&self, kind: &str, limit: usize) -> Result<Vec<ConfigVersion>, StoreError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        self.bodies(
            "versions",
            "SELECT body FROM versions WHERE kind = $1 ORDER BY id DESC LIMIT $2",
            &[&kind, &limit],
        )
        .await
    }

    async fn version(&self, kind: &str, id: u64) -> Result<Option<ConfigVersion>, StoreError> {
        self.body(
            "versions",
            "SELECT body FROM versions WHERE kind = $1 AND id = $2",
            &[&kind, &(id as i64)],
        )
        .await
    }
}
