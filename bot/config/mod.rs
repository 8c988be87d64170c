//! One `Config` for the whole product, read from a TOML file (every key documented with its
//! default in `frontdesk.example.toml`), then overridden by `FRONTDESK_*` environment
//! variables, then validated once. This is the only file that reads the environment: every
//! component receives its options from here.
//!
//! Paths given in a file are relative to that file's folder; paths from the environment or
//! the command line are relative to the working directory. A path left unset means the
//! built-in default (the intents, rules, heads and demo shop shipped inside the binary).

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

mod kpis;
mod limits;
mod llm;
mod notices;
mod store;
mod survey;
mod validate;
pub use kpis::KpisConfig;
pub use limits::LimitsConfig;
pub use llm::{ApiKey, LlmConfig, LLM_MAX_TIMEOUT_MS};
pub use notices::{NoticesConfig, QuietWindow};
pub use store::StoreConfig;
pub use survey::{SurveyConfig, SurveyText};

/// Everything frontdesk needs to start: server, engine, shop, agents, NLU and chat platforms.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub engine: EngineConfig,
    #[serde(default)]
    pub commerce: CommerceConfig,
    #[serde(default)]
    pub nlu: NluConfig,
    #[serde(default)]
    pub channels: ChannelsConfig,
    #[serde(default)]
    pub demo: DemoConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub llm: LlmConfig,
    #[serde(default)]
    pub kb: KbConfig,
    #[serde(default)]
    pub assist: AssistConfig,
    #[serde(default)]
    pub survey: SurveyConfig,
    #[serde(default)]
    pub kpis: KpisConfig,
    #[serde(default)]
    pub notices: NoticesConfig,
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
}

/// The help centre (`kb/`): articles the bot quotes when a question is outside its
/// intents.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KbConfig {
    /// Folder of Markdown articles. Unset: the built-in demo help centre.
    pub dir: Option<PathBuf>,
    /// Least retrieval score (0..1) for the bot to answer with a passage; below it the
    /// out-of-scope answer stands.
    pub min_score: f32,
    /// Off: the bot never quotes the help centre.
    pub enabled: bool,
}

impl Default for KbConfig {
    fn default() -> Self {
        KbConfig {
            dir: None,
            min_score: 0.5,
            enabled: true,
        }
    }
}

/// What helps the agents in the console: canned replies (no LLM needed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AssistConfig {
    /// A TOML file of canned replies (format in `prompts/canned_replies.toml`), read again
    /// when it changes. Unset: the replies built into the binary.
    pub canned_replies: Option<PathBuf>,
    /// The tracking page of a parcel, for `{{ order.tracking_url }}` in canned replies:
    /// `{tracking_number}` and `{carrier}` are filled in.
    pub tracking_url: String,
}

impl Default for AssistConfig {
    fn default() -> Self {
        AssistConfig {
            canned_replies: None,
            tracking_url: crate::desk::assist::canned::DEFAULT_TRACKING_URL.into(),
        }
    }
}

impl AssistConfig {
    /// The `[assist]` checks, run with [`Config`]'s own validation: the canned replies file
    /// is read and checked whole (an error names the file and the line).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let tracking = &self.tracking_url;
        if !(tracking.starts_with("https://") || tracking.starts_with("http://"))
            || !tracking.contains("{tracking_number}")
        {
            return Err(ConfigError::Invalid {
                key: "assist.tracking_url".into(),
                message: "must be an http:// or https:// address holding {tracking_number}, \
                          such as https://shop.example/track/{tracking_number}"
                    .into(),
            });
        }
        let canned = self.canned_replies.as_deref();
        crate::desk::assist::canned::CannedReplies::load(canned).map_err(|e| {
            ConfigError::Invalid {
                key: "assist.canned_replies".into(),
                message: e.to_string(),
            }
        })?;
        Ok(())
    }
}

