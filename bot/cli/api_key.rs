//! `frontdesk api-key create NAME [--scope S] | list | revoke ID_OR_NAME`: the REST API's
//! keys. A key is printed once; the store keeps only its hash. Run it while the server is
//! stopped (the store is one process's at a time); a server picks up the keys at start.

use std::path::PathBuf;

use anyhow::Context as _;
use frontdesk::server::auth::{self, Scope};

#[derive(clap::Args, Debug)]
pub struct ApiKeyArgs {
    #[command(subcommand)]
    pub what: ApiKeyCommand,
    /// Data folder of the store (overrides server.data_dir).
    #[arg(long, value_name = "DIR", global = true)]
    pub data: Option<PathBuf>,
    /// Configuration file (default: ./frontdesk.toml when it exists).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
pub enum ApiKeyCommand {
    /// Make a key and print it (once).
    Create {
        /// What the key is for, e.g. the integration's name.
        name: String,
        /// messages (post customers' messages), agent or lead (read queues and
        /// conversations), admin (everything, customers' data included), shop (post the
        /// shop's events to /api/v1/events, nothing else).
        #[arg(long, default_value = "messages")]
        scope: String,
    },
    /// List the keys (id, name, scope, created; never the key).
    List,
    /// Revoke the keys with this id or name.
    Revoke { id_or_name: String },
}

/// The config with `--config` and `--data` applied.
pub fn load_config(
    config: Option<&std::path::Path>,
    data: Option<PathBuf>,
) -> anyhow::Result<frontdesk::config::Config> {
    let mut config = frontdesk::config::Config::load(config)?;
    if let Some(data) = data {
        config.server.data_dir = data;
    }
    Ok(config)
}

/// Runs `work` on a runtime of its own (the commands that open the store).
pub fn block_on<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(work)
}

/// Opens the store the config names. With sled, a running server holds the folder; with
/// PostgreSQL, the commands work beside running servers.
pub async fn open_store(
    config: &frontdesk::config::Config,
) -> anyhow::Result<std::sync::Arc<dyn frontdesk::store::Store>> {
    let hint = match config.store.url {
        Some(_) => "opening the store (is the database up, and store.url right?)",
        None => "opening the store (is the server running on this data dir? stop it first, or use a PostgreSQL store)",
    };
    frontdesk::app::open_store(config).await.context(hint)
}

pub fn run(args: ApiKeyArgs) -> anyhow::Result<()> {
    block_on(run_async(args))
}

async fn run_async(args: ApiKeyArgs) -> anyhow::Result<()> {
    let config = load_config(args.config.as_deref(), args.data)?;
    let store = open_store(&config).await?;
    match args.what {
        ApiKeyCommand::Create { name, scope } => {
            let scope: Scope = scope.parse().map_err(anyhow::Error::msg)?;
            anyhow::ensure!(!name.trim().is_empty(), "the key needs a name");
            let new = auth::create_api_key(store.as_ref(), name.trim(), scope).await?;
            flush(store.as_ref()).await?;
            eprintln!(
                "API key `{}` ({}, scope {}); shown once, keep it safe:",
                new.record.name,
                new.record.id,
                scope.as_str()
            );
            println!("{}", new.key);
        }
        ApiKeyCommand::List => {
            for k in store.api_keys().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    k.id,
                    k.scope,
                    k.created.format("%Y-%m-%d %H:%M"),
                    k.name
                );
            }
        }
        ApiKeyCommand::Revoke { id_or_name } => {
            let revoked = auth::revoke_api_key(store.as_ref(), &id_or_name).await?;
            flush(store.as_ref()).await?;
            anyhow::ensure!(!revoked.is_empty(), "no key with id or name {id_or_name:?}");
            println!("revoked {}", revoked.join(", "));
        }
    }
    Ok(())
}

/// Waits for the store's flush.
pub async fn flush(store: &dyn frontdesk::store::Store) -> anyhow::Result<()> {
    store.flush().await.context("writing the store to disk")
}
