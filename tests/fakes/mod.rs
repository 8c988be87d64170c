//! Local stand-ins for the chat platforms, speaking their wire protocols on 127.0.0.1 so that
//! the real teloxide and serenity clients can be tested without leaving the machine.
//!
//! Each fake records what the bot sent, lets a test play a customer, and can be told to
//! answer the next calls with an error (rate limit, server error, blocked user).
#![allow(dead_code)]

pub mod desk;
pub mod discord;
mod discord_gateway;
pub mod telegram;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;

/// An error a fake answers instead of success, once per entry, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 429 with `retry_after` seconds.
    RetryAfter(u32),
    /// 500 Internal Server Error.
    ServerError,
}

/// How long a test waits for something the bot should do before it fails with a message.
/// Not a speed assertion: only a guard so that a broken bot ends the test instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Binds `router` on 127.0.0.1 (port 0 unless `port` is given) and serves it in the
/// background until the returned task is aborted.
pub async fn serve(router: axum::Router, port: u16) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind a fake platform on 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("fake platform server");
    });
    (addr, task)
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

/// Change counter: every state change bumps it, so waiters re-check their condition.
#[derive(Clone)]
pub struct Changes(watch::Sender<u64>);

impl Default for Changes {
    fn default() -> Self {
        Changes(watch::channel(0).0)
    }
}

impl Changes {
    pub fn bump(&self) {
        self.0.send_modify(|v| *v += 1);
    }

    /// Waits until `check` returns `Some`, re-checking after every change; panics with
    /// `what` after [`PATIENCE`].
    pub async fn until<T>(&self, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let mut rx = self.0.subscribe();
        let wait = async {
            loop {
                if let Some(v) = check() {
                    return v;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        match tokio::time::timeout(PATIENCE, wait).await {
            Ok(v) => v,
            Err(_) => panic!("gave up waiting for: {what}"),
        }
    }

    /// A receiver to take before checking a condition, so that no change is missed
    /// between the check and the wait.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// Runs `f` until it yields `Some`, polling every 50 ms; panics with `what` after
/// [`PATIENCE`]. For conditions outside a fake (the desk's state).
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
