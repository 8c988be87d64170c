//! The secrets a server signs with and the demo agent: kept in the data folder, or, on a
//! store other nodes share, agreed through it.

use std::path::Path;

use super::AppError;
use crate::config::{AgentConfig, Config};
use crate::server::auth;
use crate::store::Store;

pub const SECRET_FILE: &str = "secret";
pub const DEMO_AGENT_FILE: &str = "demo-agent-password";
pub const DEMO_AGENT: &str = "demo";

/// The demo agent (name, password), and whether its password was made just now.
type DemoAgent = (Option<(String, String)>, bool);

/// Settles the master secret (`server.secret`, else the one kept in `DATA/secret`, else a
/// new one written there) and, when no agent is configured, adds the demo agent whose
/// password is kept in `DATA/demo-agent-password`.
///
/// On a store other nodes share, both are the store's (`settings`): the first node to start
/// proposes its own, and every node uses what was agreed, so a token, session or CSRF tag
/// made by one node is accepted by all, and the demo agent logs in on any of them.
pub(super) async fn prepare_secrets(
    config: &mut Config,
    store: &dyn Store,
) -> Result<(String, DemoAgent), AppError> {
    let dir = config.server.data_dir.clone();
    let secret = master_secret_of(config, store).await?;
    let (demo_agent, demo_agent_new): DemoAgent = if config.agents.is_empty() {
        let (mut password, mut created) = read_or_create(&dir.join(DEMO_AGENT_FILE), 20)?;
        if store.shared() {
            let agreed = agree(store, "demo-agent-password", &password).await?;
            created &= agreed == password;
            password = agreed;
        }
        let hash = auth::hash_password(&password).map_err(AppError::Password)?;
        config.agents.push(AgentConfig {
            name: DEMO_AGENT.into(),
            display_name: Some("Demo agent".into()),
            password_hash: hash,
            capacity: 5,
            role: "admin".into(),
            queues: Vec::new(),
        });
        (Some((DEMO_AGENT.to_string(), password)), created)
    } else {
        (None, false)
    };
    Ok((secret, (demo_agent, demo_agent_new)))
}

/// The file's first line, or a new random value written to it (readable by the owner
/// only); and whether it was made now.
fn read_or_create(path: &Path, len: usize) -> Result<(String, bool), AppError> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let value = text.lines().next().unwrap_or("").trim().to_string();
        if !value.is_empty() {
            return Ok((value, false));
        }
    }
    let value = auth::random_token(len);
    write_private(path, &value).map_err(|source| AppError::Secret {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((value, true))
}

/// The setting every node of `store` agrees on (see [`Coordination::agreed_setting`]).
async fn agree(store: &dyn Store, name: &str, proposal: &str) -> Result<String, AppError> {
    store
        .agreed_setting(name, proposal)
        .await
        .map_err(AppError::Storage)
}

/// The master secret the server signs with: `server.secret` when set; else, on a shared
/// store, the one the nodes agreed on; else the data dir's.
pub async fn master_secret_of(config: &Config, store: &dyn Store) -> Result<String, AppError> {
    let local = master_secret(config)?;
    match config.server.secret.as_deref().filter(|s| !s.is_empty()) {
        None if store.shared() => agree(store, "secret", &local).await,
        _ => Ok(local),
    }
}

/// The master secret a data dir holds (`server.secret` when set), creating it when
/// missing: for commands that sign tokens the server accepts.
pub fn master_secret(config: &Config) -> Result<String, AppError> {
    if let Some(s) = config.server.secret.clone().filter(|s| !s.is_empty()) {
        return Ok(s);
    }
    let dir = &config.server.data_dir;
    std::fs::create_dir_all(dir).map_err(|source| AppError::DataDir {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join(SECRET_FILE);
    let (secret, _) = read_or_create(&path, 48)?;
    if secret.len() < crate::config::MIN_SECRET_LEN {
        return Err(AppError::ShortSecret { path });
    }
    Ok(secret)
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
