//! The PostgreSQL engine's [`Versions`]: the `versions` table (`003_versions.sql`). A new
//! version takes the next id of its kind in one statement; two nodes adding at once are
//! told apart by the primary key and the loser tries again.

use super::*;
use crate::store::{ConfigVersion, Versions};

#[async_trait]
impl Versions for PgStore {
    async fn add_version(&self, version: ConfigVersion) -> Result<ConfigVersion, StoreError> {
        for _ in 0..5 {
            let newest = self.versions(&version.kind, 1).await?.into_iter().next();
            if let Some(newest) = newest.as_ref().filter(|n| n.sha256 == version.sha256) {
                return Ok(newest.clone());
            }
            let next = ConfigVersion {
                id: newest.map_or(1, |n| n.id + 1),
                ..version.clone()
            };
            let added = self
                .exec(
                    "INSERT INTO versions (kind, id, body) VALUES ($1, $2, $3)
                     ON CONFLICT (kind, id) DO NOTHING",
                    &[&next.kind, &(next.id as i64), &json(&next)],
                )
                .await?;
            if added == 1 {
                return Ok(next);
            }
        }
        Err(StoreError::Postgres(
            "versions: other nodes kept adding a version at the same time; try again".into(),
        ))
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
