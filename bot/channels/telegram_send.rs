//! Telegram's `sendMessage` for the outbox courier (see [`send_message`] for why it is not
//! teloxide's own request).

use std::sync::Arc;

use teloxide::types::{ChatId, ParseMode};
use teloxide::{ApiError, Bot, RequestError};

use super::telegram::classify;
use crate::outbox::DeliveryError;

/// What the Bot API answers to a call: `{"ok": true, ...}` or the error with its
/// description and parameters.
#[derive(serde::Deserialize)]
struct BotAnswer {
    ok: bool,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<BotAnswerParameters>,
}

#[derive(serde::Deserialize)]
struct BotAnswerParameters {
    #[serde(default)]
    retry_after: Option<u32>,
    #[serde(default)]
    migrate_to_chat_id: Option<i64>,
}

/// `sendMessage` with MarkdownV2, posted with the bot's own client, URL and teloxide's
/// payload, its answer read into teloxide's error types. Not through teloxide's request:
/// teloxide-core sleeps 10 s inside every request that gets a 5xx (`DELAY_ON_SERVER_ERROR`
/// in its `net/request.rs`) before it returns, so one "500" stalled a chat 10 s on top of the
/// outbox's own per-chat backoff (0.5 s first), which is what the log reported. The outbox
/// decides when to try again; the call returns as soon as the answer is read.
/// `keyboard`: the buttons under the message (a survey question's answers).
pub(super) async fn send_message(
    bot: &Bot,
    chat: i64,
    text: &str,
    keyboard: Option<teloxide::types::InlineKeyboardMarkup>,
) -> Result<(), DeliveryError> {
    use teloxide::payloads::SendMessage;
    use teloxide::types::Seconds;
    let mut url = bot.api_url();
    url.path_segments_mut()
        .map_err(|_| DeliveryError::Permanent("the Telegram API URL cannot take a path".into()))?
        .pop_if_empty()
        .push(&format!("bot{}", bot.token()))
        .push("sendMessage");
    let mut payload = SendMessage::new(ChatId(chat), text);
    payload.parse_mode = Some(ParseMode::MarkdownV2);
    payload.reply_markup = keyboard.map(teloxide::types::ReplyMarkup::InlineKeyboard);
    let network = |e: reqwest::Error| classify(RequestError::Network(Arc::new(e)));
    let response = bot
        .client()
        .post(url)
        .json(&payload)
        .send()
        .await
        .map_err(network)?;
    let status = response.status();
    let body = response.text().await.map_err(network)?;
    let answer: BotAnswer = match serde_json::from_str(&body) {
        Ok(a) => a,
        // A proxy's HTML error page: Telegram's side or the way there, try again.
        Err(_) if status.is_server_error() => {
            return Err(DeliveryError::Retryable(format!("Telegram: HTTP {status}")))
        }
        Err(e) => {
            return Err(classify(RequestError::InvalidJson {
                source: Arc::new(e),
                raw: body.into_boxed_str(),
            }))
        }
    };
    if answer.ok {
        return Ok(());
    }
    let parameters = answer.parameters.unwrap_or(BotAnswerParameters {
        retry_after: None,
        migrate_to_chat_id: None,
    });
    if let Some(secs) = parameters.retry_after {
        return Err(classify(RequestError::RetryAfter(Seconds::from_seconds(
            secs,
        ))));
    }
    if let Some(to) = parameters.migrate_to_chat_id {
        return Err(classify(RequestError::MigrateToChatId(ChatId(to))));
    }
    let description = answer
        .description
        .unwrap_or_else(|| format!("HTTP {status}"));
    let api = serde_json::from_value::<ApiError>(serde_json::Value::String(description.clone()))
        .unwrap_or(ApiError::Unknown(description));
    Err(classify(RequestError::Api(api)))
}
