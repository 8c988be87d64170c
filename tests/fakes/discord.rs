//! A fake Discord: the REST routes a support bot uses under `/api/v10`, and a gateway
//! WebSocket (HELLO, IDENTIFY -> READY, heartbeats, MESSAGE_CREATE dispatches) as serenity
//! expects them. Errors look like Discord's: `{"message", "code"}` bodies, 429 with
//! `retry_after`, 403 50007 for a user who does not accept DMs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{serve, Changes, Failure};

pub const BOT_USER_ID: u64 = 900_000_000_000_000_001;
pub const GUILD_ID: u64 = 910_000_000_000_000_001;

/// A message the bot posted.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub channel_id: u64,
    pub content: String,
    pub allowed_mentions: Value,
}

/// A thread the bot opened.
#[derive(Debug, Clone, PartialEq)]
pub struct Thread {
    pub id: u64,
    pub parent_id: u64,
    pub name: String,
}

#[derive(Default)]
pub(super) struct Inner {
    next_id: u64,
    sent: Vec<Sent>,
    send_attempts: usize,
    send_failures: VecDeque<Failure>,
    /// user id -> DM channel id
    dm_channels: HashMap<u64, u64>,
    /// Users who do not accept DMs from the bot (403, code 50007).
    closed_dms: HashSet<u64>,
    threads: Vec<Thread>,
    /// Gateway dispatches waiting for a connected session: (event name, data).
    pub(super) events: VecDeque<(String, Value)>,
    /// Intents of each successful IDENTIFY.
    pub(super) identified: Vec<u64>,
    /// IDENTIFY attempts with a wrong token.
    pub(super) refused_identifies: usize,
    /// Every REST call as `METHOD path`.
    calls: Vec<String>,
}

impl Inner {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
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
    pub(super) changes: Changes,
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
            changes: Changes::default(),
            gateway_url: Mutex::new(String::new()),
        });
        let api = Router::new()
            .route("/gateway", get(gateway))
            .route("/gateway/bot", get(gateway_bot))
            .route("/users/@me", get(current_user))
            .route("/users/@me/channels", post(open_dm))
            .route("/channels/{channel}/messages", post(create_message))
            .route(
                "/channels/{channel}/messages/{message}/threads",
                post(thread_from_message),
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
        self.shared.changes.bump();
        out
    }

    /// User `user` sends the bot a direct message; returns the DM channel id.
    pub fn dm_from(&self, user: u64, text: &str) -> u64 {
        self.with(|inner| {
            let channel = inner.dm_channel(user);
            let id = inner.id();
            let message = message_json(id, channel, None, &customer_json(user), text);
            inner.events.push_back(("MESSAGE_CREATE".into(), message));
            channel
        })
    }

    /// User `user` writes in guild channel (or thread) `channel`; returns the message id.
    pub fn guild_message(&self, channel: u64, user: u64, text: &str) -> u64 {
        self.with(|inner| {
            let id = inner.id();
            let mut message = message_json(id, channel, Some(GUILD_ID), &customer_json(user), text);
            message["member"] = json!({"roles": [], "joined_at": "2026-01-01T00:00:00.000000+00:00",
                                       "deaf": false, "mute": false, "flags": 0});
            inner.events.push_back(("MESSAGE_CREATE".into(), message));
            id
        })
    }

    /// The next message posts answer these errors, one post each.
    pub fn fail_sends(&self, failures: &[Failure]) {
        self.with(|inner| inner.send_failures.extend(failures.iter().copied()));
    }

    /// Discord recovers: pending scripted failures are dropped.
    pub fn clear_failures(&self) {
        self.with(|inner| inner.send_failures.clear());
    }

    /// `user` stops accepting DMs from the bot.
    pub fn close_dms(&self, user: u64) {
        self.with(|inner| {
            inner.closed_dms.insert(user);
        });
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.shared.inner.lock().unwrap().sent.clone()
    }

    pub fn sent_in(&self, channel: u64) -> Vec<Sent> {
        self.sent()
            .into_iter()
            .filter(|s| s.channel_id == channel)
            .collect()
    }

    pub fn send_attempts(&self) -> usize {
        self.shared.inner.lock().unwrap().send_attempts
    }

    pub fn threads(&self) -> Vec<Thread> {
        self.shared.inner.lock().unwrap().threads.clone()
    }

    pub fn dm_channel_of(&self, user: u64) -> u64 {
        self.with(|inner| inner.dm_channel(user))
    }

    pub fn calls(&self) -> Vec<String> {
        self.shared.inner.lock().unwrap().calls.clone()
    }

    pub fn refused_identifies(&self) -> usize {
        self.shared.inner.lock().unwrap().refused_identifies
    }

    /// Waits for a session to identify and returns its intents.
    pub async fn wait_for_identify(&self) -> u64 {
        self.shared
            .changes
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

    /// Waits until `n` IDENTIFY attempts with a wrong token were refused.
    pub async fn wait_for_refused_identifies(&self, n: usize) {
        self.shared
            .changes
            .until("refused IDENTIFY attempts", || {
                (self.refused_identifies() >= n).then_some(())
            })
            .await
    }

    /// Waits until a message in `channel` satisfies `pred` and returns it.
    pub async fn wait_for_message(&self, channel: u64, pred: impl Fn(&str) -> bool) -> Sent {
        let what = format!("a matching message in Discord channel {channel}");
        self.shared
            .changes
            .until(&what, || {
                self.sent_in(channel)
                    .into_iter()
                    .find(|s| pred(&unescape(&s.content)))
            })
            .await
    }

    /// Waits until `channel` holds `n` messages and returns them.
    pub async fn wait_for_messages(&self, channel: u64, n: usize) -> Vec<Sent> {
        let what = format!("{n} message(s) in Discord channel {channel}");
        self.shared
            .changes
            .until(&what, || {
                let sent = self.sent_in(channel);
                (sent.len() >= n).then_some(sent)
            })
            .await
    }

    /// Waits until the bot has opened a thread under `parent` and returns it.
    pub async fn wait_for_thread(&self, parent: u64) -> Thread {
        self.shared
            .changes
            .until("a thread in the support channel", || {
                self.threads().into_iter().find(|t| t.parent_id == parent)
            })
            .await
    }
}

