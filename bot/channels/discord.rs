//! Discord through serenity: a gateway bot that answers direct messages and, when support
//! channels are configured, messages posted there, opening one thread per customer.
//!
//! A Discord user is one desk identity (`channel_user` = user id). Where their answers go
//! (their DM channel, or their thread) is remembered per user in the store's channel state
//! ([`Routes`]), so the outbox can deliver after a restart, from any node.
//!
//! A support channel itself is never a route: when a thread cannot be opened there, the
//! customer is answered in a DM instead, and when no DM can be opened either, their message
//! still reaches the desk without a route, so the outbox's own DM attempt fails and the
//! failure is recorded on the conversation for the agents. Routes to a support channel
//! (stored by older versions when a thread could not be opened) are removed at start.
//!
//! Catch-up: Discord's gateway never sends an event again once a session is gone, so a
//! message dispatched to a process that died before the desk stored it would be lost. On
//! every READY (a new session) and RESUME the adapter reads the recent history of the
//! channels where customers talk to it (the DM and thread channels of `discord_routes`,
//! the support channels) over REST and feeds what the desk has not seen, oldest first,
//! through the same path as live messages (same routing rules, links and exactly-once: the
//! Discord message id is the desk's key, so a message handled already is never run again).
//! Per channel, `seen:{channel}` in the same tree keeps the newest message id below which
//! everything was handled; it is written only after the desk stored the message, so a
//! catch-up reads from there (a few seconds earlier, for handlers still starting). Bounds:
//! channels active in the last [`CATCH_UP_ACTIVE_DAYS`] days (at most
//! [`CATCH_UP_MAX_CHANNELS`]), messages younger than [`CATCH_UP_MAX_AGE`], at most
//! [`CATCH_UP_MAX_PER_CHANNEL`] per channel.
//!
//! `channels.discord.api_url` points REST (and, through `GET /gateway`, the gateway) at
//! another server: serenity applies that only with its rate limiter off, so in that mode a
//! 429 reaches the outbox without a `retry_after` and the outbox backs off on its own.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backoff::backoff::Backoff;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serenity::all::{
    ChannelId, ClientBuilder, ConnectionStage, Context, CreateAllowedMentions, CreateMessage,
    CreateThread, EventHandler, GatewayIntents, GetMessages, Http, HttpBuilder, Message, MessageId,
    MessageType, Ready, ResumedEvent, ShardManager, ShardStageUpdateEvent, UserId,
};
use serenity::http::HttpError;
use tokio::sync::watch;

use crate::config::DiscordSettings;
use crate::intake::Intake;
use crate::message::{ChannelKind, Identity, Inbound};
use crate::outbox::format::Dialect;
use crate::outbox::health::ChannelHealth;
use crate::outbox::{Courier, DeliveryError};
use crate::store::{Store, StoreError};

#[path = "discord_buttons.rs"]
mod buttons;

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
    health: ChannelHealth,
    config: Arc<DiscordConfig>,
    routes: Routes,
    /// Messages being handled in this process, per channel (see [`Discord::claim`]).
    in_flight: Arc<Mutex<HashMap<u64, BTreeSet<u64>>>>,
    /// One catch-up at a time (a READY and a RESUME close together wait for each other).
    catching_up: Arc<tokio::sync::Mutex<()>>,
    /// The channels the running catch-up has still to read: their `seen` marks stay where
    /// they are until it has (see [`Discord::mark_seen`]). `None`: every channel, until the
    /// first catch-up of this process has listed them (live messages may come first).
    not_caught_up: Arc<Mutex<Option<HashSet<u64>>>>,
}

/// Discord's state in the store ([`crate::store::Deliveries`]' channel state):
/// "user:{id}" -> Route; "thread:{id}" -> user id; "seen:{channel}" -> [`Seen`].
#[derive(Clone)]
pub struct Routes(Arc<dyn Store>);

impl Routes {
    pub fn new(store: Arc<dyn Store>) -> Routes {
        Routes(store)
    }

    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.0.channel_state(ChannelKind::Discord, key).await
    }

    async fn set(&self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        self.0
            .set_channel_state(ChannelKind::Discord, key, value)
            .await
    }

    async fn entries(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.0.channel_states(ChannelKind::Discord).await
    }
}

