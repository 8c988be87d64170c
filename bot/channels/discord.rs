//! Discord through serenity: a gateway bot that answers direct messages and, when support
//! channels are configured, messages posted there, opening one thread per customer.
//!
//! A Discord user is one desk identity (`channel_user` = user id). Where their answers go
//! (their DM channel, or their thread) is remembered per user in the store's
//! `discord_routes` tree, so the outbox can deliver after a restart.
//!
//! `channels.discord.api_url` points REST (and, through `GET /gateway`, the gateway) at
//! another server: serenity applies that only with its rate limiter off, so in that mode a
//! 429 reaches the outbox without a `retry_after` and the outbox backs off on its own.

use std::sync::Arc;
use std::time::Duration;

use backoff::backoff::Backoff;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serenity::all::{
    ChannelId, ClientBuilder, ConnectionStage, Context, CreateAllowedMentions, CreateMessage,
    CreateThread, EventHandler, GatewayIntents, Http, HttpBuilder, Message, Ready, ShardManager,
    ShardStageUpdateEvent, UserId,
};
use serenity::http::HttpError;
use tokio::sync::watch;

use super::format::Dialect;
use super::health::ChannelHealth;
use super::outbox::{Courier, DeliveryError, Outbox};
use super::InboundError;
use crate::config::DiscordSettings;
use crate::intake::Intake;
use crate::message::{ChannelKind, Inbound};
use crate::store::{ChannelTree, SledStore};

#[derive(Debug, Clone)]
pub struct DiscordConfig {
    pub token: String,
    /// Base URL replacing `https://discord.com` for REST and the gateway lookup.
    pub api_url: Option<String>,
    /// Guild channels where customers may post; each customer gets a thread there.
    pub support_channels: Vec<u64>,
}

impl DiscordConfig {
    /// From `[channels.discord]`: off (`None`) unless the token is set and not blank.
    pub fn from_settings(settings: &DiscordSettings) -> Option<DiscordConfig> {
        let set = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        Some(DiscordConfig {
            token: set(&settings.token)?,
            api_url: set(&settings.api_url),
            support_channels: settings.support_channels.clone(),
        })
    }

    fn http(&self) -> Http {
        match &self.api_url {
            Some(url) => HttpBuilder::new(&self.token)
                .proxy(url.trim_end_matches('/'))
                .ratelimiter_disabled(true)
                .build(),
            None => HttpBuilder::new(&self.token).build(),
        }
    }

    fn intents(&self) -> GatewayIntents {
        let mut intents = GatewayIntents::DIRECT_MESSAGES;
        if !self.support_channels.is_empty() {
            // Reading what customers write in a guild channel needs the privileged
            // MESSAGE_CONTENT intent (enable it in the developer portal).
            intents |= GatewayIntents::GUILD_MESSAGES | GatewayIntents::MESSAGE_CONTENT;
        }
        intents
    }
}

/// Where a customer's answers go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "channel", rename_all = "snake_case")]
pub enum Route {
    /// Their DM channel with the bot.
    Direct(u64),
    /// Their thread in a support channel.
    Thread(u64),
}

/// The Discord adapter; cheap to clone.
#[derive(Clone)]
pub struct Discord {
    http: Arc<Http>,
    intake: Intake,
    outbox: Outbox,
    store: Arc<SledStore>,
    health: ChannelHealth,
    config: Arc<DiscordConfig>,
    /// "user:{id}" -> Route; "thread:{id}" -> user id
    routes: sled::Tree,
}

impl Discord {
    /// The adapter; routes are kept in `store`'s `discord_routes` tree.
    pub fn new(
        config: DiscordConfig,
        intake: Intake,
        outbox: Outbox,
        health: ChannelHealth,
        store: Arc<SledStore>,
    ) -> Discord {
        health.starting(ChannelKind::Discord);
        Discord {
            http: Arc::new(config.http()),
            intake,
            outbox,
            health,
            routes: store.channel_tree(ChannelTree::DiscordRoutes),
            store,
            config: Arc::new(config),
        }
    }

    /// What the outbox uses to send on Discord.
    pub fn courier(&self) -> Arc<dyn Courier> {
        Arc::new(DiscordCourier {
            http: self.http.clone(),
            routes: self.routes.clone(),
        })
    }

