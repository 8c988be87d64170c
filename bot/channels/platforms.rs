//! Starts the chat platforms that are configured (Telegram, Discord) beside the desk: the
//! outbox and one courier per platform, the relay from the desk's events, and each
//! platform's receiving side. Each platform runs in its own tasks, so one that fails (bad
//! token, network down) is retried on its own while the others keep working.

use std::path::Path;
use std::sync::Arc;

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::discord::{Discord, DiscordConfig, DiscordConfigError};
use super::health::ChannelHealth;
use super::identity::Linker;
use super::outbox::{FailedDelivery, FailureHook, Outbox, OutboxError};
use super::relay;
use super::telegram::{Telegram, TelegramConfig, TelegramConfigError};
use crate::desk::Desk;
use crate::message::ChannelKind;

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error(transparent)]
    Telegram(#[from] TelegramConfigError),
    #[error(transparent)]
    Discord(#[from] DiscordConfigError),
    #[error("cannot open the channel outbox in {path}: {source}")]
    Open { path: String, source: sled::Error },
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// Which platforms to run.
#[derive(Debug, Clone, Default)]
pub struct PlatformsConfig {
    pub telegram: Option<TelegramConfig>,
    pub discord: Option<DiscordConfig>,
}

impl PlatformsConfig {
    /// From the `FRONTDESK_TELEGRAM_*` and `FRONTDESK_DISCORD_*` variables; a platform
    /// whose token is unset stays off.
    pub fn from_env() -> Result<PlatformsConfig, PlatformError> {
        Ok(PlatformsConfig {
            telegram: TelegramConfig::from_env()?,
            discord: DiscordConfig::from_env()?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.telegram.is_none() && self.discord.is_none()
    }
}

/// The running platforms. Dropping it stops their tasks; [`Platforms::shutdown`] also
/// waits for them.
pub struct Platforms {
    outbox: Outbox,
    health: ChannelHealth,
    linker: Linker,
    telegram: Option<Telegram>,
    tasks: Vec<JoinHandle<()>>,
    /// Tasks that close their platform session when `stop` turns true.
    graceful: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Platforms {
    /// Opens the outbox in `data_dir/channels` and starts every configured platform.
    /// Messages a platform refuses for good are logged and kept in the outbox's `failed`
    /// tree ([`Outbox::failures`]).
    pub async fn start(
        desk: &Desk,
        data_dir: &Path,
        config: PlatformsConfig,
        health: ChannelHealth,
    ) -> Result<Platforms, PlatformError> {
        Self::start_with_failure_hook(desk, data_dir, config, health, None).await
    }

    /// Like [`Platforms::start`], and calls `hook` for every message a platform refuses for
    /// good (to record it on the conversation for the agent).
    pub async fn start_with_failure_hook(
        desk: &Desk,
        data_dir: &Path,
        config: PlatformsConfig,
        health: ChannelHealth,
        hook: Option<FailureHook>,
    ) -> Result<Platforms, PlatformError> {
        let path = data_dir.join("channels");
        let db = sled::open(&path).map_err(|source| PlatformError::Open {
            path: path.display().to_string(),
            source,
        })?;
        let outbox = Outbox::open(&db, health.clone())?;
        let linker = Linker::open(&db, desk.clone(), outbox.clone())
            .map_err(|e| PlatformError::Outbox(OutboxError::Storage(e)))?;
        let on_failure: FailureHook = Arc::new(move |failed: FailedDelivery| {
            tracing::warn!(conversation = %failed.message.conversation_id,
                channel = %failed.message.channel, error = %failed.error,
                "customer can no longer be reached on this channel");
            match &hook {
                Some(hook) => hook(failed),
                None => Box::pin(async {}),
            }
        });
        let mut tasks = Vec::new();
        let mut graceful = Vec::new();
        let (stop, stopping) = watch::channel(false);
        let mut kinds = Vec::new();
        let mut telegram_handle = None;
        if let Some(tg) = config.telegram {
            let telegram = Telegram::new(tg, desk.clone(), linker.clone(), health.clone());
            tasks.push(outbox.spawn_courier(telegram.courier(), Some(on_failure.clone()))?);
            tasks.push(tokio::spawn(telegram.clone().run()));
            kinds.push(ChannelKind::Telegram);
            telegram_handle = Some(telegram);
        }
        if let Some(dc) = config.discord {
            let discord = Discord::new(dc, desk.clone(), linker.clone(), health.clone(), &db)
                .map_err(|e| PlatformError::Outbox(OutboxError::Storage(e)))?;
            tasks.push(outbox.spawn_courier(discord.courier(), Some(on_failure.clone()))?);
            graceful.push(tokio::spawn(discord.run(stopping.clone())));
            kinds.push(ChannelKind::Discord);
        }
        if !kinds.is_empty() {
            tasks.push(relay::spawn(desk.clone(), outbox.clone(), kinds));
        }
        Ok(Platforms {
            outbox,
            health,
            linker,
            telegram: telegram_handle,
            tasks,
            graceful,
            stop,
        })
    }

    /// Routes the server must serve: the Telegram webhook in webhook mode, nothing else.
    pub fn router(&self) -> axum::Router {
        match &self.telegram {
            Some(t) if t.webhook_mode() => t.webhook_router(),
            _ => axum::Router::new(),
        }
    }

    pub fn health(&self) -> &ChannelHealth {
        &self.health
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Link codes, for channels outside this module (the web widget) to answer `/link`.
    pub fn linker(&self) -> &Linker {
        &self.linker
    }

    /// Stops every platform task and waits until they are gone (the outbox keeps what was
    /// not delivered for the next start).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in self.graceful.drain(..) {
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                tracing::warn!("a chat platform did not close its session within 10 s");
            }
        }
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        for kind in [ChannelKind::Telegram, ChannelKind::Discord] {
            if self.health.get(kind).is_some() {
                self.health.stopped(kind);
            }
        }
    }
}

impl Drop for Platforms {
    fn drop(&mut self) {
        for task in self.tasks.iter().chain(&self.graceful) {
            task.abort();
        }
    }
}