/// How far back a catch-up feeds messages: older ones are not answered any more.
pub const CATCH_UP_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Channels whose last handled message is older than this are not read at catch-up.
pub const CATCH_UP_ACTIVE_DAYS: u64 = 7;
/// At most this many channels are read per catch-up (support channels first, then the most
/// recently active).
pub const CATCH_UP_MAX_CHANNELS: usize = 500;
/// At most this many messages are read per channel and catch-up.
pub const CATCH_UP_MAX_PER_CHANNEL: usize = 200;
/// Discord's largest page of channel messages.
const CATCH_UP_PAGE: u8 = 100;
/// A catch-up reads from this long before a channel's `seen` mark: a message dispatched just
/// before the one that set the mark may not have reached its handler yet at a crash.
const SEEN_MARGIN: Duration = Duration::from_secs(5);
/// 2015-01-01T00:00:00Z, the origin of Discord's snowflake timestamps, in Unix ms.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// `seen:{channel}`: every message of the channel up to `last` was handled (or needs none).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Seen {
    /// A message id (a decimal string in JSON, as Discord writes ids).
    #[serde(with = "id_string")]
    last: u64,
    /// A guild channel (support channel or thread), as opposed to a DM channel.
    guild: bool,
    /// Messages up to this id are never fed (a support channel's history from before the
    /// bot first looked at it); 0: none.
    #[serde(default, with = "id_string")]
    floor: u64,
}

mod id_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&id.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The Unix time (ms) in a Discord snowflake.
fn snowflake_ms(id: u64) -> u64 {
    (id >> 22) + DISCORD_EPOCH_MS
}

/// What became of a message handed to the adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// Not for the desk (the bot's own, empty, staff in a customer's thread...).
    Ignored,
    /// The desk took it (or had taken it already: its first outcome came back).
    Desk,
    /// The desk refused it as such (blocked customer, invalid text).
    Refused,
    /// Being handled by another task of this process already.
    Busy,
}

/// A message being handled; [`Claim::done`] after the desk has it, or dropped (the task
/// was aborted) to leave it unhandled.
struct Claim<'a> {
    discord: &'a Discord,
    channel: u64,
    id: u64,
    guild: bool,
}

impl Claim<'_> {
    /// The message is handled: the channel's `seen` mark moves up to it unless an older one
    /// of the channel is still being handled here.
    async fn done(self) {
        if self.discord.watched(self.channel, self.guild).await {
            self.discord
                .mark_seen(self.channel, self.id, self.guild, Some(self.id), 0)
                .await;
        }
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut in_flight = self
            .discord
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(ids) = in_flight.get_mut(&self.channel) {
            ids.remove(&self.id);
            if ids.is_empty() {
                in_flight.remove(&self.channel);
            }
        }
    }
}