/// The demo shop's conveniences that must never run in front of real customers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// `/?customer=ID` signs a customer token for any id (only with `commerce.backend =
    /// "demo"`). Off unless asked for.
    pub enabled: bool,
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
    /// Master secret (at least 32 bytes): the keys for widget tokens, customer tokens and
    /// agent sessions are derived from it. Generated and kept in `data_dir` when unset.
    pub secret: Option<String>,
    /// A secret of the shop's own (at least 32 bytes): when set, customer tokens are signed
    /// with it (and it signs nothing else).
    pub shop_secret: Option<String>,
    /// Longest accepted lifetime of a customer token: tokens whose `exp` is further away
    /// are refused.
    pub customer_token_max_secs: u64,
    /// The public address (`https://support.example.com`): the Origin the console must
    /// come from, the widget's URL, and `Secure` cookies when it is https.
    pub public_url: Option<String>,
    /// Longest agent session, in seconds (sessions are kept on the server and revocable).
    pub session_secs: u64,
    /// Reverse proxies (IP addresses or CIDR ranges such as `10.0.0.0/8`) whose
    /// `X-Forwarded-For` names the client; from any other peer the header is ignored and the
    /// client is the peer address itself. Empty: no proxy is trusted.
    pub trusted_proxies: Vec<String>,
    /// A key for `/metrics` (at least 32 bytes): scrapers send `Authorization: Bearer KEY`.
    /// Unset: `/metrics` answers only clients in `metrics_from`.
    pub metrics_key: Option<String>,
    /// Addresses or CIDR ranges that may read `/metrics` without the key (default: this
    /// machine only).
    pub metrics_from: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("frontdesk-data"),
            max_text_len: 2000,
            secret: None,
            shop_secret: None,
            customer_token_max_secs: 86_400,
            public_url: None,
            session_secs: 12 * 3600,
            trusted_proxies: Vec::new(),
            metrics_key: None,
            metrics_from: vec!["127.0.0.0/8".into(), "::1".into()],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Folder of intent definitions; their `response` sections are the bot's answers.
    /// Unset: the built-in intents.
    pub intents_dir: Option<PathBuf>,
    /// Escalation rules and queues (see `rules.toml`). Unset: the built-in rules.
    pub rules: Option<PathBuf>,
    /// Conversation workers: messages of one conversation always go to the same worker.
    pub workers: usize,
    /// Messages waiting per worker before new ones are held back.
    pub worker_queue: usize,
    /// How long a message may wait for room before the desk answers `Busy`.
    pub busy_wait_ms: u64,
    /// An agent who owns a waiting customer and stays silent this long loses the
    /// conversation back to its queue.
    pub agent_idle_secs: u64,
    /// Closed conversations older than this many days are deleted; 0 keeps them.
    pub retention_days: u64,
    /// The widget: messages a visitor sends within this many milliseconds of each other are
    /// answered as one ("my order" … "is 10234"); 0 answers each at once. Telegram, Discord
    /// and REST are answered at once: they acknowledge a message only once it is stored.
    pub debounce_ms: u64,
    /// A message within this many minutes of an agent closing the conversation reopens it
    /// (same conversation, back with the bot); later, or with 0, it starts a new one.
    pub reopen_within_mins: u64,
    /// Waiting conversations go by themselves to the available agent serving their queue
    /// with the most room (`desk/assign.rs`); manual claims work either way.
    pub auto_assign: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            intents_dir: None,
            rules: None,
            workers: 16,
            worker_queue: 64,
            busy_wait_ms: 2000,
            agent_idle_secs: 300,
            retention_days: 0,
            debounce_ms: 1500,
            reopen_within_mins: 0,
            auto_assign: true,
        }
    }
}

/// Where order, refund and account look-ups go.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommerceConfig {
    /// `demo` (the shop in `demo_file`) or `webhook` (the shop's own service at `webhook_url`).
    pub backend: String,
    /// The demo shop's data. Unset: the built-in demo shop.
    pub demo_file: Option<PathBuf>,
    pub webhook_url: Option<String>,
    /// Timeout of one webhook call.
    pub timeout_ms: u64,
}

