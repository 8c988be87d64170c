//! The chat platforms inside the real `frontdesk` server: the same `start` as `frontdesk
//! serve`, the real NLU, and the real teloxide client against a fake Telegram Bot API on
//! 127.0.0.1. The platforms are passed to the server explicitly, so parallel tests never
//! share a token through the environment.

mod common;
mod fakes;

use common::{nlu, TestServer, ANA};
use fakes::eventually;
use fakes::telegram::{unescape, FakeTelegram};
use frontdesk::app::start_with_platforms;
use frontdesk::channels::platforms::PlatformsConfig;
use frontdesk::channels::telegram::WEBHOOK_PATH;
use frontdesk::config::{ChannelsConfig, TelegramSettings};
use frontdesk::message::{ChannelKind, ConversationId};
use serde_json::Value;
use std::path::Path;

const TOKEN: &str = "777000:server-test-token";
const CHAT: i64 = 5151;

/// `[channels.telegram]` for the fake Bot API; `webhook` is (public URL, secret).
fn telegram(fake: &FakeTelegram, webhook: Option<(&str, &str)>) -> ChannelsConfig {
    ChannelsConfig {
        telegram: TelegramSettings {
            token: Some(TOKEN.into()),
            api_url: Some(fake.url.clone()),
            webhook_url: webhook.map(|(url, _)| url.to_string()),
            webhook_secret: webhook.map(|(_, secret)| secret.to_string()),
        },
        ..ChannelsConfig::default()
    }
}

async fn serve(dir: &Path, channels: ChannelsConfig) -> TestServer {
    let platforms = PlatformsConfig::from_config(&channels).expect("valid channel settings");
    let server = start_with_platforms(common::config(dir), nlu(), platforms)
        .await
        .expect("server starts with the Telegram channel");
    let url = server.url();
    TestServer {
        server,
        url,
        http: reqwest::Client::new(),
    }
}

async fn health(server: &TestServer) -> Value {
    let res = server.http.get(server.at("/health")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    res.json().await.unwrap()
}

async fn conversation_of(server: &TestServer, chat: i64) -> ConversationId {
    eventually("a conversation for the Telegram chat", || async {
        server
            .server
            .desk
            .conversation_of(ChannelKind::Telegram, &chat.to_string())
            .unwrap()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_customer_gets_the_bots_answer_and_health_shows_the_channel() {
    let fake = FakeTelegram::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), telegram(&fake, None)).await;

    fake.customer_says(CHAT, "where is my order?");
    let answer = fake
        .wait_for_message(CHAT, |t| unescape(t).contains("order number"))
        .await;
    let id = conversation_of(&server, CHAT).await;
    let stored = server.server.desk.conversation(&id).unwrap().unwrap();
    assert!(stored
        .messages
        .iter()
        .any(|m| m.text == unescape(&answer.text)));

    let body = eventually("/health to show Telegram connected", || async {
        let body = health(&server).await;
        (body["components"]["channels"]["telegram"]["state"] == "connected").then_some(body)
    })
    .await;
    assert_eq!(
        body["components"]["channels"]["telegram"]["failed_deliveries"],
        0
    );
    assert!(body["components"]["channels"].get("discord").is_none());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_from_the_rest_channel_links_the_telegram_chat() {
    let fake = FakeTelegram::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), telegram(&fake, None)).await;

    let first = server.say("web-user-9", "hello").await;
    let web_id = ConversationId(first["conversation_id"].as_str().unwrap().to_string());
    let turn = server.say("web-user-9", "/link").await;
    let text = common::replies(&turn);
    let code: String = text
        .split_whitespace()
        .find(|w| {
            w.trim_end_matches('.').len() == 6 && w.chars().take(6).all(|c| c.is_ascii_digit())
        })
        .map(|w| w.trim_end_matches('.').to_string())
        .unwrap_or_else(|| panic!("no six-digit code in {text:?}"));

    fake.customer_says(CHAT, &format!("/link {code}"));
    let done = fake
        .wait_for_message(CHAT, |t| unescape(t).contains("linked"))
        .await;
    assert!(
        unescape(&done.text).contains("rest account"),
        "{}",
        done.text
    );
    // The link command never reached the desk as a customer message.
    assert!(server
        .server
        .desk
        .conversation_of(ChannelKind::Telegram, &CHAT.to_string())
        .unwrap()
        .is_none());

    // What the customer writes on Telegram now files under the same customer.
    fake.customer_says(CHAT, "hello again");
    let tg_id = conversation_of(&server, CHAT).await;
    let desk = &server.server.desk;
    let web = desk.conversation(&web_id).unwrap().unwrap();
    let tg = desk.conversation(&tg_id).unwrap().unwrap();
    assert_eq!(tg.customer, web.customer);

    // A used code is refused.
    let again = server.say("web-user-10", &format!("/link {code}")).await;
    assert!(common::replies(&again).contains("unknown or already used"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_bot_shows_on_the_conversation_in_the_console() {
    let fake = FakeTelegram::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), telegram(&fake, None)).await;

    fake.block(CHAT);
    fake.customer_says(CHAT, "where is my order?");
    let id = conversation_of(&server, CHAT).await;
    let agent = server.login(ANA).await;
    let path = format!("/console/api/conversations/{}", id.0);
    let failure = eventually("the refused reply on the conversation", || async {
        let (status, body) = agent.get(&path).await;
        assert_eq!(status, 200, "{body}");
        body["delivery_failures"]
            .as_array()
            .and_then(|f| f.first().cloned())
    })
    .await;
    assert_eq!(failure["channel"], "telegram");
    assert!(
        failure["error"].as_str().unwrap().contains("blocked"),
        "{failure}"
    );
    assert!(failure["text"].as_str().unwrap().contains("order number"));
    let body = health(&server).await;
    assert_eq!(
        body["components"]["channels"]["telegram"]["failed_deliveries"],
        1
    );
    assert!(fake.sent_to(CHAT).is_empty());
    server.shutdown().await;

    // The record outlives a restart.
    let server = serve(dir.path(), ChannelsConfig::default()).await;
    let stored = server.server.desk.conversation(&id).unwrap().unwrap();
    assert_eq!(stored.delivery_failures.len(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_serves_the_telegram_webhook_and_checks_its_secret() {
    let fake = FakeTelegram::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = "server-webhook-secret";
    let webhook = ("https://frontdesk.test/channels/telegram/webhook", secret);
    let server = serve(dir.path(), telegram(&fake, Some(webhook))).await;
    eventually("the webhook to be registered", || async { fake.webhook() }).await;

    let url = server.at(WEBHOOK_PATH);
    let update = fake.webhook_update(CHAT, "where is my order?");
    let refused = server.http.post(&url).json(&update).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let accepted = server
        .http
        .post(&url)
        .header("X-Telegram-Bot-Api-Secret-Token", secret)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status().as_u16(), 200);
    fake.wait_for_message(CHAT, |t| unescape(t).contains("order number"))
        .await;
    assert!(!fake.calls().contains(&"getUpdates".to_string()));
    server.shutdown().await;
}
