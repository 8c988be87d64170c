//! Telegram through teloxide: private-chat text messages and `/start` in, MarkdownV2 messages
//! out. Long polling by default; webhook mode when `channels.telegram.webhook_url` is set,
//! served by [`Telegram::webhook_router`] on the frontdesk server and guarded by Telegram's
//! secret-token header.
//!
//! The adapter is thin: an update becomes an [`Inbound`] for the intake; answers come back
//! through the outbox, which calls [`Telegram::courier`].
//!
//! An update counts as handled only once the desk stored it: polling consumes the update
//! stream one update at a time, so the offset that confirms an update to Telegram is sent
//! only after the desk has it; a webhook call is answered 200 only then (Telegram retries
//! otherwise).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use backoff::backoff::Backoff;
use futures::future::BoxFuture;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use teloxide::payloads::SetWebhookSetters;
use teloxide::requests::Requester;
use teloxide::types::{Update, UpdateKind};
use teloxide::update_listeners::{AsUpdateStream, Polling};
use teloxide::{ApiError, Bot, RequestError};

use super::InboundError;
use crate::config::TelegramSettings;
use crate::intake::Intake;
use crate::message::{ChannelKind, Inbound};
use crate::outbox::format::Dialect;
use crate::outbox::health::ChannelHealth;
use crate::outbox::{Courier, DeliveryError};

#[path = "telegram_survey.rs"]
mod survey;

/// Path of the webhook route on the frontdesk server.
pub const WEBHOOK_PATH: &str = "/channels/telegram/webhook";
const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";
/// Below teloxide's 17 s HTTP timeout, so a quiet long poll is not mistaken for a failure.
const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// A Telegram setting that cannot be used; each names its key.
#[derive(Debug, thiserror::Error)]
pub enum TelegramConfigError {
    #[error("channels.telegram.api_url is not a URL ({source}): give a base such as http://127.0.0.1:8081")]
    ApiUrl {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("channels.telegram.webhook_url is not a URL ({source}): give the public https address of {WEBHOOK_PATH}")]
    WebhookUrl {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("channels.telegram.webhook_secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -")]
    Secret,
}

/// Webhook mode: where Telegram should POST updates, and the secret it must present.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub public_url: reqwest::Url,
    pub secret: String,
}

#[derive(Debug, Clone)]
pub struct TelegramConfig {
    pub token: String,
    /// Bot API base URL (a self-hosted Bot API server, or a fake in tests).
    pub api_url: Option<reqwest::Url>,
    pub webhook: Option<WebhookConfig>,
}

impl TelegramConfig {
    /// From `[channels.telegram]`: off (`None`) unless the token is set and not blank;
    /// webhook mode when `webhook_url` is set, with `webhook_secret` or a generated secret.
    pub fn from_settings(
        settings: &TelegramSettings,
    ) -> Result<Option<TelegramConfig>, TelegramConfigError> {
        let set = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let Some(token) = set(&settings.token) else {
            return Ok(None);
        };
        let api_url = set(&settings.api_url)
            .map(|u| {
                reqwest::Url::parse(u.trim_end_matches('/'))
                    .map_err(|e| TelegramConfigError::ApiUrl { source: e.into() })
            })
            .transpose()?;
        let webhook = match set(&settings.webhook_url) {
            None => None,
            Some(url) => {
                let public_url = reqwest::Url::parse(&url)
                    .map_err(|e| TelegramConfigError::WebhookUrl { source: e.into() })?;
                let secret = set(&settings.webhook_secret)
                    .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
                let valid = (1..=256).contains(&secret.len())
                    && secret
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !valid {
                    return Err(TelegramConfigError::Secret);
                }
                Some(WebhookConfig { public_url, secret })
            }
        };
        Ok(Some(TelegramConfig {
            token,
            api_url,
            webhook,
        }))
    }
}

/// The Telegram adapter; cheap to clone.
#[derive(Clone)]
pub struct Telegram {
    bot: Bot,
    intake: Intake,
    health: ChannelHealth,
    config: Arc<TelegramConfig>,
}

impl Telegram {
    pub fn new(config: TelegramConfig, intake: Intake, health: ChannelHealth) -> Telegram {
        let mut bot = Bot::new(&config.token);
        if let Some(url) = &config.api_url {
            bot = bot.set_api_url(url.clone());
        }
        health.starting(ChannelKind::Telegram);
        Telegram {
            bot,
            intake,
            health,
            config: Arc::new(config),
        }
    }

    /// What the outbox uses to send on Telegram.
    pub fn courier(&self) -> Arc<dyn Courier> {
        Arc::new(TelegramCourier {
            bot: self.bot.clone(),
        })
    }

    pub fn webhook_mode(&self) -> bool {
        self.config.webhook.is_some()
    }