    /// Runs the gateway until `stop` turns true (then closes the session and returns) or the
    /// task is aborted. A refused token or a lost connection is logged, shown in health and
    /// retried with backoff; this never returns an error.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut backoff = backoff::ExponentialBackoff {
            initial_interval: Duration::from_millis(500),
            max_interval: Duration::from_secs(60),
            max_elapsed_time: None,
            ..Default::default()
        };
        let stopped = |stop: &mut watch::Receiver<bool>| {
            let mut stop = stop.clone();
            async move {
                let _ = stop.wait_for(|s| *s).await;
            }
        };
        loop {
            let handler = Gateway {
                discord: self.clone(),
            };
            let built = ClientBuilder::new_with_http(self.config.http(), self.config.intents())
                .event_handler(handler)
                .await;
            let outcome = match built {
                Ok(mut client) => {
                    let manager = client.shard_manager.clone();
                    let _on_abort = StopShards(manager.clone());
                    let ended = tokio::select! {
                        result = client.start() => Some(result),
                        _ = stopped(&mut stop) => None,
                    };
                    match ended {
                        Some(result) => result,
                        None => {
                            manager.shutdown_all().await;
                            return;
                        }
                    }
                }
                Err(e) => Err(e),
            };
            let why = match outcome {
                Ok(()) => "Discord gateway session ended".to_string(),
                Err(e) => describe(&e),
            };
            if self.health.get(ChannelKind::Discord).map(|s| s.state)
                == Some(super::health::ChannelState::Connected)
            {
                backoff.reset();
            }
            let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(60));
            tracing::error!(error = %why, retry_in_s = wait.as_secs_f32(), "Discord unavailable");
            self.health.failing(ChannelKind::Discord, why);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped(&mut stop) => return,
            }
        }
    }

    fn remember(&self, user: u64, route: Route) {
        let key = format!("user:{user}");
        if let Ok(bytes) = serde_json::to_vec(&route) {
            if let Err(e) = self.routes.insert(key, bytes) {
                tracing::error!(error = %e, "cannot store where a Discord customer writes from");
            }
        }
        if let Route::Thread(thread) = route {
            let _ = self
                .routes
                .insert(format!("thread:{thread}"), user.to_string().as_bytes());
        }
        // Made durable by the store's next flush (the message's own, at the latest).
        self.store.note_write();
    }

    fn thread_owner(&self, channel: u64) -> Option<u64> {
        let bytes = self.routes.get(format!("thread:{channel}")).ok()??;
        std::str::from_utf8(&bytes).ok()?.parse().ok()
    }

    fn route_of(&self, user: u64) -> Option<Route> {
        route_of(&self.routes, user)
    }

    /// Decides whether a message is for the desk and where its answers go.
    async fn route_message(&self, msg: &Message) -> Option<Route> {
        let user = msg.author.id.get();
        let channel = msg.channel_id.get();
        if msg.guild_id.is_none() {
            return Some(Route::Direct(channel));
        }
        if let Some(owner) = self.thread_owner(channel) {
            // Staff may talk in a customer's thread too; only the customer goes to the desk.
            return (owner == user).then_some(Route::Thread(channel));
        }
        if !self.config.support_channels.contains(&channel) {
            return None;
        }
        if let Some(Route::Thread(thread)) = self.route_of(user) {
            return Some(Route::Thread(thread));
        }
        let name = format!("Support: {}", msg.author.name);
        let builder = CreateThread::new(name.chars().take(100).collect::<String>());
        match msg
            .channel_id
            .create_thread_from_message(&*self.http, msg.id, builder)
            .await
        {
            Ok(thread) => Some(Route::Thread(thread.id.get())),
            Err(e) => {
                tracing::error!(error = %describe(&e), "cannot open a support thread; answering in the channel");
                Some(Route::Thread(channel))
            }
        }
    }

    async fn on_message(&self, msg: Message) {
        if msg.author.bot || msg.content.trim().is_empty() {
            return;
        }
        let Some(route) = self.route_message(&msg).await else {
            return;
        };
        let user = msg.author.id.get();
        self.remember(user, route);
        let mut metadata = serde_json::Map::new();
        metadata.insert("discord_message_id".into(), msg.id.get().to_string().into());
        metadata.insert(
            "discord_channel_id".into(),
            msg.channel_id.get().to_string().into(),
        );
        metadata.insert("discord_username".into(), msg.author.name.clone().into());
        let inbound = Inbound {
            channel: ChannelKind::Discord,
            channel_user: user.to_string(),
            text: msg.content.trim().to_string(),
            time: chrono::DateTime::from_timestamp(msg.timestamp.unix_timestamp(), 0)
                .unwrap_or_else(chrono::Utc::now),
            metadata,
            profile: None,
        };
        // The gateway does not resend events: wait for the desk rather than drop a message.
        let mut wait = Duration::from_millis(200);
        loop {
            match super::receive(&self.intake, &self.outbox, inbound.clone()).await {
                Ok(_) => return,
                Err(e @ InboundError::Outbox(_)) => {
                    // The command itself was handled; only its answer is lost.
                    tracing::error!(error = %e, "cannot answer a link command");
                    return;
                }
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, "desk could not take a Discord message yet; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Discord message refused by the desk");
                    return;
                }
            }
        }
    }
}

