//! The composition root: the one place that builds the running application, in the order a
//! message flows through it — config → NLU → store → desk → intake → chat platforms → HTTP.
//! `frontdesk serve`, `replay`, `bench serve` and the tests all start from here, so a part
//! is wired the same way wherever it runs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::channels::platforms::{PlatformError, Platforms, PlatformsConfig};
use crate::commerce::{self, CommerceError};
use crate::config::Config;
use crate::defaults::{self, DefaultsError};
use crate::desk::{Desk, DeskParts, Dialogue, Understand};
use crate::intake::Intake;
use crate::kb::{HelpCentre, KbError};
use crate::metrics;
use crate::nlu::{
    EncoderOptions, IntentError, Nlu, NluError, NluOptions, NluService, ServiceOptions,
};
use crate::outbox::health::ChannelHealth;
use crate::outbox::{FailedDelivery, FailureHook};
use crate::policy::{Rules, RulesError};
use crate::server::{self, auth, AppState};
use crate::store::{Location, Store, StoreError};

/// Why the application could not start or stop; each names the part and what to fix.
mod secrets;
use secrets::prepare_secrets;
mod cockpit;
mod paths;
mod replay_desk;
pub use paths::Paths;
pub use replay_desk::{desk_maker, replay_rules, simulation_desk, temporary_desk};
pub use secrets::{master_secret, master_secret_of, DEMO_AGENT, DEMO_AGENT_FILE, SECRET_FILE};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Defaults(#[from] DefaultsError),
    #[error("the language model could not be loaded: {0}")]
    Nlu(#[source] NluError),
    #[error("the language model failed its first message: {0}")]
    NluWarmUp(#[source] NluError),
    #[error("the help centre (`kb`): {0}")]
    Kb(#[from] KbError),
    #[error("the LLM endpoint (`[llm]`): {0}; fix llm.url or unset it to run without an LLM")]
    Llm(#[source] crate::llm::LlmError),
    #[error("loading the help centre panicked: {0}")]
    KbPanicked(#[source] tokio::task::JoinError),
    #[error("`nlu.{key}`: {message}")]
    NluOption { key: &'static str, message: String },
    #[error("cannot create the data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the store ({place}): {source}")]
    Store {
        place: String,
        #[source]
        source: StoreError,
    },
    #[error("flushing the store: {0}")]
    Flush(#[source] crate::desk::DeskError),
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error("the shop backend: {0}")]
    Commerce(#[from] CommerceError),
    #[error("intents: {0}")]
    Intents(#[from] IntentError),
    #[error("the chat platforms: {0}")]
    Platforms(#[from] PlatformError),
    #[error("cannot keep {path}: {source}")]
    Secret {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot hash the demo agent's password: {0}")]
    Password(#[source] auth::AuthError),
    #[error("the secret in {path} is shorter than 32 bytes: delete the file to have a long one generated, or set server.secret")]
    ShortSecret { path: PathBuf },
    #[error("the store: {0}")]
    Storage(#[source] StoreError),
    #[error("putting the conversations of removed agents back in their queue: {0}")]
    Orphans(#[source] crate::desk::DeskError),
    #[error("cannot keep the rules' versions: {0}")]
    Cockpit(#[from] crate::cockpit::CockpitError),
    #[error("answering the questions a stop left waiting for the LLM: {0}")]
    Stranded(#[source] crate::desk::DeskError),
    #[error("cannot listen on {addr}: {source} (is another frontdesk running there? change server.bind or --bind)")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error("a background task panicked: {0}")]
    Panicked(#[source] tokio::task::JoinError),
}

/// The NLU's options from `[nlu]` and the resolved paths.
pub fn nlu_options(config: &Config) -> Result<NluOptions, AppError> {
    let paths = Paths::resolve(config)?;
    let n = &config.nlu;
    let bad = |key: &'static str, message: String| AppError::NluOption { key, message };
    let encoder = EncoderOptions {
        weights: n.weights.parse().map_err(|e| bad("weights", e))?,
        isa: n.isa.parse().map_err(|e| bad("isa", e))?,
        threads: n.threads,
        spin_us: n.spin_us,
    };
    Ok(NluOptions {
        model_dir: n.model_dir.clone(),
        cache_dir: paths.cache_dir,
        intents_dir: paths.intents_dir,
        models_dir: paths.models_dir,
        validation_dir: Some(paths.validation_dir),
        encoder,
    })
}

/// Loads the encoder and heads (retraining the intent head when the intents changed) and
/// starts the batching worker.
pub async fn load_nlu(config: &Config) -> Result<NluService, AppError> {
    let opts = nlu_options(config)?;
    let started = Instant::now();
    let nlu = tokio::task::spawn_blocking(move || Nlu::load(&opts))
        .await
        .map_err(AppError::Panicked)?
        .map_err(AppError::Nlu)?;
    tracing::info!(took_ms = started.elapsed().as_millis() as u64, "NLU loaded");
    Ok(NluService::start(nlu, ServiceOptions::default()))
}

/// A desk on `store` with the configured intents' answers, shop, rules (or `rules`, when
/// given) and agents; starts its workers and idle-agent watcher.
pub fn open_desk(
    config: &Config,
    store: Arc<dyn Store>,
    nlu: Arc<dyn Understand>,
    rules: Option<Rules>,
) -> Result<Desk, AppError> {
    open_desk_with_help(config, store, nlu, rules, None)
}

/// [`open_desk`] whose out-of-scope answers first look in the help centre `help`.
pub fn open_desk_with_help(
    config: &Config,
    store: Arc<dyn Store>,
    nlu: Arc<dyn Understand>,
    rules: Option<Rules>,
    help: Option<Arc<HelpCentre>>,
) -> Result<Desk, AppError> {
    let paths = Paths::resolve(config)?;
    let rules = match rules {
        Some(r) => r,
        None => Rules::load(&paths.rules)?,
    };
    let shop = commerce::from_config(&config.commerce, &paths.demo_file)?;
    let dialogue = Dialogue::load(&paths.intents_dir, shop)?.with_help_centre(help);
    let desk = Desk::open_with(DeskParts {
        store,
        nlu,
        dialogue,
        rules,
        agents: config.agents.clone(),
        engine: config.engine.clone(),
        llm: crate::llm::LlmHandle::from_config(&config.llm).map_err(AppError::Llm)?,
    });
    desk.set_survey(config.survey.clone());
    Ok(desk)
}

/// The help centre of `[kb]` (the built-in one unless `kb.dir` is set), its passages
/// embedded by `nlu` (or read from the cache when the articles did not change); `None`
/// when `kb.enabled` is off. A task reads the folder again whenever its articles change
/// (every [`crate::kb::WATCH_EVERY`]), until the help centre is dropped.
pub async fn load_help_centre(
    config: &Config,
    nlu: &NluService,
) -> Result<Option<Arc<HelpCentre>>, AppError> {
    if !config.kb.enabled {
        return Ok(None);
    }
    let cache_dir = config.nlu.cache();
    let dir = match &config.kb.dir {
        Some(dir) => dir.clone(),
        None => defaults::materialize(&cache_dir)?.root.join("kb"),
    };
    let service = nlu.clone();
    let min_score = config.kb.min_score;
    let started = Instant::now();
    let help = tokio::task::spawn_blocking(move || {
        HelpCentre::load(
            dir,
            Some(cache_dir),
            Arc::new(service.clone()),
            service,
            min_score,
        )
    })
    .await
    .map_err(AppError::KbPanicked)??;
    tracing::info!(
        took_ms = started.elapsed().as_millis() as u64,
        "help centre ready"
    );
    let help = Arc::new(help);
    help.watch(crate::kb::WATCH_EVERY);
    Ok(Some(help))
}

/// Where `config` keeps the store: `[store] url` when set, else sled in
/// `server.data_dir/store`.
pub fn store_location(config: &Config) -> Location {
    match &config.store.url {
        Some(url) => Location::Postgres(url.clone()),
        None => Location::Folder(config.server.data_dir.join("store")),
    }
}

/// Opens (or creates) the store `config` names (see [`store_location`]); every command that
/// reads or writes the desk's state opens it here.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, AppError> {
    let dir = &config.server.data_dir;
    std::fs::create_dir_all(dir).map_err(|source| AppError::DataDir {
        path: dir.clone(),
        source,
    })?;
    let location = store_location(config);
    let store = crate::store::open(&location)
        .await
        .map_err(|source| AppError::Store {
            place: location.describe(),
            source,
        })?;
    tracing::info!(store = %location.describe(), "store open");
    Ok(store)
}

/// A running frontdesk: HTTP server, desk, chat platforms.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub desk: Desk,
    pub intake: Intake,
    /// The generated demo agent (name, password) when the config names no agents.
    pub demo_agent: Option<(String, String)>,
    /// Whether the demo agent's password was made by this start (it is shown once).
    pub demo_agent_new: bool,
    /// The keys of each purpose, so an embedding shop (or a test) can sign customer tokens.
    pub keys: Arc<auth::Keys>,
    /// The store, for API keys and the privacy commands of an embedding program (or a test).
    pub store: Arc<dyn Store>,
    /// The state of each chat platform, as `/health` shows it.
    pub channels: ChannelHealth,
    platforms: Platforms,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// `http://ADDR`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, closes open sockets, waits for requests in flight, stops the
    /// platforms and flushes the store.
    pub async fn shutdown(self) -> Result<(), AppError> {
        let _ = self.stop.send(true);
        self.task
            .await
            .map_err(AppError::Panicked)?
            .map_err(AppError::Serve)?;
        self.platforms.shutdown().await;
        self.desk.flush().await.map_err(AppError::Flush)?;
        Ok(())
    }
}

/// Starts the whole application on `config` with `nlu`: the store under
/// `server.data_dir`, the desk, the chat platforms of `[channels]`, and the HTTP server on
/// `server.bind`. Serves until [`RunningServer::shutdown`].
pub async fn start<U: Understand>(config: Config, nlu: U) -> Result<RunningServer, AppError> {
    let platforms = PlatformsConfig::from_config(&config.channels)?;
    start_with_platforms(config, nlu, platforms).await
}

/// [`start`] with the chat platforms given here (tests point them at local fakes).
pub async fn start_with_platforms<U: Understand>(
    config: Config,
    nlu: U,
    platforms: PlatformsConfig,
) -> Result<RunningServer, AppError> {
    start_with_help(config, nlu, platforms, None).await
}

/// [`start_with_platforms`] with this help centre instead of the one `[kb]` loads (tests
/// run one on a stand-in encoder).
pub async fn start_with_help<U: Understand>(
    mut config: Config,
    nlu: U,
    platforms: PlatformsConfig,
    help: Option<Arc<HelpCentre>>,
) -> Result<RunningServer, AppError> {
    // Every socket holds a file: as many as the system allows (reported in /health).
    crate::server::open_files::raise();
    let store = open_store(&config).await?;
    let (secret, (demo_agent, demo_agent_new)) =
        prepare_secrets(&mut config, store.as_ref()).await?;
    // One message through the NLU before anything listens: /health only ever reports a
    // server whose NLU has answered.
    let warm = Instant::now();
    nlu.analyze("hello, is anyone there?".into())
        .await
        .map_err(AppError::NluWarmUp)?;
    let nlu_first_ms = warm.elapsed().as_millis() as u64;
    // Only the real encoder can embed questions; a stand-in NLU (tests) answers without
    // the help centre.
    let service = (&nlu as &dyn std::any::Any)
        .downcast_ref::<NluService>()
        .cloned();
    let help = match (help, service) {
        (Some(help), _) => Some(help),
        (None, Some(service)) => load_help_centre(&config, &service).await?,
        (None, None) => None,
    };
    let desk = open_desk_with_help(&config, store.clone(), Arc::new(nlu), None, help)?;
    desk.requeue_orphans().await.map_err(AppError::Orphans)?;
    desk.answer_stranded().await.map_err(AppError::Stranded)?;
    let lease_secs = config.store.lease_secs;
    let limits = &config.limits;
    let intake = Intake::with_debounce(
        desk.clone(),
        Duration::from_millis(config.engine.debounce_ms),
    )
    .with_platform_rate(
        crate::throttle::Rate::per_min(
            limits.platform_user_messages_per_min,
            limits.platform_user_messages_burst,
        ),
        limits.max_tracked,
    );
    let listener = tokio::net::TcpListener::bind(&config.server.bind)
        .await
        .map_err(|source| AppError::Bind {
            addr: config.server.bind.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(AppError::Serve)?;
    let (stop, stopping) = watch::channel(false);
    let keys = Arc::new(auth::Keys::derive(
        &secret,
        config.server.shop_secret.as_deref(),
    ));
    // What the lead edits is read again when it changes; each version is kept in the store.
    let cockpit = cockpit::start(&config, &desk, store.clone(), stopping.clone()).await?;
    spawn_upkeep(
        store.clone(),
        config.engine.retention_days,
        stopping.clone(),
    )
    .await
    .map_err(AppError::Storage)?;
    let metrics_handle = metrics::handle();
    metrics::spawn_upkeep(metrics_handle.clone(), stopping.clone());
    server::console::spawn_event_metrics(desk.clone(), stopping.clone());
    let rules_now = desk.clone();
    crate::kpis::metrics::spawn(
        store.clone(),
        Arc::new(move || rules_now.rules()),
        config.kpis.clone(),
        stopping.clone(),
    );
    let channels = ChannelHealth::new();
    let platforms = Platforms::start(
        intake.clone(),
        store.clone(),
        platforms,
        channels.clone(),
        Some(record_failures(desk.clone())),
        Duration::from_secs(lease_secs),
    )
    .await?;
    let webhooks = platforms.router();
    let replay_desks = desk_maker(config.clone(), desk.help_centre().cloned());
    let state = AppState {
        desk: desk.clone(),
        intake: intake.clone(),
        keys: keys.clone(),
        store: store.clone(),
        logins: Arc::new(server::logins::LoginGuard::default()),
        limits: Arc::new(server::limits::Limits::new(&config)),
        config: Arc::new(config),
        metrics: metrics_handle,
        stopping: stopping.clone(),
        hub: server::hub::Hub::start(&desk, stopping.clone()),
        started: Instant::now(),
        nlu_first_ms,
        channels: channels.clone(),
        cockpit,
        replay_desks,
    };
    let until = stopping.clone();
    let task = tokio::spawn(async move {
        // Our own accept loop (not `axum::serve`): header-read timeout, connections per
        // address, the peer's `ConnectInfo<SocketAddr>`, a bounded graceful stop.
        let options = server::accept::Options::new(&state.config);
        let app = server::router_with(state, webhooks);
        server::accept::serve(listener, app, options, until).await
    });
    Ok(RunningServer {
        addr,
        desk,
        intake,
        demo_agent,
        demo_agent_new,
        keys,
        store,
        channels,
        platforms,
        stop,
        task,
    })
}

/// Puts every reply a platform refuses for good on its conversation, for the agent.
fn record_failures(desk: Desk) -> FailureHook {
    Arc::new(move |failed: FailedDelivery| {
        let desk = desk.clone();
        Box::pin(async move {
            let m = &failed.message;
            if let Err(e) = desk
                .record_delivery_failure(&m.conversation_id, m.channel, &m.text, &failed.error)
                .await
            {
                tracing::warn!(conversation = %m.conversation_id, error = %e,
                    "could not record a failed delivery on its conversation");
            }
        })
    })
}

/// How long handled inbound message ids are remembered (exactly-once intake).
const INBOUND_IDS_KEPT_DAYS: i64 = 7;

/// Deletes what must not be kept: expired sessions and link codes, old inbound message ids,
/// and (with
/// `engine.retention_days`) closed conversations older than that; at start, then hourly.
async fn spawn_upkeep(
    store: Arc<dyn Store>,
    retention_days: u64,
    mut stopping: watch::Receiver<bool>,
) -> Result<(), StoreError> {
    async fn sweep(store: &dyn Store, retention_days: u64) -> Result<(), StoreError> {
        let now = chrono::Utc::now();
        store.purge_sessions(now).await?;
        store.purge_link_codes(now).await?;
        // ids of handled messages: platforms redeliver within minutes, clients retry within
        // hours; a week is far beyond both
        store
            .purge_inbound(now - chrono::Duration::days(INBOUND_IDS_KEPT_DAYS))
            .await?;
        if retention_days > 0 {
            let before = now - chrono::Duration::days(retention_days as i64);
            let purged = store.purge_closed(before).await?;
            if purged > 0 {
                tracing::info!(
                    purged,
                    retention_days,
                    "closed conversations past retention deleted"
                );
            }
        }
        Ok(())
    }
    sweep(store.as_ref(), retention_days).await?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
                _ = server::until_stopped(&mut stopping) => break,
            }
            if let Err(e) = sweep(store.as_ref(), retention_days).await {
                tracing::warn!(error = %e, "the hourly clean-up of the store failed");
            }
        }
    });
    Ok(())
}
