//! A fake Discord: the REST routes a support bot uses under `/api/v10`, and a gateway
//! WebSocket (HELLO, IDENTIFY -> READY, heartbeats, MESSAGE_CREATE dispatches) as serenity
//! expects them. Errors look like Discord's: `{"message", "code"}` bodies, 429 with
//! `retry_after`, 403 50007 for a user who does not accept DMs. Its [`Recorder`] keeps every
//! REST call (as `METHOD path`) and posted message; refused IDENTIFYs count as rejected.
//! Opening a thread or a DM can be made to fail too, in the recorder's style: the next
//! openings answer scripted [`Failure`]s, or every one does ([`FakeDiscord::fail_next_threads`],
//! [`FakeDiscord::fail_all_threads`], and the same for DMs).
//!
//! Like Discord, it keeps every channel's history (what customers wrote, dispatched or not,
//! and what the bot posted) and serves it at `GET /channels/{id}/messages` with `after`,
//! `before`, `around` and `limit`, newest first; a test can put a message in a channel's
//! history without dispatching it ([`FakeDiscord::missed_dm`],
//! [`FakeDiscord::missed_guild_message`]: as if it was dispatched to a process that died).
//! Ids are snowflakes of the time they were made, as Discord's are.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use frontdesk::channels::discord::DiscordConfig;
use frontdesk::channels::platforms::PlatformsConfig;
use frontdesk::message::ChannelKind;

use super::{serve, ChatFake, Failure, Recorder};

pub const BOT_USER_ID: u64 = 900_000_000_000_000_001;
pub const GUILD_ID: u64 = 910_000_000_000_000_001;

/// A message the bot posted.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub channel_id: u64,
    pub content: String,
    pub allowed_mentions: Value,
    /// The message's components (action rows of buttons), `null` when none.
    pub components: Value,
}

#[path = "discord_interactions.rs"]
mod interactions;
#[allow(unused_imports)] // read by the fast tier's survey tests only
pub use interactions::{buttons, Callback};

/// A thread the bot opened.
#[derive(Debug, Clone, PartialEq)]
pub struct Thread {
    pub id: u64,
    pub parent_id: u64,
    pub name: String,
}

/// Scripted answers for one kind of call: the next calls answer `next`, one each, in order;
/// after that every call answers `always`, if set.
#[derive(Default)]
struct Faults {
    next: VecDeque<Failure>,
    always: Option<Failure>,
}

impl Faults {
    fn take(&mut self) -> Option<Failure> {
        self.next.pop_front().or(self.always)
    }
}

#[derive(Default)]
pub(super) struct Inner {
    next_id: u64,
    /// user id -> DM channel id
    dm_channels: HashMap<u64, u64>,
    threads: Vec<Thread>,
    /// Users the bot opened a DM with (`POST /users/@me/channels` answered), in order.
    dms_opened: Vec<u64>,
    /// Failure injection for opening threads (`POST .../threads`).
    thread_faults: Faults,
    /// Failure injection for opening DMs (`POST /users/@me/channels`).
    dm_faults: Faults,
    /// Gateway dispatches waiting for a connected session: (event name, data).
    pub(super) events: VecDeque<(String, Value)>,
    /// Intents of each successful IDENTIFY.
    pub(super) identified: Vec<u64>,
    /// MESSAGE_CREATE dispatches written to a session's socket: (message id, when), in order.
    pub(super) dispatched: Vec<(u64, std::time::Instant)>,
    /// channel id -> its messages (as the gateway dispatches them), oldest first.
    history: HashMap<u64, Vec<Value>>,
    /// Messages the bot created with `enforce_nonce`, by (channel, nonce): a repeat returns
    /// the first instead of posting again, as Discord does for a few minutes.
    nonces: HashMap<(u64, String), Value>,
    /// Interaction callbacks the bot sent, in order.
    callbacks: Vec<Callback>,
}

/// 2015-01-01T00:00:00Z, where Discord's snowflake timestamps start, in Unix ms.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

impl Inner {
    /// A fresh snowflake: the time now in its top bits, always above the last one.
    fn id(&mut self) -> u64 {
        let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
        let stamp = now_ms.saturating_sub(DISCORD_EPOCH_MS) << 22;
        self.next_id = (self.next_id + 1).max(stamp);
        self.next_id
    }

