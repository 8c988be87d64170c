//! A fake Telegram Bot API: `POST /bot{token}/{method}` with JSON parameters, answering
//! `{"ok": true, "result": ...}` or `{"ok": false, "error_code", "description", "parameters"}`
//! like the real one. It keeps a queue of updates for `getUpdates` (long polling with
//! `offset` and `timeout`); its [`Recorder`] keeps every call and `sendMessage`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use frontdesk::channels::platforms::PlatformsConfig;
use frontdesk::channels::telegram::TelegramConfig;
use frontdesk::message::ChannelKind;

use super::{serve, ChatFake, Failure, Recorder};

/// The bot's own account on the fake.
pub const BOT_ID: i64 = 777_000_111;

/// A message the bot sent through `sendMessage`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub chat_id: i64,
    pub text: String,
    pub parse_mode: Option<String>,
    /// The buttons sent with it (`reply_markup`), `null` when none.
    pub reply_markup: Value,
}

#[path = "telegram_buttons.rs"]
mod buttons;
#[allow(unused_imports)] // read by the fast tier's survey tests only
pub use buttons::keyboard;

#[derive(Default)]
struct Inner {
    next_update_id: i64,
    next_message_id: i64,
    /// Updates not yet confirmed by an `offset` past them.
    updates: VecDeque<Value>,
    /// The highest `offset` the bot sent: every update below it is confirmed.
    offset: i64,
    /// Every update queued by a customer, by update id.
    history: std::collections::HashMap<i64, Value>,
    /// How many times `getUpdates` answered each update.
    served: std::collections::HashMap<i64, u32>,
    webhook: Option<(String, Option<String>)>,
    /// `answerCallbackQuery` calls: (callback query id, the text shown, if any).
    callback_answers: Vec<(String, Option<String>)>,
}

struct Shared {
    token: String,
    inner: Mutex<Inner>,
    /// Calls by method name, `sendMessage` deliveries, failures to answer.
    rec: Recorder<Sent>,
}

