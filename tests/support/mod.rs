//! The one support tree of the integration tests, shared by both tiers (`tests/fast` needs
//! no model, `tests/model` loads the real one): a keyword NLU, a desk builder, a server
//! starter with HTTP/WebSocket clients, fake chat platforms and the scenarios that are the
//! same on every platform.
#![allow(dead_code)]

pub mod desk;
pub mod engine;
pub mod fakes;
pub mod kb;
pub mod nlu;
pub mod scenarios;
pub mod server;
pub mod traffic;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A path in the repository.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// How long a test waits for something the bot should do before it fails with a message.
/// Not a speed assertion: only a guard so that a broken bot ends the test instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Runs `f` until it yields `Some`, polling every 50 ms; panics with `what` after
/// [`PATIENCE`]. For conditions outside a fake (the desk's state, a server's answers).
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let wait = async {
        loop {
            if let Some(v) = f().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    match tokio::time::timeout(PATIENCE, wait).await {
        Ok(v) => v,
        Err(_) => panic!("gave up waiting for: {what}"),
    }
}

/// Shows the product's logs in a failing test's output (`RUST_LOG` to change the level).
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,frontdesk=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
