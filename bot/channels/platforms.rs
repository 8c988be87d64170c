//! Starts the chat platforms that are configured (Telegram, Discord) beside the desk: the
//! outbox's courier for each platform (and the widget's, always) and each platform's
//! receiving side. Each platform runs in its own tasks, so one that fails (bad
//! token, network down) is retried on its own while the others keep working.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::discord::{Discord, DiscordConfig};
use super::telegram::{Telegram, TelegramConfig, TelegramConfigError};
use crate::config::ChannelsConfig;
use crate::intake::Intake;
use crate::message::ChannelKind;
use crate::outbox::health::ChannelHealth;
use crate::outbox::{FailedDelivery, FailureHook, Outbox, OutboxError};
use crate::store::{while_leader, Store};

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error(transparent)]
    Telegram(#[from] TelegramConfigError),
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
    /// From `[channels]` (file and `FRONTDESK_*` overrides, read by `crate::config`): a
    /// platform whose token is unset or blank stays off.
    pub fn from_config(channels: &ChannelsConfig) -> Result<PlatformsConfig, PlatformError> {
        Ok(PlatformsConfig {
            telegram: TelegramConfig::from_settings(&channels.telegram)?,
            discord: DiscordConfig::from_settings(&channels.discord),
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
    telegram: Option<Telegram>,
    tasks: Vec<JoinHandle<()>>,
    /// Tasks that close their platform session when `stop` turns true.
    graceful: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Platforms {
    /// Opens the outbox in `store` (the desk's store) and starts every configured platform,
    /// handing their customers' messages to `intake`. Messages a platform refuses for good
    /// are logged, kept with the failed deliveries ([`Outbox::failures`]) and given to
    /// `on_failure` (to record them on the conversation for the agent).
    /// On a store other nodes share, the Telegram poller, the Discord gateway and each
    /// courier run on one node at a time: the holder of their lease (`lease`, see
    /// [`crate::store::while_leader`]); the Telegram webhook is served by every node.
    pub async fn start(
        intake: Intake,
        store: Arc<dyn Store>,
        config: PlatformsConfig,
        health: ChannelHealth,
        on_failure: Option<FailureHook>,
        lease: Duration,
    ) -> Result<Platforms, PlatformError> {
        let outbox = Outbox::open(store.clone(), health.clone()).await?;
        let hook = on_failure;
        let on_failure: FailureHook = Arc::new(move |failed: FailedDelivery| {
            tracing::warn!(conversation = %failed.message.conversation_id,
                channel = %failed.message.channel, error = %failed.error,
                "customer can no longer be reached on this channel");
            match &hook {
                Some(hook) => hook(failed),
                None => Box::pin(async {}),
            }
        });
        let mut started = Started::default();
        let (stop, stopping) = watch::channel(false);
        let mut telegram_handle = None;
        // The widget is always on: its courier runs whatever platforms are configured.
        let widget = super::widget::WidgetCourier::courier(intake.desk().clone());
        started.keep(start_courier(&store, &outbox, widget, &on_failure, lease, &stopping).await?);
        if let Some(tg) = config.telegram {
            let telegram = Telegram::new(tg, intake.clone(), health.clone());
            let courier = telegram.courier();
            started.keep(
                start_courier(&store, &outbox, courier, &on_failure, lease, &stopping).await?,
            );
            let runner = telegram.clone();
            match store.shared() && !telegram.webhook_mode() {
                true => started.graceful.push(tokio::spawn(while_leader(
                    store.clone(),
                    "telegram:poller".into(),
                    lease,
                    move || runner.clone().run(),
                    stopping.clone(),
                ))),
                false => started.tasks.push(tokio::spawn(runner.run())),
            }
            telegram_handle = Some(telegram);
        }
        if let Some(dc) = config.discord {
            let discord = Discord::new(dc, intake.clone(), health.clone(), store.clone()).await;
            let courier = discord.courier();
            started.keep(
                start_courier(&store, &outbox, courier, &on_failure, lease, &stopping).await?,
            );
            match store.shared() {
                false => started
                    .graceful
                    .push(tokio::spawn(discord.run(stopping.clone()))),
                true => {
                    let gateway_stop = stopping.clone();
                    started.graceful.push(tokio::spawn(while_leader(
                        store.clone(),
                        "discord:gateway".into(),
                        lease,
                        move || discord.clone().run(gateway_stop.clone()),
                        stopping.clone(),
                    )));
                }
            }
        }
        Ok(Platforms {
            outbox,
            health,
            telegram: telegram_handle,
            tasks: started.tasks,
            graceful: started.graceful,
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

/// The tasks started so far: those aborted at shutdown, and those that close their
/// platform session or give their lease back when `stop` turns true (awaited).
#[derive(Default)]
struct Started {
    tasks: Vec<JoinHandle<()>>,
    graceful: Vec<JoinHandle<()>>,
}

impl Started {
    /// Keeps a courier's task with the others of its kind ([`start_courier`]'s answer).
    fn keep(&mut self, (task, leader): (JoinHandle<()>, bool)) {
        match leader {
            true => self.graceful.push(task),
            false => self.tasks.push(task),
        }
    }
}

/// A platform's courier: on a store others share, run by the node that holds its lease
/// (`courier:CHANNEL`: each outbox record is sent by one node, in order per chat); the task,
/// and whether it gives its lease back at shutdown (then it is awaited, not aborted).
async fn start_courier(
    store: &Arc<dyn Store>,
    outbox: &Outbox,
    courier: Arc<dyn crate::outbox::Courier>,
    on_failure: &FailureHook,
    lease: Duration,
    stopping: &watch::Receiver<bool>,
) -> Result<(JoinHandle<()>, bool), PlatformError> {
    Ok(match store.shared() {
        false => (
            outbox
                .spawn_courier(courier, Some(on_failure.clone()))
                .await?,
            false,
        ),
        true => (
            courier_as_leader(store, outbox, courier, on_failure, lease, stopping),
            true,
        ),
    })
}

/// One channel's courier, run by the node that holds its lease.
fn courier_as_leader(
    store: &Arc<dyn Store>,
    outbox: &Outbox,
    courier: Arc<dyn crate::outbox::Courier>,
    on_failure: &FailureHook,
    lease: Duration,
    stopping: &watch::Receiver<bool>,
) -> JoinHandle<()> {
    let (outbox, hook) = (outbox.clone(), on_failure.clone());
    let name = format!("courier:{}", courier.kind());
    tokio::spawn(while_leader(
        store.clone(),
        name,
        lease,
        move || {
            outbox
                .clone()
                .deliver_all(courier.clone(), Some(hook.clone()))
        },
        stopping.clone(),
    ))
}

impl Drop for Platforms {
    fn drop(&mut self) {
        for task in self.tasks.iter().chain(&self.graceful) {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DiscordSettings, TelegramSettings};

    #[test]
    fn a_platform_is_on_only_with_a_token() {
        let off = PlatformsConfig::from_config(&ChannelsConfig::default()).unwrap();
        assert!(off.is_empty());
        let blank = ChannelsConfig {
            telegram: TelegramSettings {
                token: Some("  ".into()),
                ..TelegramSettings::default()
            },
            discord: DiscordSettings {
                token: Some("".into()),
                support_channels: vec![7],
                ..DiscordSettings::default()
            },
        };
        assert!(PlatformsConfig::from_config(&blank).unwrap().is_empty());

        let on = ChannelsConfig {
            telegram: TelegramSettings {
                token: Some(" 123:abc ".into()),
                api_url: Some("http://127.0.0.1:8081/".into()),
                ..TelegramSettings::default()
            },
            discord: DiscordSettings {
                token: Some("discord-token".into()),
                api_url: Some("http://127.0.0.1:9000".into()),
                support_channels: vec![7, 8],
            },
        };
        let config = PlatformsConfig::from_config(&on).unwrap();
        let tg = config.telegram.unwrap();
        assert_eq!(tg.token, "123:abc");
        assert_eq!(tg.api_url.unwrap().as_str(), "http://127.0.0.1:8081/");
        assert!(tg.webhook.is_none(), "long polling without a webhook URL");
        let dc = config.discord.unwrap();
        assert_eq!(dc.token, "discord-token");
        assert_eq!(dc.api_url.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(dc.support_channels, [7, 8]);
    }

    #[test]
    fn the_webhook_secret_is_kept_or_generated_and_checked() {
        let mut channels = ChannelsConfig {
            telegram: TelegramSettings {
                token: Some("123:abc".into()),
                webhook_url: Some("https://bot.example.com/channels/telegram/webhook".into()),
                webhook_secret: Some("given_secret-1".into()),
                ..TelegramSettings::default()
            },
            ..ChannelsConfig::default()
        };
        let webhook = |c: &ChannelsConfig| {
            PlatformsConfig::from_config(c)
                .unwrap()
                .telegram
                .unwrap()
                .webhook
                .unwrap()
        };
        assert_eq!(webhook(&channels).secret, "given_secret-1");

        channels.telegram.webhook_secret = None;
        let generated = webhook(&channels).secret;
        assert!(generated.len() >= 16 && generated.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(
            generated,
            webhook(&channels).secret,
            "a fresh secret each start"
        );

        channels.telegram.webhook_secret = Some("no spaces allowed".into());
        let err = PlatformsConfig::from_config(&channels).unwrap_err();
        assert!(
            err.to_string().contains("channels.telegram.webhook_secret"),
            "{err}"
        );

        channels.telegram.webhook_secret = None;
        channels.telegram.webhook_url = Some("not a url".into());
        let err = PlatformsConfig::from_config(&channels).unwrap_err();
        assert!(
            err.to_string().contains("channels.telegram.webhook_url"),
            "{err}"
        );
        assert!(
            std::error::Error::source(&err).is_some(),
            "keeps the parse error"
        );
    }
}