/// A running fake Bot API. Dropping it stops the server.
pub struct FakeTelegram {
    /// Base URL to give the bot (`FRONTDESK_TELEGRAM_API_URL`).
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeTelegram {
    /// Starts a fake that accepts only `token`.
    pub async fn start(token: &str) -> FakeTelegram {
        let shared = Arc::new(Shared {
            token: token.to_string(),
            inner: Mutex::new(Inner {
                next_update_id: 1000,
                next_message_id: 1,
                ..Inner::default()
            }),
            rec: Recorder::default(),
        });
        let router = Router::new()
            .route("/{bot}/{method}", post(call))
            .with_state(shared.clone());
        let (addr, task) = serve(router, 0).await;
        FakeTelegram {
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

    /// The customer in private chat `chat_id` writes `text`; returns the update id.
    pub fn customer_says(&self, chat_id: i64, text: &str) -> i64 {
        let update = self.with(|inner| {
            let update_id = inner.next_update_id;
            inner.next_update_id += 1;
            let message_id = inner.next_message_id;
            inner.next_message_id += 1;
            let update = text_update(update_id, message_id, chat_id, text);
            inner.updates.push_back(update.clone());
            inner.history.insert(update_id, update.clone());
            update
        });
        update["update_id"].as_i64().unwrap()
    }

    /// Telegram delivers the message of update `update_id` again, in a new update (as after
    /// a webhook call it believes failed); returns the new update id.
    pub fn deliver_again(&self, update_id: i64) -> Option<i64> {
        self.with(|inner| {
            let mut update = inner.history.get(&update_id)?.clone();
            let again = inner.next_update_id;
            inner.next_update_id += 1;
            update["update_id"] = json!(again);
            inner.updates.push_back(update);
            Some(again)
        })
    }

    /// Whether the bot confirmed update `update_id` (asked for updates past it).
    pub fn confirmed(&self, update_id: i64) -> bool {
        update_id < self.shared.inner.lock().unwrap().offset
    }

    /// How many times `getUpdates` answered update `update_id` (more than once: the bot did
    /// not confirm it in time, e.g. it stopped, and got it again).
    pub fn times_served(&self, update_id: i64) -> u32 {
        let inner = self.shared.inner.lock().unwrap();
        inner.served.get(&update_id).copied().unwrap_or(0)
    }

    /// An update as Telegram would POST it to a webhook (not queued for `getUpdates`).
    pub fn webhook_update(&self, chat_id: i64, text: &str) -> Value {
        self.with(|inner| {
            let update_id = inner.next_update_id;
            inner.next_update_id += 1;
            let message_id = inner.next_message_id;
            inner.next_message_id += 1;
            text_update(update_id, message_id, chat_id, text)
        })
    }

    /// Calls, deliveries, failure injection.
    pub fn recorder(&self) -> &Recorder<Sent> {
        &self.shared.rec
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.shared.rec.sent()
    }

    pub fn sent_to(&self, chat_id: i64) -> Vec<Sent> {
        self.sent()
            .into_iter()
            .filter(|s| s.chat_id == chat_id)
            .collect()
    }

    /// The webhook URL and secret token the bot registered, if any.
    pub fn webhook(&self) -> Option<(String, Option<String>)> {
        self.shared.inner.lock().unwrap().webhook.clone()
    }

    /// Updates not yet confirmed by the bot.
    pub fn pending_updates(&self) -> usize {
        self.shared.inner.lock().unwrap().updates.len()
    }

    /// Waits until chat `chat_id` has received `n` messages and returns them all.
    pub async fn wait_for_messages(&self, chat_id: i64, n: usize) -> Vec<Sent> {
        let what = format!("{n} message(s) to Telegram chat {chat_id}");
        self.shared
            .rec
            .wait_for_sent(&what, n, |s| s.chat_id == chat_id)
            .await
    }

    /// Waits until a message to `chat_id` satisfies `pred` and returns it.
    pub async fn wait_for_message(&self, chat_id: i64, pred: impl Fn(&str) -> bool) -> Sent {
        let what = format!("a matching message to Telegram chat {chat_id}");
        self.shared
            .rec
            .wait_for_one(&what, |s| s.chat_id == chat_id && pred(&unescape(&s.text)))
            .await
    }
}

impl ChatFake for FakeTelegram {
    const KIND: ChannelKind = ChannelKind::Telegram;
    const TOKEN: &'static str = "123456:test-token";
    const TOKEN_SETTING: &'static str = "FRONTDESK_TELEGRAM_TOKEN";
    const CUSTOMER: u64 = 4242;
    type Sent = Sent;

    async fn start() -> Self {
        FakeTelegram::start(Self::TOKEN).await
    }

    fn recorder(&self) -> &Recorder<Sent> {
        &self.shared.rec
    }

    fn configure(&self, token: &str, platforms: &mut PlatformsConfig) {
        platforms.telegram = Some(TelegramConfig {
            token: token.into(),
            api_url: Some(self.url.parse().unwrap()),
            webhook: None,
        });
    }

    fn says(&self, customer: u64, text: &str) {
        self.customer_says(customer as i64, text);
    }

    /// A private chat's id is the customer's.
    fn inbox(&self, customer: u64) -> u64 {
        customer
    }

    fn delivery(sent: &Sent) -> (u64, &str) {
        (sent.chat_id as u64, &sent.text)
    }

    /// Telegram is back: a new fake on another port (nothing of the old one is needed).
    async fn come_back(self) -> Self {
        FakeTelegram::start(Self::TOKEN).await
    }
}

/// Removes MarkdownV2 escapes, for matching on what the customer reads.
pub use super::unescape;

fn user_json(chat_id: i64) -> Value {
    json!({"id": chat_id, "is_bot": false, "first_name": "Ada", "last_name": "Lovelace",
           "username": format!("customer{chat_id}"), "language_code": "en"})
}

fn text_update(update_id: i64, message_id: i64, chat_id: i64, text: &str) -> Value {
    let mut message = json!({
        "message_id": message_id,
        "date": chrono::Utc::now().timestamp(),
        "chat": {"id": chat_id, "type": "private", "first_name": "Ada", "last_name": "Lovelace",
                 "username": format!("customer{chat_id}")},
        "from": user_json(chat_id),
        "text": text,
    });
    if text.starts_with('/') {
        let len = text
            .split_whitespace()
            .next()
            .unwrap_or(text)
            .encode_utf16()
            .count();
        message["entities"] = json!([{"offset": 0, "length": len, "type": "bot_command"}]);
    }
    json!({"update_id": update_id, "message": message})
}

/// Request parameters: JSON, or multipart/form-data (teloxide sends `setWebhook` that way,
/// since it may carry a certificate file). Both are accepted by the real Bot API.
fn params_of(headers: &HeaderMap, body: &[u8]) -> Value {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(boundary) = content_type.split("boundary=").nth(1) else {
        return serde_json::from_slice(body).unwrap_or(Value::Null);
    };
    let boundary = format!("--{}", boundary.trim_matches('"'));
    let text = String::from_utf8_lossy(body);
    let mut params = serde_json::Map::new();
    for part in text.split(boundary.as_str()) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let Some(name) = head
            .split("name=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        else {
            continue;
        };
        let value = value.strip_suffix("\r\n").unwrap_or(value);
        let parsed = serde_json::from_str(value).unwrap_or_else(|_| json!(value));
        params.insert(name.to_string(), parsed);
    }
    Value::Object(params)
}

fn ok(result: Value) -> Response {
    Json(json!({"ok": true, "result": result})).into_response()
}

fn error(status: StatusCode, description: &str, retry_after: Option<u32>) -> Response {
    let mut body = json!({"ok": false, "error_code": status.as_u16(), "description": description});
    if let Some(secs) = retry_after {
        body["parameters"] = json!({"retry_after": secs});
    }
    (status, Json(body)).into_response()
}

async fn call(
    State(shared): State<Arc<Shared>>,
    Path((bot, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let params = params_of(&headers, &body);
    if bot.strip_prefix("bot") != Some(shared.token.as_str()) {
        shared.rec.reject();
        return error(StatusCode::UNAUTHORIZED, "Unauthorized", None);
    }
    // The Bot API ignores the case of method names (teloxide sends `GetMe`).
    let method = canonical(&method);
    shared.rec.call(method);
    match method {
        "getMe" => ok(json!({
            "id": BOT_ID, "is_bot": true, "first_name": "Frontdesk", "username": "frontdesk_test_bot",
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false
        })),
        "getUpdates" => get_updates(&shared, &params).await,
        "sendMessage" => send_message(&shared, &params),
        "answerCallbackQuery" => buttons::answer_callback_query(&shared, &params),
        "getWebhookInfo" => {
            let url = shared
                .inner
                .lock()
                .unwrap()
                .webhook
                .as_ref()
                .map(|w| w.0.clone());
            ok(
                json!({"url": url.unwrap_or_default(), "has_custom_certificate": false,
                      "pending_update_count": 0}),
            )
        }
        "deleteWebhook" => {
            shared.inner.lock().unwrap().webhook = None;
            shared.rec.bump();
            ok(json!(true))
        }
        "setWebhook" => {
            let url = params["url"].as_str().unwrap_or_default().to_string();
            let secret = params["secret_token"].as_str().map(str::to_string);
            shared.inner.lock().unwrap().webhook = Some((url, secret));
            shared.rec.bump();
            ok(json!(true))
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found: method not found", None),
    }
}

const METHODS: [&str; 7] = [
    "answerCallbackQuery",
    "getMe",
    "getUpdates",
    "sendMessage",
    "getWebhookInfo",
    "deleteWebhook",
    "setWebhook",
];

fn canonical(method: &str) -> &str {
    METHODS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .copied()
        .unwrap_or(method)
}

async fn get_updates(shared: &Shared, params: &Value) -> Response {
    let offset = params["offset"].as_i64().unwrap_or(0);
    let timeout = params["timeout"].as_u64().unwrap_or(0);
    let limit = params["limit"].as_u64().unwrap_or(100).clamp(1, 100) as usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    loop {
        let mut rx = shared.rec.watch();
        let (ready, confirmed): (Vec<Value>, bool) = {
            let mut inner = shared.inner.lock().unwrap();
            inner.offset = inner.offset.max(offset);
            // An offset confirms every update before it: Telegram forgets them.
            let before = inner.updates.len();
            while inner
                .updates
                .front()
                .is_some_and(|u| u["update_id"].as_i64().unwrap() < offset)
            {
                inner.updates.pop_front();
            }
            let confirmed = inner.updates.len() != before;
            let ready: Vec<Value> = inner.updates.iter().take(limit).cloned().collect();
            for update in &ready {
                let id = update["update_id"].as_i64().unwrap();
                *inner.served.entry(id).or_default() += 1;
            }
            (ready, confirmed)
        };
        if confirmed {
            shared.rec.bump();
        }
        let now = tokio::time::Instant::now();
        if !ready.is_empty() || now >= deadline {
            return ok(Value::Array(ready));
        }
        let _ = tokio::time::timeout(deadline - now, rx.changed()).await;
    }
}

fn send_message(shared: &Shared, params: &Value) -> Response {
    let chat_id = params["chat_id"].as_i64().unwrap_or_default();
    let text = params["text"].as_str().unwrap_or_default().to_string();
    let parse_mode = params["parse_mode"].as_str().map(str::to_string);
    if let Some(failure) = shared.rec.attempt(Some(chat_id as u64)) {
        return match failure {
            Failure::RetryAfter(secs) => error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too Many Requests: retry after {secs}"),
                Some(secs),
            ),
            Failure::ServerError | Failure::LostAnswer => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
                None,
            ),
            Failure::Forbidden => error(
                StatusCode::FORBIDDEN,
                "Forbidden: bot was blocked by the user",
                None,
            ),
        };
    }
    if text.is_empty() || text.encode_utf16().count() > 4096 {
        return error(
            StatusCode::BAD_REQUEST,
            "Bad Request: message text is empty or too long",
            None,
        );
    }
    let message_id = {
        let mut inner = shared.inner.lock().unwrap();
        inner.next_message_id += 1;
        inner.next_message_id - 1
    };
    shared.rec.delivered(Sent {
        chat_id,
        text: text.clone(),
        parse_mode,
        reply_markup: params["reply_markup"].clone(),
    });
    ok(json!({
        "message_id": message_id,
        "date": chrono::Utc::now().timestamp(),
        "chat": {"id": chat_id, "type": "private", "first_name": "Ada"},
        "from": {"id": BOT_ID, "is_bot": true, "first_name": "Frontdesk",
                 "username": "frontdesk_test_bot"},
        "text": text,
    }))
}