    /// `author` writes `text` in `channel` (of the guild, if `guild`): the message is in the
    /// channel's history; returns its id and its MESSAGE_CREATE.
    fn post(
        &mut self,
        channel: u64,
        guild: bool,
        author: &Value,
        text: &str,
    ) -> (u64, (String, Value)) {
        let id = self.id();
        let mut message = message_json(id, channel, guild.then_some(GUILD_ID), author, text);
        if guild {
            message["member"] = json!({"roles": [], "joined_at": "2026-01-01T00:00:00.000000+00:00",
                                       "deaf": false, "mute": false, "flags": 0});
        }
        self.history
            .entry(channel)
            .or_default()
            .push(message.clone());
        (id, ("MESSAGE_CREATE".into(), message))
    }

    fn dm_channel(&mut self, user: u64) -> u64 {
        if let Some(id) = self.dm_channels.get(&user) {
            return *id;
        }
        let id = self.id();
        self.dm_channels.insert(user, id);
        id
    }
}

pub(super) struct Shared {
    pub(super) token: String,
    pub(super) inner: Mutex<Inner>,
    /// REST calls, posted messages, failures to answer, refused IDENTIFYs.
    pub(super) rec: Recorder<Sent>,
    pub(super) gateway_url: Mutex<String>,
}

