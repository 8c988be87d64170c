//! The simulated customers: a few on each door, each writing messages that carry a unique
//! reference, until told to stop.
//!
//! - REST and widget customers wait for the answer to each message. On a connection error,
//!   a 5xx, a 429 or an error frame they send the SAME message again with the SAME id
//!   (REST `message_id`, widget frame `id`, a string: the widget's idempotency key) until it
//!   is answered: an answer is an acknowledgement.
//! - Telegram and Discord customers write through the fakes and never wait: the platform
//!   takes the message and hands it to the bot (the Telegram fake until the bot confirms it
//!   with a later `offset`; the Discord fake writes it to the gateway once).
//! - Some messages are delivered twice on purpose: the REST call or widget frame is sent
//!   again once answered, the Telegram message comes again in a new update, the Discord
//!   event is dispatched again.

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::plan::{self, Door, CUSTOMERS_PER_DOOR, REPLAY_CHANCE};
use crate::support::fakes::discord::FakeDiscord;
use crate::support::fakes::telegram::FakeTelegram;
use rand::Rng;

/// The first Telegram chat (customer `i` writes from `TELEGRAM_CHAT + i`).
pub const TELEGRAM_CHAT: i64 = 810_000;
/// The first Discord user.
pub const DISCORD_USER: u64 = 555_000_000_000_100_000;
/// How long a REST or widget customer keeps trying one message before giving up on it.
const PERSISTENCE: Duration = Duration::from_secs(120);
/// Between two tries of the same message.
const RETRY: Duration = Duration::from_millis(100);

/// One message a customer wrote.
#[derive(Debug, Clone)]
pub struct Sent {
    pub door: Door,
    /// The unique reference in its text (`w3.17`).
    pub reference: String,
    /// Who wrote it as the channel knows them: REST `user_id`, widget visitor, Telegram
    /// chat, Discord user.
    pub user: String,
    /// REST and widget: the client got a success answer. Telegram and Discord: filled in
    /// at the end from the fakes.
    pub acked: bool,
    /// Requests or frames sent for it (REST, widget).
    pub tries: u32,
    /// Deliberate second deliveries.
    pub replays: u32,
    /// Telegram update id or Discord message id.
    pub platform_id: Option<u64>,
    /// Why it was given up on (REST, widget), if it was.
    pub refused: Option<String>,
}

/// What every customer shares.
pub struct Ctx {
    pub seed: u64,
    /// Every node's `http://127.0.0.1:PORT` (one, or several on one database).
    pub urls: Vec<String>,
    /// The next node [`Ctx::next_url`] gives.
    next: std::sync::atomic::AtomicUsize,
    pub key: String,
    pub http: reqwest::Client,
    pub telegram: Arc<FakeTelegram>,
    pub discord: Arc<FakeDiscord>,
    stop: AtomicBool,
    /// Whether the server takes the REST `message_id` field (cleared when it refuses it).
    pub rest_ids: AtomicBool,
    /// Whether widget turns echo the frame's id.
    pub widget_ids: AtomicBool,
    /// Things worth telling in the report (first of each kind).
    pub notes: Mutex<Vec<String>>,
}

impl Ctx {
    pub fn new(
        seed: u64,
        urls: Vec<String>,
        key: String,
        telegram: Arc<FakeTelegram>,
        discord: Arc<FakeDiscord>,
    ) -> Ctx {
        Ctx {
            seed,
            urls,
            next: Default::default(),
            key,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            telegram,
            discord,
            stop: AtomicBool::new(false),
            rest_ids: AtomicBool::new(true),
            widget_ids: AtomicBool::new(true),
            notes: Mutex::default(),
        }
    }

    /// Node `n` (counted round the nodes).
    pub fn url(&self, n: usize) -> &str {
        &self.urls[n % self.urls.len()]
    }

