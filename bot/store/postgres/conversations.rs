//! The PostgreSQL engine's [`Store`] reads and writes: customers, conversations, messages,
//! queues, link codes, failure counts, inbound ids, and each change as one transaction.

use super::*;

#[async_trait]
impl Store for PgStore {
    fn engine(&self) -> &'static str {
        "postgres"
    }

    async fn customer(&self, id: &str) -> Result<Option<Customer>, StoreError> {
        self.body(
            "customers",
            "SELECT body FROM customers WHERE id = $1",
            &[&id],
        )
        .await
    }

    async fn customer_of(&self, identity: &Identity) -> Result<Option<String>, StoreError> {
        let key = identity.key();
        let rows = self
            .rows(
                "SELECT customer_id FROM identities WHERE identity = $1",
                &[&key],
            )
            .await?;
        Ok(rows.into_iter().next().map(|r| r.get(0)))
    }

    async fn open_conversation(
        &self,
        identity: &Identity,
    ) -> Result<Option<ConversationId>, StoreError> {
        let key = identity.key();
        let rows = self
            .rows(
                "SELECT conversation_id FROM open WHERE identity = $1",
                &[&key],
            )
            .await?;
        Ok(rows.into_iter().next().map(|r| ConversationId(r.get(0))))
    }

    async fn conversation(
        &self,
        id: &ConversationId,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        self.body(
            "conversations",
            "SELECT body FROM conversations WHERE id = $1",
            &[&id.0],
        )
        .await
    }

    async fn messages(&self, id: &ConversationId) -> Result<Vec<StoredMessage>, StoreError> {
        self.bodies(
            "messages",
            "SELECT body FROM messages WHERE conversation_id = $1 ORDER BY seq",
            &[&id.0],
        )
        .await
    }

    async fn recent_messages(
        &self,
        id: &ConversationId,
        n: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let n = n.min(i64::MAX as usize) as i64;
        let mut out: Vec<StoredMessage> = self
            .bodies(
                "messages",
                "SELECT body FROM messages WHERE conversation_id = $1 ORDER BY seq DESC LIMIT $2",
                &[&id.0, &n],
            )
            .await?;
        out.reverse();
        Ok(out)
    }

    async fn queue_entries(&self) -> Result<Vec<QueueEntry>, StoreError> {
        self.bodies(
            "queue",
            "SELECT body FROM queue ORDER BY queue, conversation_id",
            &[],
        )
        .await
    }

    async fn assignments(&self) -> Result<Vec<(String, ConversationId)>, StoreError> {
        let rows = self
            .rows(
                "SELECT agent, conversation_id FROM assignments ORDER BY agent, conversation_id",
                &[],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), ConversationId(r.get(1))))
            .collect())
    }

    async fn conversation_count(&self) -> Result<usize, StoreError> {
        let rows = self.rows("SELECT count(*) FROM conversations", &[]).await?;
        Ok(rows[0].get::<_, i64>(0) as usize)
    }

    async fn conversations_since(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ConversationRecord>, StoreError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        self.bodies(
            "conversations",
            "SELECT body FROM conversations WHERE updated >= $1 ORDER BY updated DESC, id LIMIT $2",
            &[&since, &limit],
        )
        .await
    }

    async fn awaiting_answers(&self) -> Result<Vec<ConversationId>, StoreError> {
        let rows = self
            .rows(
                "SELECT conversation_id FROM awaiting ORDER BY conversation_id",
                &[],
            )
            .await?;
        Ok(rows.into_iter().map(|r| ConversationId(r.get(0))).collect())
    }

    async fn insert_link_code(&self, code: &str, link: &LinkCode) -> Result<bool, StoreError> {
        let identity = link.identity.key();
        let n = self
            .exec(
                "INSERT INTO link_codes (code, identity, expires, body) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (code) DO NOTHING",
                &[&code, &identity, &link.expires, &json(link)],
            )
            .await?;
        Ok(n == 1)
    }

    async fn take_link_code(&self, code: &str) -> Result<Option<LinkCode>, StoreError> {
        // One DELETE: of two callers taking the same code, one gets the row.
        self.body(
            "link_codes",
            "DELETE FROM link_codes WHERE code = $1 RETURNING body",
            &[&code],
        )
        .await
    }

    async fn failures(&self, key: &str, since: DateTime<Utc>) -> Result<usize, StoreError> {
        let times: Option<Vec<DateTime<Utc>>> = self
            .body(
                "link_attempts",
                "SELECT times FROM link_attempts WHERE key = $1",
                &[&key],
            )
            .await?;
        Ok(times
            .unwrap_or_default()
            .iter()
            .filter(|t| **t >= since)
            .count())
    }

    async fn note_failure(
        &self,
        key: &str,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The row exists before it is locked, so two first failures both count.
        tx.execute(
            "INSERT INTO link_attempts (key, times, newest) VALUES ($1, '[]', $2)
             ON CONFLICT (key) DO NOTHING",
            &[&key, &now],
        )
        .await?;
        let row = tx
            .query_one(
                "SELECT times FROM link_attempts WHERE key = $1 FOR UPDATE",
                &[&key],
            )
            .await?;
        let mut times: Vec<DateTime<Utc>> =
            serde_json::from_value(row.get::<_, Json<serde_json::Value>>(0).0).unwrap_or_default();
        times.retain(|t| *t >= since);
        times.push(now);
        if times.len() > MAX_NOTED_FAILURES {
            times.drain(..times.len() - MAX_NOTED_FAILURES);
        }
        let newest = times.iter().max().copied().unwrap_or(now);
        tx.execute(
            "UPDATE link_attempts SET times = $2, newest = $3 WHERE key = $1",
            &[&key, &json(&times), &newest],
        )
        .await?;
        tx.commit().await?;
        Ok(times.len())
    }

    async fn purge_link_codes(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let codes = self
            .exec("DELETE FROM link_codes WHERE expires < $1", &[&now])
            .await?;
        let window_start = now - chrono::Duration::from_std(ATTEMPT_MEMORY).unwrap_or_default();
        let attempts = self
            .exec(
                "DELETE FROM link_attempts WHERE newest < $1",
                &[&window_start],
            )
            .await?;
        Ok((codes + attempts) as usize)
    }

    async fn seen_inbound(
        &self,
        identity: &Identity,
        message_id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let key = identity.key();
        let seen: Option<SeenInbound> = self
            .body(
                "inbound",
                "SELECT body FROM inbound WHERE identity = $1 AND message_id = $2",
                &[&key, &message_id],
            )
            .await?;
        Ok(seen.map(|s| s.outcome))
    }

    async fn purge_inbound(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        Ok(self
            .exec("DELETE FROM inbound WHERE time < $1", &[&before])
            .await? as usize)
    }

    async fn apply(&self, change: Change) -> Result<(), StoreError> {
        // Rows are written in key order (so two changes lock shared rows in one order), and a
        // change that still meets a deadlock or a serialisation failure is written again: it
        // is all or nothing, so trying again is safe.
        let change = change::in_key_order(change);
        let mut attempt = 0;
        let channels = loop {
            match self.apply_change(&change).await {
                Err(StoreError::Postgres(e)) if change::retryable(&e) && attempt < 5 => {
                    attempt += 1;
                    let pause = rand::random::<u64>() % (10 << attempt);
                    tracing::debug!(attempt, error = %e, "change met another; written again");
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                other => break other?,
            }
        };
        for channel in channels {
            self.outbox_wake(channel).notify_one();
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // Every call above returned after its commit, and a commit is durable.
        Ok(())
    }

    async fn records(&self) -> Result<Vec<Record>, StoreError> {
        self.all_records().await
    }

    async fn load(&self, records: &[Record]) -> Result<(), StoreError> {
        self.load_records(records).await
    }
}