/// A running fake Discord. Dropping it stops the server.
pub struct FakeDiscord {
    /// Base URL for `FRONTDESK_DISCORD_API_URL`.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeDiscord {
    pub async fn start(token: &str) -> FakeDiscord {
        let shared = Arc::new(Shared {
            token: token.to_string(),
            inner: Mutex::new(Inner {
                next_id: 1_000_000_000_000_000_000,
                ..Inner::default()
            }),
            rec: Recorder::default(),
            gateway_url: Mutex::new(String::new()),
        });
        let api = Router::new()
            .route("/gateway", get(gateway))
            .route("/gateway/bot", get(gateway_bot))
            .route("/users/@me", get(current_user))
            .route("/users/@me/channels", post(open_dm))
            .route(
                "/channels/{channel}/messages",
                post(create_message).get(channel_messages),
            )
            .route(
                "/channels/{channel}/messages/{message}/threads",
                post(thread_from_message),
            )
            .route(
                "/interactions/{interaction}/{token}/callback",
                post(interactions::callback),
            )
            .fallback(any(unknown_route));
        let router = Router::new()
            .nest("/api/v10", api)
            .route("/ws", get(super::discord_gateway::socket))
            .with_state(shared.clone());
        let (addr, task) = serve(router, 0).await;
        *shared.gateway_url.lock().unwrap() = format!("ws://{addr}/ws");
        FakeDiscord {
            url: format!("http://{addr}"),
            shared,
            task,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let out = f(&mut self.shared.inner.lock().unwrap());
        self.shared.rec.bump();
        out
    }

    /// User `user` sends the bot a direct message; returns the DM channel id.
    pub fn dm_from(&self, user: u64, text: &str) -> u64 {
        self.with(|inner| {
            let channel = inner.dm_channel(user);
            let (_, event) = inner.post(channel, false, &customer_json(user), text);
            inner.events.push_back(event);
            channel
        })
    }

    /// User `user` sends the bot a direct message; returns the message id (to deliver the
    /// same event again with [`FakeDiscord::dm_again`]).
    pub fn direct_message(&self, user: u64, text: &str) -> u64 {
        self.with(|inner| {
            let channel = inner.dm_channel(user);
            let (id, event) = inner.post(channel, false, &customer_json(user), text);
            inner.events.push_back(event);
            id
        })
    }

    /// User `user` sent the bot a direct message that was dispatched to no running session
    /// (a process that died before it stored it): it is only in the DM channel's history.
    /// Returns the message id.
    pub fn missed_dm(&self, user: u64, text: &str) -> u64 {
        self.with(|inner| {
            let channel = inner.dm_channel(user);
            inner.post(channel, false, &customer_json(user), text).0
        })
    }

    /// User `user` wrote in guild channel (or thread) `channel`, and the event reached no
    /// running session: the message is only in the channel's history. Returns its id.
    pub fn missed_guild_message(&self, channel: u64, user: u64, text: &str) -> u64 {
        self.with(|inner| inner.post(channel, true, &customer_json(user), text).0)
    }

    /// Another bot (not ours) wrote in guild channel `channel`, in history only; returns the
    /// message id.
    pub fn missed_bot_message(&self, channel: u64, bot: u64, text: &str) -> u64 {
        let author = json!({"id": bot.to_string(), "username": format!("otherbot{bot}"),
                            "discriminator": "0", "global_name": null, "avatar": null, "bot": true});
        self.with(|inner| inner.post(channel, true, &author, text).0)
    }

    /// The messages of `channel` (customers', dispatched or not, and the bot's), oldest first.
    pub fn history(&self, channel: u64) -> Vec<Value> {
        let inner = self.shared.inner.lock().unwrap();
        inner.history.get(&channel).cloned().unwrap_or_default()
    }

    /// How many times the bot read `channel`'s history (`GET /channels/{id}/messages`).
    pub fn history_reads(&self, channel: u64) -> usize {
        let call = format!("GET /channels/{channel}/messages");
        self.shared
            .rec
            .calls()
            .iter()
            .filter(|c| **c == call)
            .count()
    }

    /// Waits until the bot has read `channel`'s history `n` times.
    pub async fn wait_for_history_reads(&self, channel: u64, n: usize) {
        let what = format!("the bot to read Discord channel {channel}'s history {n} time(s)");
        self.shared
            .rec
            .until(&what, || (self.history_reads(channel) >= n).then_some(()))
            .await
    }

    /// The gateway dispatches direct message `id` of `user` again, as a gateway that delivers
    /// one event twice does.
    pub fn dm_again(&self, user: u64, id: u64, text: &str) {
        self.with(|inner| {
            let event = dm_event(inner, user, id, text);
            inner.events.push_back(event);
        });
    }

    /// Events queued for the gateway and not yet written to a session.
    pub fn pending_events(&self) -> usize {
        self.shared.inner.lock().unwrap().events.len()
    }

    /// Message ids of the MESSAGE_CREATE events written to a session's socket, with when.
    pub fn dispatched(&self) -> Vec<(u64, std::time::Instant)> {
        self.shared.inner.lock().unwrap().dispatched.clone()
    }

    /// User `user` writes in guild channel (or thread) `channel`; returns the message id.
    pub fn guild_message(&self, channel: u64, user: u64, text: &str) -> u64 {
        self.with(|inner| {
            let (id, event) = inner.post(channel, true, &customer_json(user), text);
            inner.events.push_back(event);
            id
        })
    }

    /// Calls, posted messages, failure injection.
    pub fn recorder(&self) -> &Recorder<Sent> {
        &self.shared.rec
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.shared.rec.sent()
    }

    pub fn sent_in(&self, channel: u64) -> Vec<Sent> {
        self.sent()
            .into_iter()
            .filter(|s| s.channel_id == channel)
            .collect()
    }

    pub fn threads(&self) -> Vec<Thread> {
        self.shared.inner.lock().unwrap().threads.clone()
    }

    pub fn dm_channel_of(&self, user: u64) -> u64 {
        self.with(|inner| inner.dm_channel(user))
    }

    /// Users the bot opened a DM with through REST, in order (one entry per opening).
    pub fn dms_opened(&self) -> Vec<u64> {
        self.shared.inner.lock().unwrap().dms_opened.clone()
    }

    /// The next thread openings answer these errors, one opening each.
    pub fn fail_next_threads(&self, failures: &[Failure]) {
        self.with(|inner| inner.thread_faults.next.extend(failures.iter().copied()));
    }

    /// Every thread opening (after the scripted ones) answers `failure`; `None`: succeeds.
    pub fn fail_all_threads(&self, failure: Option<Failure>) {
        self.with(|inner| inner.thread_faults.always = failure);
    }

    /// The next DM openings answer these errors, one opening each.
    pub fn fail_next_dms(&self, failures: &[Failure]) {
        self.with(|inner| inner.dm_faults.next.extend(failures.iter().copied()));
    }

    /// Every DM opening (after the scripted ones) answers `failure`; `None`: succeeds.
    pub fn fail_all_dms(&self, failure: Option<Failure>) {
        self.with(|inner| inner.dm_faults.always = failure);
    }

    /// Waits until the bot has opened a DM with `user` and returns the DM channel.
    pub async fn wait_for_dm_opened(&self, user: u64) -> u64 {
        let what = format!("the bot to open a DM with Discord user {user}");
        self.shared
            .rec
            .until(&what, || {
                let inner = self.shared.inner.lock().unwrap();
                inner
                    .dms_opened
                    .contains(&user)
                    .then(|| inner.dm_channels[&user])
            })
            .await
    }

    /// Waits for a session to identify and returns its intents.
    pub async fn wait_for_identify(&self) -> u64 {
        self.shared
            .rec
            .until("the bot to IDENTIFY on the gateway", || {
                self.shared
                    .inner
                    .lock()
                    .unwrap()
                    .identified
                    .first()
                    .copied()
            })
            .await
    }

    /// Waits until a message in `channel` satisfies `pred` and returns it.
    pub async fn wait_for_message(&self, channel: u64, pred: impl Fn(&str) -> bool) -> Sent {
        let what = format!("a matching message in Discord channel {channel}");
        self.shared
            .rec
            .wait_for_one(&what, |s| {
                s.channel_id == channel && pred(&unescape(&s.content))
            })
            .await
    }

    /// Waits until `channel` holds `n` messages and returns them.
    pub async fn wait_for_messages(&self, channel: u64, n: usize) -> Vec<Sent> {
        let what = format!("{n} message(s) in Discord channel {channel}");
        self.shared
            .rec
            .wait_for_sent(&what, n, |s| s.channel_id == channel)
            .await
    }

    /// Waits until the bot has opened a thread under `parent` and returns it.
    pub async fn wait_for_thread(&self, parent: u64) -> Thread {
        self.shared
            .rec
            .until("a thread in the support channel", || {
                self.threads().into_iter().find(|t| t.parent_id == parent)
            })
            .await
    }
}

impl ChatFake for FakeDiscord {
    const KIND: ChannelKind = ChannelKind::Discord;
    const TOKEN: &'static str = "discord-test-token";
    const TOKEN_SETTING: &'static str = "FRONTDESK_DISCORD_TOKEN";
    const CUSTOMER: u64 = 555_000_000_000_000_042;
    type Sent = Sent;