    /// The nodes in turn, as a round-robin balancer hands them out.
    pub fn next_url(&self) -> &str {
        self.url(self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// Customers finish the message they are on and stop.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn note(&self, note: String) {
        let mut notes = self.notes.lock().unwrap();
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
}

/// Starts every customer; each task returns what it sent.
pub fn start(ctx: Arc<Ctx>) -> Vec<tokio::task::JoinHandle<Vec<Sent>>> {
    let mut tasks = Vec::new();
    for i in 0..CUSTOMERS_PER_DOOR {
        tasks.push(tokio::spawn(rest_customer(ctx.clone(), i)));
        tasks.push(tokio::spawn(widget_customer(ctx.clone(), i)));
        tasks.push(tokio::spawn(telegram_customer(ctx.clone(), i)));
        tasks.push(tokio::spawn(discord_customer(ctx.clone(), i)));
    }
    tasks
}

fn sent(door: Door, reference: String, user: String) -> Sent {
    Sent {
        door,
        reference,
        user,
        acked: false,
        tries: 0,
        replays: 0,
        platform_id: None,
        refused: None,
    }
}

async fn rest_customer(ctx: Arc<Ctx>, i: usize) -> Vec<Sent> {
    let mut rng = plan::customer_rng(ctx.seed, Door::Rest, i);
    let user = format!("fault-r{i}");
    let mut out = Vec::new();
    for m in 0.. {
        if ctx.stopped() {
            break;
        }
        let reference = plan::reference(Door::Rest, i, m);
        let text = plan::text(&mut rng, &reference, plan::upset_chance(i));
        let id = format!("fault-{reference}");
        let mut s = sent(Door::Rest, reference, user.clone());
        let refused = post(&ctx, i + m, &user, &text, &id, &mut s.tries).await;
        s.acked = refused.is_none();
        s.refused = refused;
        if s.acked && rng.gen_bool(REPLAY_CHANCE) {
            let mut tries = 0;
            post(&ctx, i + m + 1, &user, &text, &id, &mut tries).await;
            s.replays += 1;
        }
        out.push(s);
        tokio::time::sleep(plan::pause(&mut rng, 50..300)).await;
    }
    out
}

/// Posts one REST message until it is answered, first to node `node`, each try again to the
/// next node; `None` once it is acknowledged, else why it was given up on.
async fn post(
    ctx: &Ctx,
    node: usize,
    user: &str,
    text: &str,
    id: &str,
    tries: &mut u32,
) -> Option<String> {
    let started = Instant::now();
    loop {
        if started.elapsed() > PERSISTENCE {
            return Some(format!("no answer within {PERSISTENCE:?}"));
        }
        *tries += 1;
        let mut body = json!({"user_id": user, "text": text});
        if ctx.rest_ids.load(Ordering::SeqCst) {
            body["message_id"] = json!(id);
        }
        let res = ctx
            .http
            .post(format!(
                "{}/api/v1/messages",
                ctx.url(node + *tries as usize)
            ))
            .bearer_auth(&ctx.key)
            .json(&body)
            .send()
            .await;
        let Ok(res) = res else {
            tokio::time::sleep(RETRY).await;
            continue;
        };
        let status = res.status().as_u16();
        let wait = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let answer = res.text().await.unwrap_or_default();
        match status {
            200..=299 => return None,
            429 | 500..=599 => tokio::time::sleep(wait.unwrap_or(RETRY)).await,
            _ if answer.contains("message_id") && ctx.rest_ids.load(Ordering::SeqCst) => {
                ctx.rest_ids.store(false, Ordering::SeqCst);
                ctx.note(format!(
                    "REST: the server refuses the `message_id` field ({status} {answer}); \
                     messages were sent without it, so a retry after a lost answer can store a message twice"
                ));
            }
            _ => {
                ctx.note(format!("REST: a message refused: {status} {answer}"));
                return Some(format!("{status} {answer}"));
            }
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One widget visitor: a socket that is opened again (with the kept visitor token) after
/// every restart, each time on the next node.
struct Visitor {
    /// Every node's socket URL.
    urls: Vec<String>,
    /// The node of the next socket.
    at: usize,
    socket: Option<Ws>,
    token: Option<String>,
    user: Option<String>,
}

impl Visitor {
    /// The open socket, or a new one: hello with the kept token, then the welcome.
    async fn take_socket(&mut self, ctx: &Ctx) -> Option<Ws> {
        if self.socket.is_none() {
            let url = &self.urls[self.at % self.urls.len()];
            self.at += 1;
            let connect = tokio_tungstenite::connect_async(url.as_str());
            let (mut ws, _) = tokio::time::timeout(Duration::from_secs(5), connect)
                .await
                .ok()?
                .ok()?;
            let hello = json!({"type": "hello", "token": self.token, "customer_token": null});
            ws.send(WsMessage::Text(hello.to_string().into()))
                .await
                .ok()?;
            let welcome = loop {
                let frame = next_frame(&mut ws, Duration::from_secs(10)).await?;
                if frame["type"] == "welcome" {
                    break frame;
                }
            };
            let user = welcome["user"].as_str().map(str::to_string);
            if self.user.is_some() && user != self.user {
                ctx.note(format!(
                    "widget: a visitor came back as someone else ({:?} -> {user:?})",
                    self.user
                ));
            }
            self.user = user;
            self.token = welcome["token"].as_str().map(str::to_string);
            self.socket = Some(ws);
        }
        self.socket.take()
    }

    /// Sends message frame `id` until a `turn` answers it (an `error` or `slow_down` frame
    /// for it: the same frame again, after the wait asked for); `None` once acknowledged.
    async fn say(&mut self, ctx: &Ctx, id: &str, text: &str, tries: &mut u32) -> Option<String> {
        let started = Instant::now();
        let mut errors = 0;
        loop {
            if started.elapsed() > PERSISTENCE {
                return Some(format!("no turn within {PERSISTENCE:?}"));
            }
            let Some(mut ws) = self.take_socket(ctx).await else {
                tokio::time::sleep(RETRY).await;
                continue;
            };
            *tries += 1;
            let frame = json!({"type": "message", "id": id, "text": text});
            if ws
                .send(WsMessage::Text(frame.to_string().into()))
                .await
                .is_err()
            {
                continue;
            }
            // Other frames (bot, agent, queue, status events) pass by; a socket that ends
            // or falls silent is dropped and the message sent again on a new one.
            while let Some(frame) = next_frame(&mut ws, Duration::from_secs(30)).await {
                let for_us = frame["id"] == json!(id) || frame["id"].is_null();
                match frame["type"].as_str() {
                    Some("turn") if for_us => {
                        if frame["id"].is_null() && ctx.widget_ids.swap(false, Ordering::SeqCst) {
                            ctx.note("widget: turns do not carry the frame's id".into());
                        }
                        self.socket = Some(ws);
                        return None;
                    }
                    Some("slow_down") if for_us => {
                        let secs = frame["retry_after_secs"].as_u64().unwrap_or(1);
                        ctx.note(format!("widget: told to slow down ({secs} s)"));
                        self.socket = Some(ws);
                        tokio::time::sleep(Duration::from_secs(secs)).await;
                        break;
                    }
                    Some("error") if for_us => {
                        errors += 1;
                        let message = frame["message"].as_str().unwrap_or_default();
                        if errors >= 50 {
                            ctx.note(format!("widget: a message refused: {message}"));
                            self.socket = Some(ws);
                            return Some(message.to_string());
                        }
                        self.socket = Some(ws);
                        tokio::time::sleep(RETRY).await;
                        break;
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The next text frame as JSON; `None` when the socket ends or stays silent for `limit`.
async fn next_frame(ws: &mut Ws, limit: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(limit, ws.next()).await {
            Ok(Some(Ok(WsMessage::Text(t)))) => return serde_json::from_str(&t).ok(),
            Ok(Some(Ok(WsMessage::Close(_)))) | Ok(Some(Err(_))) | Ok(None) | Err(_) => {
                return None
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

async fn widget_customer(ctx: Arc<Ctx>, i: usize) -> Vec<Sent> {
    let mut rng = plan::customer_rng(ctx.seed, Door::Widget, i);
    let mut visitor = Visitor {
        urls: ctx
            .urls
            .iter()
            .map(|u| format!("{}/ws", u.replacen("http://", "ws://", 1)))
            .collect(),
        at: i,
        socket: None,
        token: None,
        user: None,
    };
    let mut out = Vec::new();
    for m in 0.. {
        if ctx.stopped() {
            break;
        }
        let reference = plan::reference(Door::Widget, i, m);
        let text = plan::text(&mut rng, &reference, plan::upset_chance(i));
        // A string id is the message's idempotency key on the widget.
        let id = format!("fault-{reference}");
        let mut s = sent(Door::Widget, reference, String::new());
        let refused = visitor.say(&ctx, &id, &text, &mut s.tries).await;
        s.acked = refused.is_none();
        s.refused = refused;
        if s.acked && rng.gen_bool(REPLAY_CHANCE) {
            let mut tries = 0;
            visitor.say(&ctx, &id, &text, &mut tries).await;
            s.replays += 1;
        }
        s.user = visitor.user.clone().unwrap_or_default();
        out.push(s);
        tokio::time::sleep(plan::pause(&mut rng, 50..300)).await;
    }
    out
}

async fn telegram_customer(ctx: Arc<Ctx>, i: usize) -> Vec<Sent> {
    let mut rng = plan::customer_rng(ctx.seed, Door::Telegram, i);
    let chat = TELEGRAM_CHAT + i as i64;
    let mut out = Vec::new();
    let mut replays = Vec::new();
    for m in 0.. {
        if ctx.stopped() {
            break;
        }
        let reference = plan::reference(Door::Telegram, i, m);
        let text = plan::text(&mut rng, &reference, plan::upset_chance(i));
        let update = ctx.telegram.customer_says(chat, &text);
        let mut s = sent(Door::Telegram, reference, chat.to_string());
        s.platform_id = Some(update as u64);
        if rng.gen_bool(REPLAY_CHANCE) {
            let (delay, telegram) = (plan::pause(&mut rng, 0..2000), ctx.telegram.clone());
            replays.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                telegram.deliver_again(update);
            }));
            s.replays += 1;
        }
        out.push(s);
        tokio::time::sleep(plan::pause(&mut rng, 150..450)).await;
    }
    for r in replays {
        let _ = r.await;
    }
    out
}

async fn discord_customer(ctx: Arc<Ctx>, i: usize) -> Vec<Sent> {
    let mut rng = plan::customer_rng(ctx.seed, Door::Discord, i);
    let user = DISCORD_USER + i as u64;
    let mut out = Vec::new();
    let mut replays = Vec::new();
    for m in 0.. {
        if ctx.stopped() {
            break;
        }
        let reference = plan::reference(Door::Discord, i, m);
        let text = plan::text(&mut rng, &reference, plan::upset_chance(i));
        let id = ctx.discord.direct_message(user, &text);
        let mut s = sent(Door::Discord, reference, user.to_string());
        s.platform_id = Some(id);
        if rng.gen_bool(REPLAY_CHANCE) {
            let (delay, discord) = (plan::pause(&mut rng, 0..2000), ctx.discord.clone());
            replays.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                discord.dm_again(user, id, &text);
            }));
            s.replays += 1;
        }
        out.push(s);
        tokio::time::sleep(plan::pause(&mut rng, 150..450)).await;
    }
    for r in replays {
        let _ = r.await;
    }
    out
}