impl Default for CommerceConfig {
    fn default() -> Self {
        CommerceConfig {
            backend: "demo".into(),
            demo_file: None,
            webhook_url: None,
            timeout_ms: 3000,
        }
    }
}

/// The local language model and its heads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NluConfig {
    /// A sentence-transformers BERT model folder (`model.safetensors`, `tokenizer.json`,
    /// `config.json`). Unset: all-MiniLM-L6-v2, fetched into `cache_dir` on first use.
    pub model_dir: Option<PathBuf>,
    /// Where the model, feature caches and the built-in defaults are kept.
    /// Unset: `~/.cache/frontdesk`.
    pub cache_dir: Option<PathBuf>,
    /// Trained heads (`sentiment.safetensors`, `anger.safetensors`, `frustration.safetensors`,
    /// `stakes.safetensors`, the intent head).
    /// Unset: the built-in heads (an intent head for other intents is trained and kept in
    /// the cache).
    pub models_dir: Option<PathBuf>,
    /// Encoder weights in memory: `f16` (half the memory, cosine >= 0.99999 to f32), `f32`, or
    /// `int8` (a quarter, integer dot products; used only if its load-time check holds).
    pub weights: String,
    /// Matrix kernels: `auto` (the widest this CPU offers), `avx512`, `avx2`, `neon` or
    /// `portable`; a ceiling, so the x86 words give NEON on aarch64 and `neon` the portable
    /// code on x86.
    pub isa: String,
    /// Threads for one encoder pass. Unset: the CPU count, at most 4.
    pub threads: Option<usize>,
    /// How long an idle encoder thread spins before it sleeps, in microseconds.
    pub spin_us: u64,
}

impl Default for NluConfig {
    fn default() -> Self {
        NluConfig {
            model_dir: None,
            cache_dir: None,
            models_dir: None,
            weights: "f16".into(),
            isa: "auto".into(),
            threads: None,
            spin_us: 50,
        }
    }
}

impl NluConfig {
    /// The cache folder: `cache_dir`, else `~/.cache/frontdesk`.
    pub fn cache(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(|| {
            dirs::cache_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("frontdesk")
        })
    }
}

/// Chat platforms. A platform is on when its token is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelsConfig {
    pub telegram: TelegramSettings,
    pub discord: DiscordSettings,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelegramSettings {
    /// Bot token from @BotFather; Telegram is off without it.
    pub token: Option<String>,
    /// Bot API base URL (a self-hosted Bot API server; tests).
    pub api_url: Option<String>,
    /// Public https address of `/channels/telegram/webhook`; when set, Telegram pushes
    /// updates instead of being polled.
    pub webhook_url: Option<String>,
    /// Secret Telegram presents on each webhook call (1-256 of A-Z a-z 0-9 _ -).
    /// Generated at start when unset.
    pub webhook_secret: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordSettings {
    /// Bot token; Discord is off without it. The bot answers direct messages.
    pub token: Option<String>,
    /// Base URL replacing `https://discord.com` (tests).
    pub api_url: Option<String>,
    /// Channel ids where the bot also answers, one thread per customer.
    pub support_channels: Vec<u64>,
}

/// An IP address or a CIDR range (`10.0.0.0/8`, `fd00::/8`), as `server.trusted_proxies`
/// lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    base: std::net::IpAddr,
    prefix: u8,
}

