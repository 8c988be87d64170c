//! Where `bench serve`'s load goes: servers on a runtime of this process (the default), or
//! with `--external` the server as a process of its own (`frontdesk serve`, this
//! binary, on a configuration written for the run), this process only its client, as a
//! shop's integration or a load balancer in front of it would be. The per-address caps are
//! lifted in that configuration as one shop server behind a proxy would lift them; the NLU
//! settings (`FRONTDESK_WEIGHTS`, `FRONTDESK_ISA`, ...) pass through the environment.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use frontdesk::config::Config;

use super::bench_cpu::SERVER_THREADS;

/// Per-address limits off, socket caps out of reach: the load comes from one address.
const UNLIMITED: &str = "\
[limits]
ip_messages_per_sec = 0.0
api_ip_messages_per_sec = 0.0
api_ip_in_flight = 0
customer_messages_per_sec = 0.0
ip_sessions_per_min = 0.0
sockets_per_ip = 1000000000
sockets_total = 1000000000
socket_idle_secs = 0
socket_quiet_secs = 0
platform_user_messages_per_min = 0.0
connections_per_ip = 0
";

/// A `frontdesk serve` child process on a free loopback port, with an API key for the bench.
pub struct ExternalServer {
    child: Child,
    pub url: String,
    pub key: String,
    log: PathBuf,
}

impl ExternalServer {
    /// Writes the configuration under `dir`, creates a key, starts the server and waits for
    /// its `/health`.
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("where is this binary?")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let config = dir.join("frontdesk.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nbind = \"127.0.0.1:{port}\"\ndata_dir = {:?}\n\n{UNLIMITED}",
                dir.join("data")
            ),
        )?;
        let created = Command::new(&exe)
            .args(["api-key", "create", "bench serve", "--config"])
            .arg(&config)
            .output()
            .context("running `frontdesk api-key create`")?;
        if !created.status.success() {
            bail!(
                "`frontdesk api-key create` failed: {}",
                String::from_utf8_lossy(&created.stderr)
            );
        }
        let key = String::from_utf8(created.stdout)?.trim().to_string();
        let log = dir.join("server.log");
        let child = Command::new(&exe)
            .args(["serve", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::create(dir.join("server.err"))?)
            .spawn()
            .context("starting `frontdesk serve`")?;
        let mut server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            key,
            log,
        };
        server.wait_healthy(Duration::from_secs(180)).await?;
        Ok(server)
    }

    async fn wait_healthy(&mut self, limit: Duration) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the server exited ({status}) before it was up: see {}",
                    self.log.with_file_name("server.err").display()
                );
            }
            let health = client.get(format!("{}/health", self.url)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!(
            "the server was not up after {limit:?}: see {}",
            self.log.display()
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the server to stop (SIGTERM) and waits for it; kills it after 30 s. Returns how
    /// it ended.
    pub async fn stop(mut self) -> anyhow::Result<std::process::ExitStatus> {
        // SAFETY: kill(2) on our own child's pid, which has not been reaped (we hold it).
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if started.elapsed() > Duration::from_secs(30) {
                self.child.kill()?;
                return Ok(self.child.wait()?);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A bench that fails half-way (or is interrupted by an error) leaves no server behind.
impl Drop for ExternalServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Resident and peak resident memory of process `pid`, in MB.
pub fn rss_of(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

/// The server(s) under load: on a runtime of this process, or a process of its own.
pub enum Target {
    InProcess {
        runtime: tokio::runtime::Runtime,
        servers: Vec<frontdesk::app::RunningServer>,
        cluster: Option<frontdesk::store::cluster::Cluster>,
    },
    External(ExternalServer),
}

/// Starts the server(s) on a runtime of their own in this process; returns them with the
/// URL(s) to send to and an API key.
pub async fn start_in_process(
    store: &str,
    data: &std::path::Path,
) -> anyhow::Result<(Target, String, String)> {
    let mut config = Config::load(None)?;
    config.server.bind = "127.0.0.1:0".into();
    config.server.data_dir = data.join("node-a");
    // the load comes from one address, far above any per-sender limit: measure the server
    config.limits = frontdesk::config::LimitsConfig::unlimited();
    let cluster = match store {
        "sled" => None,
        _ => {
            let cluster = frontdesk::store::cluster::Cluster::start()?;
            config.store.url = Some(cluster.url());
            Some(cluster)
        }
    };
    // The servers run on a runtime of their own, so the CPU their threads use is told apart
    // from the load generator's (which runs on this one).
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name(SERVER_THREADS)
        .enable_all()
        .build()?;
    let mut servers = Vec::new();
    let nodes = if store == "postgres-2" { 2 } else { 1 };
    for n in 0..nodes {
        let mut config = config.clone();
        if n > 0 {
            config.server.data_dir = data.join(format!("node-{n}"));
        }
        let started = server_rt.spawn(async move {
            let nlu = frontdesk::app::load_nlu(&config).await?;
            frontdesk::app::start(config, nlu).await
        });
        servers.push(started.await??);
    }
    let urls: Vec<String> = servers
        .iter()
        .map(|s| format!("{}/api/v1/messages", s.url()))
        .collect();
    // The REST API needs a key: one of its own, sent with every request.
    let key = frontdesk::server::auth::create_api_key(
        servers[0].store.as_ref(),
        "bench serve",
        frontdesk::server::auth::Scope::Messages,
    )
    .await?;
    let target = Target::InProcess {
        runtime: server_rt,
        servers,
        cluster,
    };
    Ok((target, urls.join(" "), key.key))
}
