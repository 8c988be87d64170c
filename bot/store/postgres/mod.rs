//! The PostgreSQL engine: one database that every node of a deployment shares.
//!
//! Why tokio-postgres with deadpool-postgres (and not sqlx): plain SQL checked by the
//! conformance suite against a real server, no database needed at build time (sqlx's checked
//! queries want one, or a committed query cache to keep in step), a small dependency tree,
//! and pipelining of the statements of one change on one connection. The pool bounds how
//! many connections one node holds (`POOL_SIZE`).
//!
//! The schema (`001_schema.sql`, every table and index with what it is for) ships in the
//! binary and is applied at start, in one transaction under an advisory lock so that nodes
//! starting together do not race; `schema_migrations` records what was applied.
//!
//! Committed is durable here (`synchronous_commit` stays on), so [`Store::flush`] has
//! nothing to wait for and every committed outbox record may be sent.

use super::*;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::NoTls;

mod access;
mod change;
mod coordination;
mod outbox;
mod privacy;
mod table;

/// The schema migrations, in order: (version, SQL). Never edit a shipped one; add the next.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("001_schema.sql")),
    (2, include_str!("002_nodes.sql")),
];

/// Connections one node keeps at most.
pub const POOL_SIZE: usize = 16;

/// The PostgreSQL engine (see the module documentation).
pub struct PgStore {
    pool: Pool,
    /// Woken when records of a channel became deliverable (by `outbox::slot`).
    outbox_wake: [tokio::sync::Notify; 4],
    /// This node's name in `leases` (host, process, a random part).
    node: String,
    /// Where LISTEN/NOTIFY connects (its own connection, outside the pool).
    url: String,
    /// What the other nodes publish; the listener starts with the first subscriber.
    published: tokio::sync::broadcast::Sender<String>,
    listening: std::sync::Once,
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The server's own message says most ("relation … does not exist", a constraint).
        let detail = match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => e.to_string(),
        };
        StoreError::Postgres(detail)
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Postgres(format!(
            "no connection to the database: {e}; check that PostgreSQL runs and that \
             store.url (FRONTDESK_STORE_URL) names it"
        ))
    }
}

/// `url` with its password replaced by `***`, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

pub(super) type Params<'a> = Vec<&'a (dyn ToSql + Sync)>;

/// `value` as jsonb. jsonb cannot hold a NUL character: the intake drops them
/// (`Inbound::strip_nul`), and any that still arrives is stored as U+FFFD rather than fail
/// the whole change.
fn json<T: Serialize>(value: &T) -> Json<serde_json::Value> {
    fn clean(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) if s.contains('\0') => *s = s.replace('\0', "\u{fffd}"),
            serde_json::Value::Array(items) => items.iter_mut().for_each(clean),
            serde_json::Value::Object(map) => map.values_mut().for_each(clean),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(value).expect("store records always serialize");
    clean(&mut v);
    Json(v)
}

fn from_json<T: serde::de::DeserializeOwned>(
    what: &str,
    value: serde_json::Value,
) -> Result<T, StoreError> {
    serde_json::from_value(value).map_err(|source| StoreError::Corrupt {
        what: what.to_string(),
        source,
    })
}

impl PgStore {
    /// Connects to `url`, applies the schema migrations this binary ships, and checks the
    /// database is not newer than this binary.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let store = PgStore::open_lazily(url)?;
        store.migrate().await.map_err(|e| {
            StoreError::Postgres(format!("cannot open the store at {}: {e}", redact(url)))
        })?;
        Ok(store)
    }

    /// The store at `url` without connecting: connections are made on first use, on the
    /// runtime that uses them (a runtime that ends takes its connections with it). Run
    /// [`PgStore::migrate`] once before using it ([`PgStore::connect`] does both).
    pub fn open_lazily(url: &str) -> Result<PgStore, StoreError> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Postgres(format!(
                "store.url {} is not a PostgreSQL URL ({e}); write it as \
                 postgres://USER:PASSWORD@HOST:PORT/DATABASE",
                redact(url)
            ))
        })?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(std::time::Duration::from_secs(10)))
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Postgres(format!("connection pool: {e}")))?;
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "node".into());
        Ok(PgStore {
            pool,
            outbox_wake: Default::default(),
            node: format!(
                "{host}-{}-{:04x}",
                std::process::id(),
                rand::random::<u16>()
            ),
            url: url.to_string(),
            published: tokio::sync::broadcast::channel(1024).0,
            listening: std::sync::Once::new(),
        })
    }

    /// Applies the schema migrations this binary ships that the database lacks (one node at
    /// a time); refuses a database newer than this binary.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // One node migrates at a time; the others wait here, then find nothing to do.
        tx.execute("SELECT pg_advisory_xact_lock(4242001)", &[])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await?;
        let done: Option<i32> = tx
            .query_one("SELECT max(version) FROM schema_migrations", &[])
            .await?
            .get(0);
        let done = done.unwrap_or(0);
        let newest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
        if done > newest {
            return Err(StoreError::Postgres(format!(
                "the database has schema version {done}, newer than this frontdesk knows \
                 ({newest}): run the newer frontdesk, or copy the store out with it"
            )));
        }
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > done) {
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .await?;
            tracing::info!(version, "store schema migration applied");
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// Runs `sql` and returns its rows (statements are prepared once per connection).
    pub(super) async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query(&statement, params).await?)
    }

    /// Runs `sql` and returns how many rows it changed.
    pub(super) async fn exec(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.execute(&statement, params).await?)
    }

    /// The `body` of the one row `sql` finds, read as `T`.
    async fn body<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<T>, StoreError> {
        match self.rows(sql, params).await?.into_iter().next() {
            Some(row) => Ok(Some(from_json(what, row.get::<_, Json<_>>(0).0)?)),
            None => Ok(None),
        }
    }

    /// Every `body` the rows of `sql` hold, read as `T`.
    async fn bodies<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<T>, StoreError> {
        self.rows(sql, params)
            .await?
            .into_iter()
            .map(|row| from_json(what, row.get::<_, Json<_>>(0).0))
            .collect()
    }
}

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