    /// Connects and receives updates until the task is aborted: registers the webhook in
    /// webhook mode, long-polls otherwise. Failures are logged, shown in health and retried
    /// with backoff; this never returns an error.
    pub async fn run(self) {
        self.connect().await;
        if let Some(webhook) = self.config.webhook.clone() {
            self.register_webhook(&webhook).await;
            // Updates now arrive through the webhook route.
            std::future::pending::<()>().await;
        }
        let mut polling = Polling::builder(self.bot.clone())
            .timeout(POLL_TIMEOUT)
            .delete_webhook()
            .await
            .build();
        let stream = polling.as_stream();
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            match item {
                Ok(update) => {
                    self.health.connected(ChannelKind::Telegram);
                    self.handle_until_stored(update).await;
                }
                Err(e) => {
                    // The stream waits (backoff, or Telegram's retry_after) before the next call.
                    let why = describe(&e);
                    tracing::error!(error = %why, "Telegram polling failed; retrying");
                    self.health.failing(ChannelKind::Telegram, why);
                }
            }
        }
    }

    /// Waits until Telegram accepts the token (`getMe`), retrying with backoff.
    async fn connect(&self) {
        let mut backoff = retry_backoff();
        loop {
            match self.bot.get_me().await {
                Ok(me) => {
                    tracing::info!(bot = %me.user.username.as_deref().unwrap_or("?"), "Telegram connected");
                    self.health.connected(ChannelKind::Telegram);
                    return;
                }
                Err(e) => {
                    let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(60));
                    let why = describe(&e);
                    tracing::error!(error = %why, retry_in_s = wait.as_secs_f32(), "Telegram unavailable");
                    self.health.failing(ChannelKind::Telegram, why);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn register_webhook(&self, webhook: &WebhookConfig) {
        let mut backoff = retry_backoff();
        loop {
            let request = self
                .bot
                .set_webhook(webhook.public_url.clone())
                .secret_token(webhook.secret.clone());
            match request.await {
                Ok(_) => {
                    tracing::info!(url = %webhook.public_url, "Telegram webhook registered");
                    self.health.connected(ChannelKind::Telegram);
                    return;
                }
                Err(e) => {
                    let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(60));
                    let why = format!("cannot register the webhook: {}", describe(&e));
                    tracing::error!(error = %why, "Telegram webhook not registered; retrying");
                    self.health.failing(ChannelKind::Telegram, why);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Hands one update to the desk, retrying while the desk is busy or briefly unavailable,
    /// so that polling confirms it to Telegram only once it is stored.
    async fn handle_until_stored(&self, update: Update) {
        let mut backoff = retry_backoff();
        loop {
            match self.handle(update.clone()).await {
                Ok(()) => return,
                Err(e) if e.is_transient() => {
                    let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(60));
                    tracing::warn!(error = %e, "desk could not take a Telegram message yet; retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, update = update.id.0, "Telegram message refused by the desk");
                    return;
                }
            }
        }
    }

    /// Turns an update into an [`Inbound`] and gives it to the intake. Updates that are not
    /// private text messages are ignored.
    pub async fn handle(&self, update: Update) -> Result<(), InboundError> {
        if let UpdateKind::CallbackQuery(press) = &update.kind {
            return survey::on_callback(self, press).await;
        }
        let Some(inbound) = inbound_of(&update) else {
            return Ok(());
        };
        super::receive(&self.intake, inbound).await.map(|_| ())
    }

    /// The webhook route (`POST /channels/telegram/webhook`) for the server to merge. Calls
    /// without the right `X-Telegram-Bot-Api-Secret-Token` get 401; an update is answered
    /// 200 once the desk stored it, 503 when it could not (Telegram retries).
    pub fn webhook_router(&self) -> axum::Router {
        axum::Router::new()
            .route(WEBHOOK_PATH, post(webhook))
            .with_state(self.clone())
    }
}

/// Compares digests, not the strings, so timing says nothing about the secret.
fn secret_matches(given: Option<&str>, expected: &str) -> bool {
    given.is_some_and(|g| Sha256::digest(g.as_bytes()) == Sha256::digest(expected.as_bytes()))
}

async fn webhook(
    State(telegram): State<Telegram>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let Some(config) = &telegram.config.webhook else {
        return StatusCode::NOT_FOUND;
    };
    let given = headers.get(SECRET_HEADER).and_then(|v| v.to_str().ok());
    if !secret_matches(given, &config.secret) {
        tracing::warn!("Telegram webhook call without the right secret token refused");
        return StatusCode::UNAUTHORIZED;
    }
    // bytes, not a string: a body that is not UTF-8 is an unreadable update like any other,
    // answered after the secret check
    let update: Update = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => {
            // Telegram would resend it forever; nothing we can do with it.
            tracing::warn!(error = %e, "unreadable Telegram update ignored");
            return StatusCode::OK;
        }
    };
    match telegram.handle(update).await {
        Ok(()) => StatusCode::OK,
        Err(e) if e.is_transient() => {
            tracing::warn!(error = %e, "Telegram update not stored; Telegram will resend it");
            StatusCode::SERVICE_UNAVAILABLE
        }
        Err(e) => {
            tracing::warn!(error = %e, "Telegram message refused by the desk");
            StatusCode::OK
        }
    }
}

/// A private-chat text message as the desk sees it. `/start` (with or without a deep-link
/// payload) greets.
pub fn inbound_of(update: &Update) -> Option<Inbound> {
    let UpdateKind::Message(message) = &update.kind else {
        return None;
    };
    if !message.chat.is_private() {
        return None;
    }
    let text = message.text()?.trim();
    if text.is_empty() {
        return None;
    }
    let mut metadata = serde_json::Map::new();
    metadata.insert("telegram_update_id".into(), update.id.0.into());
    metadata.insert("telegram_message_id".into(), message.id.0.into());
    if let Some(username) = message.chat.username() {
        metadata.insert("telegram_username".into(), username.into());
    }
    let text = match text.split_whitespace().next() {
        Some(cmd) if cmd == "/start" || cmd.starts_with("/start@") => {
            metadata.insert("command".into(), "start".into());
            "Hello".to_string()
        }
        _ => text.to_string(),
    };
    Some(Inbound {
        channel: ChannelKind::Telegram,
        channel_user: message.chat.id.0.to_string(),
        text,
        time: message.date,
        metadata,
        profile: None,
        // unique within the chat (the channel user): an update delivered twice (webhook
        // retry, restart during polling) carries the same message id
        message_id: Some(message.id.0.to_string()),
        merged_ids: Vec::new(),
        origin: None,
    })
}

fn retry_backoff() -> backoff::ExponentialBackoff {
    backoff::ExponentialBackoff {
        initial_interval: Duration::from_millis(500),
        max_interval: Duration::from_secs(60),
        max_elapsed_time: None,
        ..Default::default()
    }
}

/// An operator-facing sentence for a Bot API failure.
fn describe(e: &RequestError) -> String {
    match e {
        RequestError::Api(ApiError::InvalidToken) => {
            "Telegram refused the bot token (401 Unauthorized): check channels.telegram.token \
             (FRONTDESK_TELEGRAM_TOKEN)"
                .into()
        }
        RequestError::Network(e) => format!("cannot reach the Telegram Bot API: {e}"),
        RequestError::RetryAfter(s) => format!("Telegram rate limit: retry after {}s", s.seconds()),
        other => format!("Telegram Bot API error: {other}"),
    }
}

struct TelegramCourier {
    bot: Bot,
}

/// Sorts a Bot API failure into retry-later or give-up.
pub fn classify(e: RequestError) -> DeliveryError {
    match e {
        RequestError::RetryAfter(s) => DeliveryError::RateLimited {
            retry_after: Some(s.duration()),
            detail: format!("Telegram asked to retry after {}s", s.seconds()),
        },
        RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => {
            DeliveryError::Retryable(describe(&e))
        }
        RequestError::Api(ApiError::InvalidToken) => DeliveryError::Retryable(describe(&e)),
        RequestError::Api(ApiError::Unknown(text))
            if !(text.starts_with("Bad Request")
                || text.starts_with("Forbidden")
                || text.starts_with("Unauthorized")) =>
        {
            // "Internal Server Error", "Bad Gateway"...: Telegram's side, try again.
            DeliveryError::Retryable(format!("Telegram: {text}"))
        }
        RequestError::Api(api) => DeliveryError::Permanent(format!("Telegram: {api}")),
        RequestError::MigrateToChatId(to) => {
            DeliveryError::Permanent(format!("Telegram: the chat moved to {}", to.0))
        }
    }
}

impl Courier for TelegramCourier {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Telegram
    }

    fn dialect(&self) -> Dialect {
        Dialect::TelegramMarkdownV2
    }

    fn send<'a>(
        &'a self,
        message: &'a crate::message::Outbound,
        text: &'a str,
        // Telegram's Bot API has no idempotency key: a piece sent again may show twice.
        _key: &'a str,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let recipient = message.channel_user.as_str();
            let chat: i64 = recipient.parse().map_err(|_| {
                DeliveryError::Permanent(format!("{recipient:?} is not a Telegram chat id"))
            })?;
            let keyboard = survey::keyboard(message);
            super::telegram_send::send_message(&self.bot, chat, text, keyboard).await
        })
    }
}