fn route_of(routes: &sled::Tree, user: u64) -> Option<Route> {
    let bytes = routes.get(format!("user:{user}")).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// Stops the shards of a client whose task is dropped (aborted), so no old session keeps
/// receiving events.
struct StopShards(Arc<ShardManager>);

impl Drop for StopShards {
    fn drop(&mut self) {
        let manager = self.0.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { manager.shutdown_all().await });
        }
    }
}

struct Gateway {
    discord: Discord,
}

#[serenity::async_trait]
impl EventHandler for Gateway {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        tracing::info!(bot = %ready.user.name, "Discord connected");
        self.discord.health.connected(ChannelKind::Discord);
    }

    async fn message(&self, _ctx: Context, msg: Message) {
        self.discord.on_message(msg).await;
    }

    async fn shard_stage_update(&self, _ctx: Context, event: ShardStageUpdateEvent) {
        match event.new {
            ConnectionStage::Connected => self.discord.health.connected(ChannelKind::Discord),
            ConnectionStage::Disconnected => self.discord.health.failing(
                ChannelKind::Discord,
                "Discord gateway connection lost; reconnecting",
            ),
            _ => {}
        }
    }
}

/// An operator-facing sentence for a serenity failure.
fn describe(e: &serenity::Error) -> String {
    use serenity::gateway::GatewayError;
    match e {
        serenity::Error::Gateway(GatewayError::InvalidAuthentication) => {
            "Discord refused the bot token (gateway authentication failed): check channels.discord.token (FRONTDESK_DISCORD_TOKEN)".into()
        }
        serenity::Error::Gateway(GatewayError::DisallowedGatewayIntents) => {
            "Discord refused the MESSAGE_CONTENT intent: enable it for the bot in the developer portal, or empty channels.discord.support_channels".into()
        }
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) if r.status_code.as_u16() == 401 => {
            "Discord refused the bot token (401 Unauthorized): check channels.discord.token (FRONTDESK_DISCORD_TOKEN)".into()
        }
        serenity::Error::Http(HttpError::Request(e)) => format!("cannot reach Discord: {e}"),
        other => format!("Discord error: {other}"),
    }
}

/// Sorts a serenity failure into retry-later or give-up.
pub fn classify(e: serenity::Error) -> DeliveryError {
    match &e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => {
            let status = r.status_code.as_u16();
            let detail = format!("Discord {status}: {}", r.error.message);
            match status {
                429 => DeliveryError::RateLimited {
                    retry_after: None,
                    detail,
                },
                401 => DeliveryError::Retryable(describe(&e)),
                s if s >= 500 => DeliveryError::Retryable(detail),
                _ => DeliveryError::Permanent(detail),
            }
        }
        serenity::Error::Http(HttpError::Request(_))
        | serenity::Error::Io(_)
        | serenity::Error::Tungstenite(_) => DeliveryError::Retryable(describe(&e)),
        _ => DeliveryError::Permanent(describe(&e)),
    }
}

struct DiscordCourier {
    http: Arc<Http>,
    routes: sled::Tree,
}

impl Courier for DiscordCourier {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Discord
    }

    fn dialect(&self) -> Dialect {
        Dialect::Discord
    }

    fn send<'a>(
        &'a self,
        recipient: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let user: u64 = recipient.parse().map_err(|_| {
                DeliveryError::Permanent(format!("{recipient:?} is not a Discord user id"))
            })?;
            let channel = match route_of(&self.routes, user) {
                Some(Route::Direct(c)) | Some(Route::Thread(c)) => ChannelId::new(c),
                None => {
                    // Never wrote to us here (a linked identity): open a DM.
                    let dm = UserId::new(user)
                        .create_dm_channel(&*self.http)
                        .await
                        .map_err(classify)?;
                    dm.id
                }
            };
            let message = CreateMessage::new()
                .content(text)
                // Nothing a customer or agent writes may ping anyone.
                .allowed_mentions(CreateAllowedMentions::new());
            channel
                .send_message(&*self.http, message)
                .await
                .map(|_| ())
                .map_err(classify)
        })
    }
}
