//! The real `frontdesk serve` as a child process on a fixed port and data dir: started,
//! killed with SIGKILL, started again, stopped with SIGTERM. Its output goes to one log
//! file, every generation after the other.

use serde_json::Value;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_frontdesk");

/// One server process at a time, always on the same config (port, data dir).
pub struct Server {
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// Processes started so far.
    pub generations: usize,
}

/// A stretch of time when no server process was running: from a kill (or stop) to the
/// next start.
#[derive(Debug, Clone, Copy)]
pub struct Downtime {
    pub from: Instant,
    pub to: Instant,
    /// A clean stop (SIGTERM), not a kill.
    pub clean: bool,
}

impl Downtime {
    /// "kill #3" (counting kills only) or "the clean restart".
    pub fn name(&self, index: usize) -> String {
        if self.clean {
            "the clean restart".into()
        } else {
            format!("kill #{}", index + 1)
        }
    }
}

impl Server {
    pub fn new(config: &Path, log: &Path, url: String) -> Server {
        Server {
            child: None,
            config: config.to_path_buf(),
            log: log.to_path_buf(),
            url,
            generations: 0,
        }
    }

    /// Starts a process (none may be running).
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "a server is already running");
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the server log");
        let _ = writeln!(
            log,
            "===== frontdesk serve, generation {}",
            self.generations
        );
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "warn,frontdesk=info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start frontdesk serve");
        self.child = Some(child);
        self.generations += 1;
    }

    /// Waits until `/health` answers; panics if the process exits or takes over `limit`.
    pub async fn wait_ready(&mut self, http: &reqwest::Client, limit: Duration) {
        let started = Instant::now();
        loop {
            if self.health(http).await.is_some() {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "frontdesk serve exited ({status}) before it was ready; see {}",
                        self.log.display()
                    );
                }
            }
            assert!(
                started.elapsed() < limit,
                "frontdesk serve was not ready after {limit:?}; see {}",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `GET /health`, if the server answers 200.
    pub async fn health(&self, http: &reqwest::Client) -> Option<Value> {
        let res = http
            .get(format!("{}/health", self.url))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        if !res.status().is_success() {
            return None;
        }
        res.json().await.ok()
    }

    /// SIGKILL (what `Child::kill` sends on unix), then reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the clean shutdown (SIGKILL after `limit`); returns whether
    /// the process exited by itself with success.
    pub fn stop(&mut self, limit: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port free on 127.0.0.1 right now (the server binds it again after every restart).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `frontdesk api-key create` on the config's data dir (before any server runs).
pub fn create_api_key(config: &Path) -> String {
    let out = Command::new(BIN)
        .args(["api-key", "create", "fault-campaign", "--config"])
        .arg(config)
        .output()
        .expect("frontdesk api-key create");
    assert!(
        out.status.success(),
        "frontdesk api-key create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