impl IpRange {
    /// `Err` says what is wrong with the text.
    pub fn parse(text: &str) -> Result<IpRange, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let base: std::net::IpAddr = addr.parse().map_err(|_| {
            format!("`{text}` is not an IP address or a CIDR range such as 10.0.0.0/8 or fd00::/8")
        })?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => {
                    return Err(format!(
                        "`{text}`: the prefix length must be a number from 0 to {max}"
                    ))
                }
            },
        };
        Ok(IpRange { base, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr::{V4, V6};
        let ip = match ip {
            V6(v6) => v6.to_ipv4_mapped().map(V4).unwrap_or(V6(v6)),
            v4 => v4,
        };
        match (self.base, ip) {
            (V4(base), V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(base) & mask == u32::from(ip) & mask
            }
            (V6(base), V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(base) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A human agent who can log into the console.
/// The longest agent name (and the longest login name the console reads).
pub const MAX_AGENT_NAME: usize = 64;

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
    /// `agent` (default) or `admin` (may also export and erase customers' data).
    #[serde(default = "default_role")]
    pub role: String,
    /// The queues auto-assignment gives this agent conversations from; empty: every queue.
    #[serde(default)]
    pub queues: Vec<String>,
}

fn default_role() -> String {
    "agent".into()
}

fn default_capacity() -> usize {
    3
}

impl AgentConfig {
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }

    /// A support lead (role `lead`) or an admin: may see and change the rules.
    pub fn is_lead(&self) -> bool {
        matches!(self.role.as_str(), "lead" | "admin")
    }

    pub fn display(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }
}

/// Shortest accepted `server.secret` / `server.shop_secret`, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("environment variable {var} (overrides `{key}`): {message}")]
    Env {
        var: &'static str,
        key: &'static str,
        message: String,
    },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

/// Every environment variable frontdesk reads, with the config key it overrides.
pub const ENV_OVERRIDES: [(&str, &str); 25] = [
    ("FRONTDESK_BIND", "server.bind"),
    ("FRONTDESK_DATA", "server.data_dir"),
    ("FRONTDESK_STORE_URL", "store.url"),
    ("FRONTDESK_SECRET", "server.secret"),
    ("FRONTDESK_SHOP_SECRET", "server.shop_secret"),
    ("FRONTDESK_PUBLIC_URL", "server.public_url"),
    ("FRONTDESK_METRICS_KEY", "server.metrics_key"),
    ("FRONTDESK_DEMO", "demo.enabled"),
    ("FRONTDESK_MODEL_DIR", "nlu.model_dir"),
    ("FRONTDESK_CACHE", "nlu.cache_dir"),
    ("FRONTDESK_MODELS", "nlu.models_dir"),
    ("FRONTDESK_WEIGHTS", "nlu.weights"),
    ("FRONTDESK_ISA", "nlu.isa"),
    ("FRONTDESK_THREADS", "nlu.threads"),
    ("FRONTDESK_SPIN_US", "nlu.spin_us"),
    ("FRONTDESK_TELEGRAM_TOKEN", "channels.telegram.token"),
    ("FRONTDESK_TELEGRAM_API_URL", "channels.telegram.api_url"),
    (
        "FRONTDESK_TELEGRAM_WEBHOOK_URL",
        "channels.telegram.webhook_url",
    ),
    (
        "FRONTDESK_TELEGRAM_WEBHOOK_SECRET",
        "channels.telegram.webhook_secret",
    ),
    ("FRONTDESK_DISCORD_TOKEN", "channels.discord.token"),
    ("FRONTDESK_DISCORD_API_URL", "channels.discord.api_url"),
    (
        "FRONTDESK_DISCORD_SUPPORT_CHANNELS",
        "channels.discord.support_channels",
    ),
    ("FRONTDESK_LLM_URL", "llm.url"),
    ("FRONTDESK_LLM_MODEL", "llm.model"),
    ("FRONTDESK_LLM_API_KEY", "llm.api_key"),
];

impl Config {
    /// Reads `path` (or `frontdesk.toml` in the working directory when it exists, or the
    /// defaults), applies the `FRONTDESK_*` overrides ([`ENV_OVERRIDES`]) and validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(path, |name| std::env::var(name).ok())
    }

    /// [`Config::load`] with the environment given as a function (tests).
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
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
                let mut config = Config::parse(&text).map_err(|source| ConfigError::Parse {
                    path: path.clone(),
                    source: Box::new(source),
                })?;
                let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
                config.resolve_paths(&base);
                config
            }
            None => Config::default(),
        };
        config.apply_env(env)?;
        config.validate()?;
        config.store.validate()?;
        config.llm.validate()?;
        config.assist.validate()?;
        config.kpis.validate()?;
        Ok(config)
    }

    /// Parses and validates a TOML document (paths stay as written).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config = Config::parse(text).map_err(|source| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            source: Box::new(source),
        })?;
        config.validate()?;
        config.store.validate()?;
        config.llm.validate()?;
        config.assist.validate()?;
        config.kpis.validate()?;
        Ok(config)
    }

    fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Makes the relative paths of a config file relative to the file's folder.
    fn resolve_paths(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        join(&mut self.server.data_dir);
        for p in [
            &mut self.engine.intents_dir,
            &mut self.engine.rules,
            &mut self.commerce.demo_file,
            &mut self.nlu.model_dir,
            &mut self.nlu.cache_dir,
            &mut self.nlu.models_dir,
            &mut self.llm.prompts_dir,
            &mut self.kb.dir,
            &mut self.assist.canned_replies,
        ] {
            if let Some(p) = p.as_mut() {
                join(p);
            }
        }
    }

    /// Applies every `FRONTDESK_*` variable that is set and not blank.
    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for (var, key) in ENV_OVERRIDES {
            let Some(value) = env(var).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            let value = value.trim().to_string();
            let bad = |message: &str| ConfigError::Env {
                var,
                key,
                message: message.to_string(),
            };
            let path = || Some(PathBuf::from(&value));
            match key {
                "server.bind" => self.server.bind = value.clone(),
                "server.data_dir" => self.server.data_dir = PathBuf::from(&value),
                "store.url" => self.store.url = Some(value.clone()),
                "server.secret" => self.server.secret = Some(value.clone()),
                "server.shop_secret" => self.server.shop_secret = Some(value.clone()),
                "server.public_url" => self.server.public_url = Some(value.clone()),
                "demo.enabled" => {
                    self.demo.enabled = value.parse().map_err(|_| bad("must be true or false"))?
                }
                "nlu.model_dir" => self.nlu.model_dir = path(),
                "nlu.cache_dir" => self.nlu.cache_dir = path(),
                "nlu.models_dir" => self.nlu.models_dir = path(),
                "nlu.weights" => self.nlu.weights = value.clone(),
                "nlu.isa" => self.nlu.isa = value.clone(),
                "nlu.threads" => {
                    self.nlu.threads = Some(value.parse().map_err(|_| bad("must be a number"))?)
                }
                "nlu.spin_us" => {
                    self.nlu.spin_us = value
                        .parse()
                        .map_err(|_| bad("must be a number of microseconds"))?
                }
                "channels.telegram.token" => self.channels.telegram.token = Some(value.clone()),
                "channels.telegram.api_url" => self.channels.telegram.api_url = Some(value.clone()),
                "channels.telegram.webhook_url" => {
                    self.channels.telegram.webhook_url = Some(value.clone())
                }
                "channels.telegram.webhook_secret" => {
                    self.channels.telegram.webhook_secret = Some(value.clone())
                }
                "channels.discord.token" => self.channels.discord.token = Some(value.clone()),
                "channels.discord.api_url" => self.channels.discord.api_url = Some(value.clone()),
                "channels.discord.support_channels" => {
                    self.channels.discord.support_channels = value
                        .split(',')
                        .map(|s| s.trim().parse::<u64>())
                        .collect::<Result<_, _>>()
                        .map_err(|_| bad("must be channel ids separated by commas"))?
                }
                "llm.url" => self.llm.url = Some(value.clone()),
                "llm.model" => self.llm.model = value.clone(),
                "llm.api_key" => self.llm.api_key = Some(ApiKey::new(value.clone())),
                other => unreachable!("override for {other} is listed but not applied"),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