impl Discord {
    /// The adapter; routes are kept in `store` (those that point at a support channel are
    /// removed first: see [`repair_routes`]).
    pub async fn new(
        config: DiscordConfig,
        intake: Intake,
        health: ChannelHealth,
        store: Arc<dyn Store>,
    ) -> Discord {
        health.starting(ChannelKind::Discord);
        let routes = Routes::new(store);
        match repair_routes(&routes, &config.support_channels).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(
                    removed = n,
                    "removed Discord routes that pointed at a public support channel; those customers get a thread or a DM with their next message"
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot check the stored Discord routes; routes to a support channel are ignored")
            }
        }
        Discord {
            http: Arc::new(config.http()),
            intake,
            health,
            routes,
            config: Arc::new(config),
            in_flight: Arc::default(),
            catching_up: Arc::default(),
            not_caught_up: Arc::default(),
        }
    }

    /// What the outbox uses to send on Discord.
    pub fn courier(&self) -> Arc<dyn Courier> {
        Arc::new(DiscordCourier {
            http: self.http.clone(),
            routes: self.routes.clone(),
            config: self.config.clone(),
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
                == Some(crate::outbox::health::ChannelState::Connected)
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

    async fn remember(&self, user: u64, route: Route) {
        if self.config.is_public(route.channel()) {
            // Cannot happen (`route_message` never routes there); refuse rather than answer
            // a customer in public.
            tracing::error!(
                user,
                "refused to route a Discord customer to a support channel"
            );
            return;
        }
        let key = format!("user:{user}");
        if let Ok(text) = serde_json::to_string(&route) {
            if let Err(e) = self.routes.set(&key, Some(&text)).await {
                tracing::error!(error = %e, "cannot store where a Discord customer writes from");
            }
        }
        if let Route::Thread(thread) = route {
            let _ = self
                .routes
                .set(&format!("thread:{thread}"), Some(&user.to_string()))
                .await;
        }
        // Made durable by the store's next flush (the message's own, at the latest).
    }

    async fn thread_owner(&self, channel: u64) -> Option<u64> {
        if self.config.is_public(channel) {
            return None;
        }
        let text = self.routes.get(&format!("thread:{channel}")).await.ok()??;
        text.parse().ok()
    }

    async fn route_of(&self, user: u64) -> Option<Route> {
        route_of(&self.routes, &self.config, user).await
    }

    /// Decides whether a message is for the desk and where its answers go.
    /// `guild`: the message was written in a guild channel (support channel or thread), not
    /// in a DM. (The gateway says so with `guild_id`; REST history does not carry it.)
    async fn route_message(&self, msg: &Message, guild: bool) -> Routing {
        let user = msg.author.id.get();
        let channel = msg.channel_id.get();
        if !guild {
            return Routing::Desk(Some(Route::Direct(channel)));
        }
        if !self.config.is_public(channel) {
            return match self.thread_owner(channel).await {
                // Staff may talk in a customer's thread too; only the customer goes to the desk.
                Some(owner) if owner == user => Routing::Desk(Some(Route::Thread(channel))),
                _ => Routing::Ignore,
            };
        }
        if let Some(Route::Thread(thread)) = self.route_of(user).await {
            return Routing::Desk(Some(Route::Thread(thread)));
        }
        let name = format!("Support: {}", msg.author.name);
        let builder = CreateThread::new(name.chars().take(100).collect::<String>());
        let thread_error = match msg
            .channel_id
            .create_thread_from_message(&*self.http, msg.id, builder)
            .await
        {
            Ok(thread) => return Routing::Desk(Some(Route::Thread(thread.id.get()))),
            Err(e) => describe(&e),
        };
        // Never the support channel itself: that would answer this customer in public (and
        // make everyone else there look like staff in their thread).
        match UserId::new(user).create_dm_channel(&*self.http).await {
            Ok(dm) => {
                tracing::warn!(user, channel, error = %thread_error,
                    "cannot open a support thread; answering the customer in a DM");
                Routing::Desk(Some(Route::Direct(dm.id.get())))
            }
            Err(e) => {
                // The desk still takes the message; its answers fail in the outbox (which
                // tries a DM again) and are recorded on the conversation for the agents.
                tracing::error!(user, channel, thread_error = %thread_error, dm_error = %describe(&e),
                    "cannot open a support thread nor a DM: this customer cannot be answered on Discord");
                Routing::Desk(None)
            }
        }
    }

    /// A message from the gateway.
    async fn on_message(&self, msg: Message) {
        let guild = msg.guild_id.is_some();
        self.take(msg, guild).await;
    }

    /// Hands a message (live or from history) to the desk, once per process at a time;
    /// afterwards the channel's `seen` mark covers it.
    async fn take(&self, msg: Message, guild: bool) -> Taken {
        let Some(claim) = self.claim(msg.channel_id.get(), msg.id.get(), guild) else {
            // The gateway and a catch-up both have it: the first one handles it.
            return Taken::Busy;
        };
        let taken = self.handle(&msg, guild).await;
        claim.done().await;
        taken
    }

    /// Whether a catch-up reads `channel`: a DM, a support channel or a customer's thread
    /// (not the other channels of the guild, whose messages the gateway sends too).
    async fn watched(&self, channel: u64, guild: bool) -> bool {
        !guild || self.config.is_public(channel) || self.thread_owner(channel).await.is_some()
    }

    /// Marks message `id` of `channel` as being handled; `None` if it already is.
    fn claim(&self, channel: u64, id: u64, guild: bool) -> Option<Claim<'_>> {
        let fresh = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            in_flight.entry(channel).or_default().insert(id)
        };
        // (Built only when taken: dropping a claim releases the id.)
        fresh.then(|| Claim {
            discord: self,
            channel,
            id,
            guild,
        })
    }

    /// The running catch-up is done with `channel`: its mark may move again.
    fn caught_up(&self, channel: u64) {
        if let Some(waiting) = self
            .not_caught_up
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            waiting.remove(&channel);
        }
    }

    /// Moves `channel`'s `seen` mark up to `id` (never down), unless the running catch-up
    /// has still to read the channel, or unless a message of the channel
    /// up to `id` is still being handled here (`own`: the caller's own, not counted).
    /// `floor`: see [`Seen::floor`] (kept, never lowered).
    async fn mark_seen(&self, channel: u64, id: u64, guild: bool, own: Option<u64>, floor: u64) {
        let waiting = self
            .not_caught_up
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_none_or(|waiting| waiting.contains(&channel));
        if waiting {
            return;
        }
        {
            let in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            let older_busy = in_flight
                .get(&channel)
                .is_some_and(|ids| ids.range(..=id).any(|busy| Some(*busy) != own));
            if older_busy {
                return;
            }
        }
        let key = format!("seen:{channel}");
        let merge = move |old: Option<&str>| {
            let old = old.and_then(|b| serde_json::from_str::<Seen>(b).ok());
            let floor = old.map_or(floor, |old| old.floor.max(floor));
            match old {
                Some(old) if old.last >= id && old.floor >= floor => {
                    serde_json::to_string(&old).ok()
                }
                _ => {
                    let last = old.map_or(id, |old| old.last.max(id));
                    serde_json::to_string(&Seen { last, guild, floor }).ok()
                }
            }
        };
        // Durable with the store's next flush; until then a catch-up reads a little more.
        if let Err(e) = self
            .routes
            .0
            .update_channel_state(ChannelKind::Discord, &key, &merge)
            .await
        {
            tracing::warn!(error = %e, "cannot note the last Discord message handled");
        }
    }

    async fn handle(&self, msg: &Message, guild: bool) -> Taken {
        if msg.author.bot || msg.content.trim().is_empty() {
            return Taken::Ignored;
        }
        let Routing::Desk(route) = self.route_message(msg, guild).await else {
            return Taken::Ignored;
        };
        let user = msg.author.id.get();
        if let Some(route) = route {
            self.remember(user, route).await;
        }
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
            // a message id is unique on Discord: a redelivered event is handled once
            message_id: Some(msg.id.get().to_string()),
            merged_ids: Vec::new(),
            origin: None,
        };
        // The gateway does not resend events: wait for the desk rather than drop a message.
        let mut wait = Duration::from_millis(200);
        loop {
            match super::receive(&self.intake, inbound.clone()).await {
                Ok(_) => return Taken::Desk,
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, "desk could not take a Discord message yet; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Discord message refused by the desk");
                    return Taken::Refused;
                }
            }
        }
    }

    /// Reads the recent history of the channels where customers talk to the bot and feeds
    /// what the desk has not seen (see the module's documentation). Failures are logged;
    /// a channel that cannot be read is tried again at the next catch-up.
    async fn catch_up(&self, why: &'static str) {
        let _one = self.catching_up.lock().await;
        let started = std::time::Instant::now();
        let channels = match self.catch_up_channels().await {
            Ok(channels) => channels,
            Err(e) => {
                tracing::error!(error = %e, "cannot list the Discord channels to catch up on; messages missed while the bot was away stay unanswered");
                return;
            }
        };
        // Until its history is read, a channel's live messages do not move its mark: were
        // this process to die before the catch-up reached it, the next catch-up would start
        // past the messages this one was to hand over (found by the two-node kill campaign).
        *self.not_caught_up.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(channels.iter().map(|(c, _)| *c).collect());
        let (mut recovered, mut refused, mut failed) = (0usize, 0usize, 0usize);
        for (channel, seen) in &channels {
            let result = self.catch_up_channel(*channel, *seen).await;
            self.caught_up(*channel);
            match result {
                Ok((taken, not_taken)) => {
                    recovered += taken;
                    refused += not_taken;
                }
                Err(e) => {
                    failed += 1;
                    tracing::warn!(channel, error = %describe(&e),
                        "cannot read a Discord channel's history; it is read again at the next catch-up");
                }
            }
        }
        let ms = started.elapsed().as_millis() as u64;
        if recovered > 0 || refused > 0 || failed > 0 {
            tracing::info!(
                after = why,
                channels = channels.len(),
                recovered,
                refused,
                failed,
                ms,
                "Discord catch-up: messages from channel history the desk had not stored, handed to it"
            );
        } else {
            tracing::debug!(
                after = why,
                channels = channels.len(),
                ms,
                "Discord catch-up: nothing missed"
            );
        }
    }

    /// The channels to read, with their `seen` marks: the support channels, then the DM and
    /// thread channels of the routes and marks, most recently active first. Marks of
    /// channels no route or support channel names any more and inactive for
    /// [`CATCH_UP_ACTIVE_DAYS`] are removed.
    async fn catch_up_channels(&self) -> Result<Vec<(u64, Place)>, StoreError> {
        let mut seen: HashMap<u64, Seen> = HashMap::new();
        let mut routed: HashMap<u64, bool> = HashMap::new();
        for (key, value) in self.routes.entries().await? {
            let key = key.as_str();
            if let Some(channel) = key.strip_prefix("seen:").and_then(|c| c.parse().ok()) {
                if let Ok(mark) = serde_json::from_str::<Seen>(&value) {
                    seen.insert(channel, mark);
                }
            } else if let Some(thread) = key.strip_prefix("thread:").and_then(|c| c.parse().ok()) {
                routed.insert(thread, true);
            } else if key.starts_with("user:") {
                match serde_json::from_str::<Route>(&value) {
                    Ok(Route::Direct(c)) => {
                        routed.insert(c, false);
                    }
                    Ok(Route::Thread(c)) => {
                        routed.insert(c, true);
                    }
                    Err(_) => {}
                }
            }
        }
        let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
        let active_ms = CATCH_UP_ACTIVE_DAYS * 24 * 3600 * 1000;
        let active = |mark: &Seen| now_ms.saturating_sub(snowflake_ms(mark.last)) <= active_ms;
        let mut out: Vec<(u64, Place)> = Vec::new();
        for channel in &self.config.support_channels {
            out.push((
                *channel,
                Place {
                    guild: true,
                    seen: seen.get(channel).map(|m| m.last),
                    floor: seen.get(channel).map_or(0, |m| m.floor),
                },
            ));
        }
        let mut others: Vec<(u64, Place)> = Vec::new();
        let mut stale = Vec::new();
        for (channel, mark) in &seen {
            if self.config.is_public(*channel) {
                continue;
            }
            if !active(mark) || (mark.guild && !routed.contains_key(channel)) {
                // (A thread whose customer was erased, or that is no route any more.)
                if !routed.contains_key(channel) {
                    stale.push(*channel);
                }
                continue;
            }
            others.push((
                *channel,
                Place {
                    guild: mark.guild,
                    seen: Some(mark.last),
                    floor: mark.floor,
                },
            ));
        }
        for (channel, guild) in &routed {
            // A route with no mark yet (stored by an older version, or its first message
            // still on its way when the process stopped): read its latest page.
            if !seen.contains_key(channel) && !self.config.is_public(*channel) {
                others.push((
                    *channel,
                    Place {
                        guild: *guild,
                        seen: None,
                        floor: 0,
                    },
                ));
            }
        }
        // Most recently active first; channels with no mark last.
        others.sort_by_key(|(_, place)| std::cmp::Reverse(place.seen.unwrap_or(0)));
        let room = CATCH_UP_MAX_CHANNELS.saturating_sub(out.len());
        if others.len() > room {
            tracing::warn!(
                channels = others.len(),
                read = room,
                "more Discord channels than one catch-up reads; the least recently active are skipped"
            );
            others.truncate(room);
        }
        out.extend(others);
        for channel in stale {
            let _ = self.routes.set(&format!("seen:{channel}"), None).await;
        }
        Ok(out)
    }

    /// Reads one channel's recent history and feeds what the desk has not seen, oldest
    /// first. Returns how many messages the desk took and refused.
    async fn catch_up_channel(
        &self,
        channel: u64,
        place: Place,
    ) -> Result<(usize, usize), serenity::Error> {
        let id = ChannelId::new(channel);
        let mut messages: Vec<Message> = Vec::new();
        match place.seen {
            Some(last) => {
                // Discord answers the oldest `limit` messages after `after`, newest first.
                let margin = (SEEN_MARGIN.as_millis() as u64) << 22;
                let mut after = last.saturating_sub(margin).max(1);
                loop {
                    let query = GetMessages::new()
                        .after(MessageId::new(after))
                        .limit(CATCH_UP_PAGE);
                    let page = read_history(&self.http, id, query).await?;
                    let full = page.len() >= usize::from(CATCH_UP_PAGE);
                    let newest = page.iter().map(|m| m.id.get()).max();
                    messages.extend(page);
                    match newest {
                        Some(newest) if full && messages.len() < CATCH_UP_MAX_PER_CHANNEL => {
                            after = newest
                        }
                        _ => break,
                    }
                }
            }
            None if self.config.is_public(channel) => {
                // A support channel seen for the first time (just configured): what people
                // wrote there before is not answered now; from here on nothing is missed.
                let query = GetMessages::new().limit(1);
                let newest = read_history(&self.http, id, query).await?;
                if let Some(newest) = newest.iter().map(|m| m.id.get()).max() {
                    tracing::info!(
                        channel,
                        "first look at a Discord support channel: earlier messages there are not answered"
                    );
                    self.caught_up(channel);
                    self.mark_seen(channel, newest, true, None, newest).await;
                }
                return Ok((0, 0));
            }
            None => {
                // A customer's channel with no mark (stored by an older version, or its
                // first message still on its way when the process stopped): the latest
                // page, newest first.
                let query = GetMessages::new().limit(CATCH_UP_PAGE);
                messages = read_history(&self.http, id, query).await?;
            }
        }
        messages.sort_by_key(|m| m.id.get());
        messages.dedup_by_key(|m| m.id.get());
        messages.truncate(CATCH_UP_MAX_PER_CHANNEL);
        let newest = messages.last().map(|m| m.id.get());
        let oldest_wanted = chrono::Utc::now().timestamp() - CATCH_UP_MAX_AGE.as_secs() as i64;
        // Every message to hand over is claimed before the first is handled: a live message
        // of the channel handled meanwhile then cannot move the channel's `seen` mark past
        // one still waiting here (the two-node kill campaign lost such messages: a process
        // killed during a long catch-up left them below a mark the next catch-up read from).
        // One a live handler claimed already is that handler's.
        let mut claimed = Vec::new();
        for msg in messages {
            if msg.id.get() <= place.floor || !self.missed(&msg, oldest_wanted).await {
                continue;
            }
            if let Some(claim) = self.claim(channel, msg.id.get(), place.guild) {
                claimed.push((claim, msg));
            }
        }
        let (mut taken, mut refused) = (0, 0);
        for (claim, msg) in claimed {
            let outcome = self.handle(&msg, place.guild).await;
            claim.done().await;
            match outcome {
                Taken::Desk => taken += 1,
                Taken::Refused => refused += 1,
                Taken::Ignored | Taken::Busy => {}
            }
        }
        self.caught_up(channel);
        if let Some(newest) = newest {
            // Everything read up to here was handled, or needs no handling.
            self.mark_seen(channel, newest, place.guild, None, 0).await;
        }
        Ok((taken, refused))
    }

    /// Whether a message read from history is one the desk may have missed: written by a
    /// person, as an ordinary message, with text, recently, and not handled already.
    async fn missed(&self, msg: &Message, oldest_wanted: i64) -> bool {
        if msg.author.bot
            || !matches!(msg.kind, MessageType::Regular | MessageType::InlineReply)
            || msg.content.trim().is_empty()
            || msg.timestamp.unix_timestamp() < oldest_wanted
        {
            return false;
        }
        let identity = Identity::new(ChannelKind::Discord, &msg.author.id.get().to_string());
        // A lookup failure feeds it: the desk itself answers a repeat from its first outcome.
        !matches!(
            self.intake
                .desk()
                .seen(&identity, &msg.id.get().to_string())
                .await,
            Ok(Some(_))
        )
    }
}