/// Removes Discord Markdown escapes, for matching on what the customer reads.
pub fn unescape(text: &str) -> String {
    super::telegram::unescape(text)
}

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

fn discord_error(status: StatusCode, code: i64, message: &str) -> Response {
    (status, Json(json!({"message": message, "code": code}))).into_response()
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
    shared.inner.lock().unwrap().calls.push(call);
    shared.changes.bump();
    (!authorized(shared, headers))
        .then(|| discord_error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized"))
}

async fn gateway(State(shared): State<Arc<Shared>>) -> Response {
    // Like Discord, this route needs no token.
    shared
        .inner
        .lock()
        .unwrap()
        .calls
        .push("GET /gateway".into());
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
        inner.dm_channel(user)
    };
    shared.changes.bump();
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
    let mut inner = shared.inner.lock().unwrap();
    inner.send_attempts += 1;
    let dm_user = inner
        .dm_channels
        .iter()
        .find(|(_, c)| **c == channel)
        .map(|(u, _)| *u);
    let known = dm_user.is_some() || inner.threads.iter().any(|t| t.id == channel);
    let response = if let Some(failure) = inner.send_failures.pop_front() {
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
            Failure::ServerError => discord_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                0,
                "500: Internal Server Error",
            ),
        }
    } else if dm_user.is_some_and(|u| inner.closed_dms.contains(&u)) {
        discord_error(
            StatusCode::FORBIDDEN,
            50007,
            "Cannot send messages to this user",
        )
    } else if !known {
        discord_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel")
    } else if content.is_empty() || content.chars().count() > 2000 {
        discord_error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body")
    } else {
        let id = inner.id();
        inner.sent.push(Sent {
            channel_id: channel,
            content: content.clone(),
            allowed_mentions: body["allowed_mentions"].clone(),
        });
        let guild = (dm_user.is_none()).then_some(GUILD_ID);
        Json(message_json(id, channel, guild, &bot_user_json(), &content)).into_response()
    };
    drop(inner);
    shared.changes.bump();
    response
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
        let id = inner.id();
        inner.threads.push(Thread {
            id,
            parent_id: channel,
            name: name.clone(),
        });
        id
    };
    shared.changes.bump();
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
    shared
        .inner
        .lock()
        .unwrap()
        .calls
        .push(format!("unknown {uri}"));
    discord_error(StatusCode::NOT_FOUND, 0, "404: Not Found")
}
