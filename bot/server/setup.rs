//! What the server needs before it can open: the data dir, the HMAC secret, a demo agent
//! when the config names none, and the NLU.

use crate::config::{AgentConfig, Config};
use crate::nlu::service::{NluService, ServiceOptions};
use crate::nlu::{Nlu, NluOptions};
use anyhow::Context as _;
use std::path::Path;

pub const SECRET_FILE: &str = "secret";
pub const DEMO_AGENT_FILE: &str = "demo-agent-password";
pub const DEMO_AGENT: &str = "demo";

pub struct Prepared {
    pub secret: String,
    /// (name, password) of the generated demo agent.
    pub demo_agent: Option<(String, String)>,
}

/// Creates the data dir, settles the secret (`server.secret`, else the one kept in
/// `DATA/secret`, else a new one written there) and, when no agent is configured, adds the
/// demo agent whose password is kept in `DATA/demo-agent-password`.
pub fn prepare(config: &mut Config) -> anyhow::Result<Prepared> {
    let dir = config.server.data_dir.clone();
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the data dir {}", dir.display()))?;
    let secret = match config.server.secret.clone().filter(|s| !s.is_empty()) {
        Some(s) => s,
        None => read_or_create(&dir.join(SECRET_FILE), 48)?,
    };
    let demo_agent = if config.agents.is_empty() {
        let password = read_or_create(&dir.join(DEMO_AGENT_FILE), 20)?;
        let hash = super::auth::hash_password(&password)?;
        config.agents.push(AgentConfig {
            name: DEMO_AGENT.into(),
            display_name: Some("Demo agent".into()),
            password_hash: hash,
            capacity: 5,
        });
        Some((DEMO_AGENT.to_string(), password))
    } else {
        None
    };
    Ok(Prepared { secret, demo_agent })
}

/// The file's first line, or a new random value written to it (readable by the owner only).
fn read_or_create(path: &Path, len: usize) -> anyhow::Result<String> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let value = text.lines().next().unwrap_or("").trim().to_string();
        if !value.is_empty() {
            return Ok(value);
        }
    }
    let value = super::auth::random_token(len);
    write_private(path, &value).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(value)
}

fn write_private(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    writeln!(file, "{value}")?;
    file.sync_all()
}

/// Loads the encoder and heads (intents from `engine.intents_dir`) and starts the batching
/// worker.
pub async fn load_nlu(config: &Config) -> anyhow::Result<NluService> {
    let opts = NluOptions {
        intents_dir: config.engine.intents_dir.clone(),
        ..NluOptions::default()
    };
    let started = std::time::Instant::now();
    let nlu = tokio::task::spawn_blocking(move || Nlu::load(&opts))
        .await
        .context("loading the NLU panicked")??;
    tracing::info!(took_ms = started.elapsed().as_millis() as u64, "NLU loaded");
    Ok(NluService::start(nlu, ServiceOptions::default()))
}
