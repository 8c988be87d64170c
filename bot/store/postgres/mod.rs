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
mod conversations;
mod coordination;
mod outbox;
mod privacy;
mod search;
mod table;
mod versions;

/// The schema migrations, in order: (version, SQL). Never edit a shipped one; add the next.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("001_schema.sql")),
    (2, include_str!("002_nodes.sql")),
    (3, include_str!("003_versions.sql")),
];

/// Connections one node keeps at most.
pub const POOL_SIZE: usize = 16;

/// The PostgreSQL engine (see the module documentation).
pub struct PgStore {
    pool: Pool,
    /// Woken when records of a channel became deliverable (by `outbox::slot`).
    outbox_wake: Arc<[tokio::sync::Notify; 4]>,
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