/// A channel to catch up on.
#[derive(Debug, Clone, Copy)]
struct Place {
    /// A guild channel (support channel or thread), not a DM.
    guild: bool,
    /// Its `seen` mark, if any.
    seen: Option<u64>,
    /// Its [`Seen::floor`].
    floor: u64,
}

/// One page of a channel's history; a failure that may pass (429, 5xx, network) is tried
/// twice more.
async fn read_history(
    http: &Http,
    channel: ChannelId,
    query: GetMessages,
) -> Result<Vec<Message>, serenity::Error> {
    let mut wait = Duration::from_millis(500);
    let mut tries = 0;
    loop {
        tries += 1;
        match channel.messages(http, query).await {
            Ok(page) => return Ok(page),
            Err(e) if tries < 3 && !matches!(classify_ref(&e), Some(false)) => {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => return Err(e),
        }
    }
}

/// `Some(true)`: worth retrying; `Some(false)`: not; `None`: unknown (retried).
fn classify_ref(e: &serenity::Error) -> Option<bool> {
    match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => {
            let status = r.status_code.as_u16();
            Some(status == 429 || status >= 500)
        }
        _ => None,
    }
}

/// What to do with a message seen on Discord.
enum Routing {
    /// Not for the desk (not a customer's DM, support channel or own thread).
    Ignore,
    /// For the desk; answers go to the route, or (`None`: none could be opened) to a DM the
    /// outbox tries to open when it delivers.
    Desk(Option<Route>),
}

