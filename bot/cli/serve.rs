//! `frontdesk serve`: loads the config, the model and the store, serves until Ctrl-C or
//! SIGTERM, then shuts down cleanly.

use std::path::PathBuf;

use anyhow::Context as _;
use frontdesk::config::Config;

#[derive(clap::Args, Debug, Default)]
pub struct ServeArgs {
    /// Address to listen on (overrides server.bind; default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// Data folder for the store and the generated secret (overrides server.data_dir).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Configuration file (default: ./frontdesk.toml when it exists, else built-in defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(bind) = args.bind {
        config.server.bind = bind;
    }
    if let Some(data) = args.data {
        config.server.data_dir = data;
    }
    config.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let nlu = frontdesk::app::load_nlu(&config).await?;
        let server = frontdesk::app::start(config, nlu).await?;
        if let Some((name, password)) = &server.demo_agent {
            // The password is shown once, when it is made; later starts point to its file.
            if server.demo_agent_new {
                tracing::warn!(
                    "no agents configured: log into {}/console as `{name}` with password \
                     `{password}` (shown once; kept in the data dir's {}; add [[agents]] to the \
                     config for real use)",
                    server.url(),
                    frontdesk::app::DEMO_AGENT_FILE
                );
            } else {
                tracing::warn!(
                    "no agents configured: log into {}/console as `{name}` with the password in \
                     the data dir's {} (add [[agents]] to the config for real use)",
                    server.url(),
                    frontdesk::app::DEMO_AGENT_FILE
                );
            }
        }
        tracing::info!(
            "frontdesk listening on {url} (demo shop {url}/, console {url}/console)",
            url = server.url()
        );
        shutdown_signal().await;
        tracing::info!("shutting down");
        server.shutdown().await?;
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
