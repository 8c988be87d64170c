//! The PostgreSQL engine's [`Deliveries`]: the `outbox`, `outbox_failed` and
//! `channel_state` tables. A committed record is durable, so every one may be sent.

use super::*;

/// The NOTIFY channel that tells every node a channel's outbox has new records (the payload
/// names the channel): its courier may run on any of them.
pub(super) const OUTBOX_NOTICES: &str = "frontdesk_outbox";

/// Which `outbox_wake` a channel uses.
pub(super) fn slot(channel: ChannelKind) -> usize {
    ChannelKind::ALL
        .iter()
        .position(|c| *c == channel)
        .unwrap_or(0)
}

/// Queues `parcel` inside `tx`.
pub(super) async fn insert(
    tx: &deadpool_postgres::Transaction<'_>,
    parcel: &Parcel,
) -> Result<(), StoreError> {
    let m = &parcel.message;
    let st = tx
        .prepare_cached(
            "INSERT INTO outbox (channel, conversation_id, identity, body) VALUES ($1, $2, $3, $4)",
        )
        .await?;
    let identity = Identity::new(m.channel, &m.channel_user).key();
    tx.execute(
        &st,
        &[
            &m.channel.as_str(),
            &m.conversation_id.0,
            &identity,
            &json(parcel),
        ],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl Deliveries for PgStore {
    async fn queue_outbox(&self, message: Outbound) -> Result<(), StoreError> {
        if !has_outbox(message.channel) {
            return Ok(());
        }
        let channel = message.channel;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        insert(&tx, &Parcel::new(message, Utc::now())).await?;
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&OUTBOX_NOTICES, &channel.as_str()],
        )
        .await?;
        tx.commit().await?;
        self.outbox_wake(channel).notify_one();
        Ok(())
    }

    async fn outbox_pending(
        &self,
        channel: ChannelKind,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = self
            .rows(
                "SELECT id, body FROM outbox WHERE channel = $1 ORDER BY id LIMIT $2",
                &[&channel.as_str(), &limit],
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(OutboxEntry {
                    id: row.get::<_, i64>(0) as u64,
                    parcel: from_json("outbox", row.get::<_, Json<_>>(1).0)?,
                })
            })
            .collect()
    }

    async fn outbox_len(&self, channel: ChannelKind) -> Result<usize, StoreError> {
        let rows = self
            .rows(
                "SELECT count(*) FROM outbox WHERE channel = $1",
                &[&channel.as_str()],
            )
            .await?;
        Ok(rows[0].get::<_, i64>(0) as usize)
    }

    async fn outbox_progress(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        self.exec(
            "UPDATE outbox SET body = $2 WHERE id = $1",
            &[&(entry.id as i64), &json(&entry.parcel)],
        )
        .await?;
        Ok(())
    }

    async fn outbox_done(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        self.exec("DELETE FROM outbox WHERE id = $1", &[&(entry.id as i64)])
            .await?;
        Ok(())
    }

    async fn outbox_failed(
        &self,
        entry: &OutboxEntry,
        failed: &FailedDelivery,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let id = entry.id as i64;
        tx.execute("DELETE FROM outbox WHERE id = $1", &[&id])
            .await?;
        let m = &failed.message;
        let identity = Identity::new(m.channel, &m.channel_user).key();
        tx.execute(
            "INSERT INTO outbox_failed (id, channel, conversation_id, identity, body)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET body = $5",
            &[
                &id,
                &m.channel.as_str(),
                &m.conversation_id.0,
                &identity,
                &json(failed),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn failed_deliveries(
        &self,
        conversation: &ConversationId,
    ) -> Result<Vec<FailedDelivery>, StoreError> {
        self.bodies(
            "outbox_failed",
            "SELECT body FROM outbox_failed WHERE conversation_id = $1 ORDER BY id",
            &[&conversation.0],
        )
        .await
    }

    fn outbox_wake(&self, channel: ChannelKind) -> &tokio::sync::Notify {
        &self.outbox_wake[slot(channel)]
    }

    async fn channel_state(
        &self,
        channel: ChannelKind,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let rows = self
            .rows(
                "SELECT value FROM channel_state WHERE channel = $1 AND key = $2",
                &[&channel.as_str(), &key],
            )
            .await?;
        Ok(rows.into_iter().next().map(|r| r.get(0)))
    }

    async fn set_channel_state(
        &self,
        channel: ChannelKind,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        let channel = channel.as_str();
        match value {
            Some(v) => {
                self.exec(
                    "INSERT INTO channel_state (channel, key, value) VALUES ($1, $2, $3)
                     ON CONFLICT (channel, key) DO UPDATE SET value = $3",
                    &[&channel, &key, &v],
                )
                .await?
            }
            None => {
                self.exec(
                    "DELETE FROM channel_state WHERE channel = $1 AND key = $2",
                    &[&channel, &key],
                )
                .await?
            }
        };
        Ok(())
    }

    async fn update_channel_state(
        &self,
        channel: ChannelKind,
        key: &str,
        update: &(dyn for<'s> Fn(Option<&'s str>) -> Option<String> + Send + Sync),
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Taken under a lock on the key (an advisory one: the row may not exist yet).
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1 || E'\\t' || $2, 0))",
            &[&channel.as_str(), &key],
        )
        .await?;
        let old: Option<String> = tx
            .query_opt(
                "SELECT value FROM channel_state WHERE channel = $1 AND key = $2",
                &[&channel.as_str(), &key],
            )
            .await?
            .map(|r| r.get(0));
        match update(old.as_deref()) {
            Some(v) => {
                tx.execute(
                    "INSERT INTO channel_state (channel, key, value) VALUES ($1, $2, $3)
                     ON CONFLICT (channel, key) DO UPDATE SET value = $3",
                    &[&channel.as_str(), &key, &v],
                )
                .await?
            }
            None => {
                tx.execute(
                    "DELETE FROM channel_state WHERE channel = $1 AND key = $2",
                    &[&channel.as_str(), &key],
                )
                .await?
            }
        };
        tx.commit().await?;
        Ok(())
    }

    async fn channel_states(
        &self,
        channel: ChannelKind,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self
            .rows(
                "SELECT key, value FROM channel_state WHERE channel = $1 ORDER BY key",
                &[&channel.as_str()],
            )
            .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
