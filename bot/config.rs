//! One `Config`, loaded and validated once from a TOML file (documented with every default
//! in `frontdesk.example.toml`) plus a few environment overrides.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything `frontdesk serve` and `frontdesk replay` need to start.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub engine: EngineConfig,
    #[serde(default)]
    pub commerce: CommerceConfig,
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the HTTP server listens on.
    pub bind: String,
    /// Folder for the sled store (and the generated secret).
    pub data_dir: PathBuf,
    /// Longest customer message accepted, in characters.
    pub max_text_len: usize,
    /// HMAC secret for widget tokens; generated and kept in `data_dir` when unset.
    pub secret: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("frontdesk-data"),
            max_text_len: 2000,
            secret: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Folder of intent definitions; their `response` sections are the bot's answers.
    pub intents_dir: PathBuf,
    /// Escalation rules and queues (see `rules.toml`).
    pub rules: PathBuf,
    /// Conversation workers: messages of one conversation always go to the same worker.
    pub workers: usize,
    /// Messages waiting per worker before new ones are held back.
    pub worker_queue: usize,
    /// How long a message may wait for room before the desk answers `Busy`.
    pub busy_wait_ms: u64,
    /// An agent who owns a waiting customer and stays silent this long loses the
    /// conversation back to its queue.
    pub agent_idle_secs: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            intents_dir: PathBuf::from("intents"),
            rules: PathBuf::from("rules.toml"),
            workers: 16,
            worker_queue: 64,
            busy_wait_ms: 2000,
            agent_idle_secs: 300,
        }
    }
}

/// Where order, refund and account look-ups go.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommerceConfig {
    /// `demo` (the shop in `demo_file`) or `webhook` (the shop's own service at `webhook_url`).
    pub backend: String,
    pub demo_file: PathBuf,
    pub webhook_url: Option<String>,
    /// Timeout of one webhook call.
    pub timeout_ms: u64,
}

impl Default for CommerceConfig {
    fn default() -> Self {
        CommerceConfig {
            backend: "demo".into(),
            demo_file: PathBuf::from("data/demo_shop.json"),
            webhook_url: None,
            timeout_ms: 3000,
        }
    }
}

/// A human agent who can log into the console.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// argon2 PHC string (`$argon2id$...`).
    pub password_hash: String,
    /// Conversations the agent can own at once.
    #[serde(default = "default_capacity")]
    pub capacity: usize,
}

fn default_capacity() -> usize {
    3
}

impl AgentConfig {
    pub fn display(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl Config {
    /// Reads `path` (or `frontdesk.toml` in the working directory when it exists, or the
    /// defaults), applies `FRONTDESK_BIND` and `FRONTDESK_DATA`, and validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let path = match path {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("frontdesk.toml")).filter(|p| p.exists()),
        };
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                Config::from_toml(&text).map_err(|e| match e {
                    ConfigError::Parse { message, .. } => ConfigError::Parse { path, message },
                    other => other,
                })?
            }
            None => Config::default(),
        };
        if let Ok(bind) = std::env::var("FRONTDESK_BIND") {
            config.server.bind = bind;
        }
        if let Ok(dir) = std::env::var("FRONTDESK_DATA") {
            config.server.data_dir = PathBuf::from(dir);
        }
        config.validate()?;
        Ok(config)
    }

    /// Parses and validates a TOML document.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values that serde cannot; each error names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        };
        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "server.bind",
                "must be an address like 127.0.0.1:8080",
            ));
        }
        if self.server.max_text_len == 0 {
            return Err(invalid("server.max_text_len", "must be at least 1"));
        }
        if self.engine.workers == 0 {
            return Err(invalid("engine.workers", "must be at least 1"));
        }
        if self.engine.worker_queue == 0 {
            return Err(invalid("engine.worker_queue", "must be at least 1"));
        }
        if self.engine.agent_idle_secs == 0 {
            return Err(invalid("engine.agent_idle_secs", "must be at least 1"));
        }
        match self.commerce.backend.as_str() {
            "demo" => {}
            "webhook" => {
                let url = self.commerce.webhook_url.as_deref().unwrap_or("");
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(invalid(
                        "commerce.webhook_url",
                        "backend = \"webhook\" needs an http:// or https:// URL",
                    ));
                }
            }
            _ => {
                return Err(invalid(
                    "commerce.backend",
                    "must be \"demo\" or \"webhook\"",
                ))
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, agent) in self.agents.iter().enumerate() {
            let key = |field: &str| format!("agents[{i}].{field}");
            if agent.name.trim().is_empty() {
                return Err(invalid(&key("name"), "must not be empty"));
            }
            if !seen.insert(agent.name.clone()) {
                return Err(invalid(&key("name"), "is used by two agents"));
            }
            if !agent.password_hash.starts_with("$argon2") {
                return Err(invalid(
                    &key("password_hash"),
                    "must be an argon2 PHC string ($argon2id$...)",
                ));
            }
            if agent.capacity == 0 {
                return Err(invalid(&key("capacity"), "must be at least 1"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.server.bind, "127.0.0.1:8080");
        assert_eq!(c.server.max_text_len, 2000);
        assert_eq!(c.commerce.backend, "demo");
    }

    #[test]
    fn example_file_is_valid() {
        let text = include_str!("../frontdesk.example.toml");
        let c = Config::from_toml(text).unwrap();
        assert!(!c.agents.is_empty());
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::from_toml("[server]\nbnd = \"x\"").unwrap_err();
        assert!(e.to_string().contains("bnd"), "{e}");
    }

    #[test]
    fn webhook_without_url_is_rejected_with_its_key() {
        let e = Config::from_toml("[commerce]\nbackend = \"webhook\"").unwrap_err();
        assert!(e.to_string().contains("commerce.webhook_url"), "{e}");
    }

    #[test]
    fn agent_with_plain_password_is_rejected() {
        let e = Config::from_toml("[[agents]]\nname = \"ana\"\npassword_hash = \"secret\"")
            .unwrap_err();
        assert!(e.to_string().contains("agents[0].password_hash"), "{e}");
    }
}