impl Route {
    /// The channel the answers are posted in.
    pub fn channel(self) -> u64 {
        match self {
            Route::Direct(c) | Route::Thread(c) => c,
        }
    }
}

impl DiscordConfig {
    /// Whether `channel` is one of the (public) support channels.
    fn is_public(&self, channel: u64) -> bool {
        self.support_channels.contains(&channel)
    }
}

/// Where `user`'s answers go; never a support channel (no route then).
async fn route_of(routes: &Routes, config: &DiscordConfig, user: u64) -> Option<Route> {
    let text = routes.get(&format!("user:{user}")).await.ok()??;
    let route: Route = serde_json::from_str(&text).ok()?;
    (!config.is_public(route.channel())).then_some(route)
}

/// Removes the routes that point at a support channel (`support_channels`): older versions
/// stored one when a support thread could not be opened, which answered that customer in
/// public and ignored everyone else in the channel. Those customers have no route
/// afterwards: their next message opens a thread (or a DM), and the outbox opens a DM for
/// answers already waiting. Returns how many entries were removed.
pub async fn repair_routes(routes: &Routes, support_channels: &[u64]) -> Result<usize, StoreError> {
    if support_channels.is_empty() {
        return Ok(0);
    }
    let public = |channel: u64| support_channels.contains(&channel);
    let mut stale = Vec::new();
    for (key, value) in routes.entries().await? {
        let points_public = if let Some(thread) = key.strip_prefix("thread:") {
            thread.parse().is_ok_and(public)
        } else if key.starts_with("user:") {
            serde_json::from_str::<Route>(&value).is_ok_and(|r| public(r.channel()))
        } else {
            false
        };
        if points_public {
            stale.push(key);
        }
    }
    for key in &stale {
        routes.set(key, None).await?;
    }
    Ok(stale.len())
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
        // A new session: whatever was dispatched to an earlier one and not handled (the
        // process stopped) is only in the channels' history now.
        self.discord.catch_up("ready").await;
    }

    async fn resume(&self, _ctx: Context, _event: ResumedEvent) {
        // Discord replays a resumed session's events; the catch-up is cheap (from the
        // `seen` marks) and covers what a replay cannot.
        self.discord.catch_up("resume").await;
    }

    async fn message(&self, _ctx: Context, msg: Message) {
        self.discord.on_message(msg).await;
    }

    async fn interaction_create(&self, _ctx: Context, interaction: serenity::all::Interaction) {
        buttons::on_interaction(&self.discord, interaction).await;
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

/// A failed DM opening, as the outbox keeps it (and the agent reads it on the conversation).
fn cannot_open_dm(user: u64, e: serenity::Error) -> DeliveryError {
    let why = |detail: String| {
        format!("cannot reach Discord user {user}: no support thread or DM channel, and a DM cannot be opened ({detail})")
    };
    match classify(e) {
        DeliveryError::Permanent(d) => DeliveryError::Permanent(why(d)),
        DeliveryError::Retryable(d) => DeliveryError::Retryable(why(d)),
        DeliveryError::RateLimited {
            retry_after,
            detail,
        } => DeliveryError::RateLimited {
            retry_after,
            detail: why(detail),
        },
    }
}

struct DiscordCourier {
    http: Arc<Http>,
    routes: Routes,
    config: Arc<DiscordConfig>,
}

impl Courier for DiscordCourier {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Discord
    }

    fn dialect(&self) -> Dialect {
        Dialect::Discord
    }

    fn deduplicates(&self) -> bool {
        // every piece carries its key as a nonce with `enforce_nonce`
        true
    }

    fn send<'a>(
        &'a self,
        message: &'a crate::message::Outbound,
        text: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let recipient = message.channel_user.as_str();
            let user: u64 = recipient.parse().map_err(|_| {
                DeliveryError::Permanent(format!("{recipient:?} is not a Discord user id"))
            })?;
            let channel = match route_of(&self.routes, &self.config, user).await {
                Some(route) => ChannelId::new(route.channel()),
                None => {
                    // Never wrote to us here (a linked identity), or neither a support
                    // thread nor a DM could be opened when they wrote: open a DM. Never the
                    // support channel.
                    let dm = UserId::new(user)
                        .create_dm_channel(&*self.http)
                        .await
                        .map_err(|e| cannot_open_dm(user, e))?;
                    dm.id
                }
            };
            // A survey question carries its answer buttons.
            let message = buttons::with_buttons(CreateMessage::new(), message)
                .content(text)
                // Nothing a customer or agent writes may ping anyone.
                .allowed_mentions(CreateAllowedMentions::new())
                // A piece sent again (its answer was lost, or the process died before it
                // was marked sent) is not posted twice: Discord returns the first.
                .nonce(serenity::model::channel::Nonce::String(key.to_string()))
                .enforce_nonce(true);
            channel
                .send_message(&*self.http, message)
                .await
                .map(|_| ())
                .map_err(classify)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn routes_to_a_support_channel_are_removed_and_others_kept() {
        let routes = Routes::new(crate::store::temporary().unwrap());
        let put = async |user: u64, route: Route| {
            let text = serde_json::to_string(&route).unwrap();
            routes
                .set(&format!("user:{user}"), Some(&text))
                .await
                .unwrap();
        };
        // What the old fallback stored: the public channel as the customer's "thread".
        put(1, Route::Thread(7)).await;
        routes.set("thread:7", Some("1")).await.unwrap();
        put(2, Route::Thread(70)).await;
        routes.set("thread:70", Some("2")).await.unwrap();
        put(3, Route::Direct(30)).await;

        assert_eq!(repair_routes(&routes, &[7, 8]).await.unwrap(), 2);
        assert!(routes.get("user:1").await.unwrap().is_none());
        assert!(routes.get("thread:7").await.unwrap().is_none());
        let config = DiscordConfig {
            token: "t".into(),
            api_url: None,
            support_channels: vec![7, 8],
        };
        assert_eq!(route_of(&routes, &config, 2).await, Some(Route::Thread(70)));
        assert_eq!(route_of(&routes, &config, 3).await, Some(Route::Direct(30)));
        assert_eq!(
            repair_routes(&routes, &[7, 8]).await.unwrap(),
            0,
            "nothing left"
        );

        // Read-time guard too: a public route is no route.
        put(4, Route::Thread(8)).await;
        assert_eq!(route_of(&routes, &config, 4).await, None);
    }
}