    async fn start() -> Self {
        FakeDiscord::start(Self::TOKEN).await
    }

    fn recorder(&self) -> &Recorder<Sent> {
        &self.shared.rec
    }

    fn configure(&self, token: &str, platforms: &mut PlatformsConfig) {
        platforms.discord = Some(DiscordConfig {
            token: token.into(),
            api_url: Some(self.url.clone()),
            support_channels: Vec::new(),
        });
    }

    /// A direct message.
    fn says(&self, customer: u64, text: &str) {
        self.dm_from(customer, text);
    }

    /// The customer's DM channel.
    fn inbox(&self, customer: u64) -> u64 {
        self.dm_channel_of(customer)
    }

    fn delivery(sent: &Sent) -> (u64, &str) {
        (sent.channel_id, &sent.content)
    }

    /// Discord recovers: the same fake (which knows the DM channels the bot stored), with
    /// its pending failures dropped.
    async fn come_back(self) -> Self {
        self.recorder().clear_failures();
        self.with(|inner| {
            inner.thread_faults = Faults::default();
            inner.dm_faults = Faults::default();
        });
        self
    }
}

/// Removes Discord Markdown escapes, for matching on what the customer reads.
pub use super::unescape;

fn customer_json(user: u64) -> Value {
    json!({"id": user.to_string(), "username": format!("customer{user}"), "discriminator": "0",
           "global_name": "Grace", "avatar": null, "bot": false})
}

pub(super) fn bot_user_json() -> Value {
    json!({"id": BOT_USER_ID.to_string(), "username": "frontdesk", "discriminator": "0",
           "global_name": "Frontdesk", "avatar": null, "bot": true, "verified": true,
           "mfa_enabled": false, "flags": 0})
}

fn message_json(id: u64, channel: u64, guild: Option<u64>, author: &Value, text: &str) -> Value {
    let mut m = json!({
        "id": id.to_string(),
        "channel_id": channel.to_string(),
        "author": author,
        "content": text,
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": false,
        "type": 0,
        "flags": 0,
        "components": [],
    });
    if let Some(guild) = guild {
        m["guild_id"] = json!(guild.to_string());
    }
    m
}

/// A MESSAGE_CREATE for direct message `id` from `user` in their DM channel.
/// (The message as first posted, when it is in the channel's history.)
fn dm_event(inner: &mut Inner, user: u64, id: u64, text: &str) -> (String, Value) {
    let channel = inner.dm_channel(user);
    let posted = inner.history.get(&channel).and_then(|messages| {
        messages
            .iter()
            .find(|m| m["id"].as_str() == Some(id.to_string().as_str()))
            .cloned()
    });
    let message =
        posted.unwrap_or_else(|| message_json(id, channel, None, &customer_json(user), text));
    ("MESSAGE_CREATE".into(), message)
}

fn discord_error(status: StatusCode, code: i64, message: &str) -> Response {
    (status, Json(json!({"message": message, "code": code}))).into_response()
}

/// `failure` in Discord's words; `forbidden` is the 403's JSON error code and message.
fn failure_response(failure: Failure, forbidden: (i64, &str)) -> Response {
    match failure {
        Failure::RetryAfter(secs) => {
            let body = json!({"message": "You are being rate limited.",
                              "retry_after": secs as f64, "global": false});
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", secs.to_string())],
                Json(body),
            )
                .into_response()
        }
        Failure::ServerError | Failure::LostAnswer => discord_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            0,
            "500: Internal Server Error",
        ),
        Failure::Forbidden => discord_error(StatusCode::FORBIDDEN, forbidden.0, forbidden.1),
    }
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let expected = format!("Bot {}", shared.token);
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

