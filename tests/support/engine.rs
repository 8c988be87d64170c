//! Which store the tests' desks and servers run on. The fast tier runs on sled in each
//! test's temp dir; the `postgres` test binary (`tests/postgres/`) runs the same conversation,
//! channel, trust and exactly-once tests on PostgreSQL: one throwaway cluster per test
//! process (`frontdesk::store::cluster`: `initdb` and `pg_ctl` in a temp dir, as the
//! `postgres` user when the tests run as root; Debian's `postgresql` package provides them),
//! and one database per data folder, so a test that reopens its folder finds its data again.
//! The cluster is stopped when the process exits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use frontdesk::store::cluster::Cluster;
use frontdesk::store::{PgStore, SledStore, Store};

/// Whether this test binary runs its desks and servers on PostgreSQL.
pub fn postgres() -> bool {
    crate::STORE_ENGINE == "postgres"
}

struct Databases {
    cluster: Option<Cluster>,
    by_dir: HashMap<PathBuf, String>,
}

static DATABASES: OnceLock<Mutex<Databases>> = OnceLock::new();

extern "C" fn stop_cluster() {
    if let Some(dbs) = DATABASES.get() {
        let mut dbs = dbs.lock().unwrap_or_else(|e| e.into_inner());
        drop(dbs.cluster.take());
    }
}

/// The URL of the database that stands for data folder `dir` (made on first use).
pub fn database_for(dir: &Path) -> String {
    let dbs = DATABASES.get_or_init(|| {
        let cluster = Cluster::start().expect("a throwaway PostgreSQL for the tests");
        // SAFETY: registers a plain function; it runs once, at process exit.
        unsafe { libc::atexit(stop_cluster) };
        Mutex::new(Databases {
            cluster: Some(cluster),
            by_dir: HashMap::new(),
        })
    });
    let mut dbs = dbs.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(url) = dbs.by_dir.get(dir) {
        return url.clone();
    }
    let name = format!("t{}", dbs.by_dir.len());
    let url = dbs
        .cluster
        .as_ref()
        .expect("the cluster runs until the process exits")
        .new_database(&name)
        .expect("a database per data folder");
    dbs.by_dir.insert(dir.to_path_buf(), url.clone());
    url
}

/// The store for data folder `dir`: sled in it, or its PostgreSQL database (migrated on a
/// runtime of its own, so that it can be opened from synchronous code; its connections are
/// made by the test's runtime on first use).
pub fn open_store(dir: &Path) -> Arc<dyn Store> {
    if !postgres() {
        return Arc::new(SledStore::open(dir).expect("the test store opens"));
    }
    let url = database_for(dir);
    let migrate_url = url.clone();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async { PgStore::connect(&migrate_url).await.map(drop) })
    })
    .join()
    .expect("the migration thread")
    .expect("the test database migrates");
    Arc::new(PgStore::open_lazily(&url).expect("the test database"))
}

/// Points `config` at the store for its data folder (PostgreSQL only; sled is the default).
pub fn configure(config: &mut frontdesk::config::Config) {
    if postgres() {
        config.store.url = Some(database_for(&config.server.data_dir));
    }
}