/// Records the call and checks the token; `Some` is the 401 to answer.
fn enter(shared: &Shared, headers: &HeaderMap, call: String) -> Option<Response> {
    shared.rec.call(call);
    (!authorized(shared, headers))
        .then(|| discord_error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized"))
}

async fn gateway(State(shared): State<Arc<Shared>>) -> Response {
    // Like Discord, this route needs no token.
    shared.rec.call("GET /gateway");
    let url = shared.gateway_url.lock().unwrap().clone();
    Json(json!({"url": url})).into_response()
}

async fn gateway_bot(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(e) = enter(&shared, &headers, "GET /gateway/bot".into()) {
        return e;
    }
    let url = shared.gateway_url.lock().unwrap().clone();
    Json(json!({"url": url, "shards": 1, "session_start_limit":
        {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}}))
    .into_response()
}

async fn current_user(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(e) = enter(&shared, &headers, "GET /users/@me".into()) {
        return e;
    }
    Json(bot_user_json()).into_response()
}

async fn open_dm(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(e) = enter(&shared, &headers, "POST /users/@me/channels".into()) {
        return e;
    }
    let Some(user) = body["recipient_id"]
        .as_str()
        .and_then(|s| s.parse::<u64>().ok())
        .or_else(|| body["recipient_id"].as_u64())
    else {
        return discord_error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
    };
    let channel = {
        let mut inner = shared.inner.lock().unwrap();
        if let Some(failure) = inner.dm_faults.take() {
            drop(inner);
            shared.rec.bump();
            return failure_response(failure, (50007, "Cannot send messages to this user"));
        }
        inner.dms_opened.push(user);
        inner.dm_channel(user)
    };
    shared.rec.bump();
    Json(
        json!({"id": channel.to_string(), "type": 1, "last_message_id": null,
                "recipients": [customer_json(user)]}),
    )
    .into_response()
}

async fn create_message(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(channel): Path<u64>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(e) = enter(
        &shared,
        &headers,
        format!("POST /channels/{channel}/messages"),
    ) {
        return e;
    }
    let content = body["content"].as_str().unwrap_or_default().to_string();
    let (dm_user, known) = {
        let inner = shared.inner.lock().unwrap();
        let dm_user = inner
            .dm_channels
            .iter()
            .find(|(_, c)| **c == channel)
            .map(|(u, _)| *u);
        let known = dm_user.is_some() || inner.threads.iter().any(|t| t.id == channel);
        (dm_user, known)
    };
    let failure = shared.rec.attempt(dm_user);
    let lost = failure == Some(Failure::LostAnswer);
    if let Some(failure) = failure.filter(|_| !lost) {
        return failure_response(failure, (50007, "Cannot send messages to this user"));
    }
    if !known {
        return discord_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
    }
    if content.is_empty() || content.chars().count() > 2000 {
        return discord_error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
    }
    let nonce = match (&body["nonce"], body["enforce_nonce"].as_bool()) {
        (Value::String(n), Some(true)) => Some(n.clone()),
        (Value::Number(n), Some(true)) => Some(n.to_string()),
        _ => None,
    };
    if let Some(n) = &nonce {
        let first = shared
            .inner
            .lock()
            .unwrap()
            .nonces
            .get(&(channel, n.clone()))
            .cloned();
        if let Some(first) = first {
            return Json(first).into_response();
        }
    }
    let id = shared.inner.lock().unwrap().id();
    shared.rec.delivered(Sent {
        channel_id: channel,
        content: content.clone(),
        allowed_mentions: body["allowed_mentions"].clone(),
        components: body["components"].clone(),
    });
    let guild = (dm_user.is_none()).then_some(GUILD_ID);
    let message = message_json(id, channel, guild, &bot_user_json(), &content);
    {
        let mut inner = shared.inner.lock().unwrap();
        inner
            .history
            .entry(channel)
            .or_default()
            .push(message.clone());
        if let Some(n) = nonce {
            inner.nonces.insert((channel, n), message.clone());
        }
    }
    if lost {
        return failure_response(Failure::ServerError, (0, ""));
    }
    Json(message).into_response()
}

/// `GET /channels/{id}/messages`, as Discord answers it: at most `limit` (1-100, default
/// 50) messages, newest first; with `before`, the newest ones older than it; with `after`,
/// the oldest ones newer than it (still newest first); with `around`, those nearest it.
/// Message objects carry no `guild_id` nor `member` here (only gateway events do). A
/// channel with no messages answers `[]`.
async fn channel_messages(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(channel): Path<u64>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(e) = enter(
        &shared,
        &headers,
        format!("GET /channels/{channel}/messages"),
    ) {
        return e;
    }
    let snowflake = |name: &str| -> Result<Option<u64>, ()> {
        match query.get(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| ()),
        }
    };
    let (Ok(after), Ok(before), Ok(around)) =
        (snowflake("after"), snowflake("before"), snowflake("around"))
    else {
        return discord_error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
    };
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return discord_error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body"),
    };
    let all = shared
        .inner
        .lock()
        .unwrap()
        .history
        .get(&channel)
        .cloned()
        .unwrap_or_default();
    let id_of = |m: &Value| {
        m["id"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Oldest first from here on.
    let mut picked: Vec<Value> = if let Some(after) = after {
        all.into_iter()
            .filter(|m| id_of(m) > after)
            .take(limit)
            .collect()
    } else if let Some(around) = around {
        let older: Vec<Value> = all.iter().filter(|m| id_of(m) < around).cloned().collect();
        let rest: Vec<Value> = all.into_iter().filter(|m| id_of(m) >= around).collect();
        let before_n = limit / 2;
        let skip = older.len().saturating_sub(before_n);
        older
            .into_iter()
            .skip(skip)
            .chain(rest)
            .take(limit)
            .collect()
    } else {
        let older: Vec<Value> = all
            .into_iter()
            .filter(|m| before.is_none_or(|b| id_of(m) < b))
            .collect();
        let skip = older.len().saturating_sub(limit);
        older.into_iter().skip(skip).collect()
    };
    picked.reverse();
    for m in &mut picked {
        if let Some(m) = m.as_object_mut() {
            m.remove("guild_id");
            m.remove("member");
        }
    }
    Json(Value::Array(picked)).into_response()
}

async fn thread_from_message(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((channel, message)): Path<(u64, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let call = format!("POST /channels/{channel}/messages/{message}/threads");
    if let Some(e) = enter(&shared, &headers, call) {
        return e;
    }
    let name = body["name"].as_str().unwrap_or("support").to_string();
    let id = {
        let mut inner = shared.inner.lock().unwrap();
        if let Some(failure) = inner.thread_faults.take() {
            drop(inner);
            shared.rec.bump();
            return failure_response(failure, (50013, "Missing Permissions"));
        }
        let id = inner.id();
        inner.threads.push(Thread {
            id,
            parent_id: channel,
            name: name.clone(),
        });
        id
    };
    shared.rec.bump();
    Json(json!({
        "id": id.to_string(), "type": 11, "guild_id": GUILD_ID.to_string(),
        "parent_id": channel.to_string(), "owner_id": BOT_USER_ID.to_string(), "name": name,
        "last_message_id": null, "rate_limit_per_user": 0, "message_count": 0, "member_count": 1,
        "flags": 0, "total_message_sent": 0,
        "thread_metadata": {"archived": false, "auto_archive_duration": 1440, "locked": false,
                            "archive_timestamp": chrono::Utc::now().to_rfc3339()}
    }))
    .into_response()
}

async fn unknown_route(State(shared): State<Arc<Shared>>, uri: axum::http::Uri) -> Response {
    shared.rec.call(format!("unknown {uri}"));
    discord_error(StatusCode::NOT_FOUND, 0, "404: Not Found")
}
