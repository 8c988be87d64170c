//! The chat platforms inside the real `frontdesk` server: the same `start` as `frontdesk
//! serve` (with the keyword NLU: these stories are about transport, not understanding), and
//! the real teloxide and serenity clients against the fakes on 127.0.0.1. The platforms are
//! passed to the server explicitly, so parallel tests never share a token through the
//! environment.

use frontdesk::channels::platforms::PlatformsConfig;
use frontdesk::channels::telegram::WEBHOOK_PATH;
use frontdesk::config::{ChannelsConfig, TelegramSettings};
use frontdesk::message::{ChannelKind, ConversationId};

use crate::support::eventually;
use crate::support::fakes::discord::FakeDiscord;
use crate::support::fakes::telegram::{unescape, FakeTelegram};
use crate::support::fakes::ChatFake;
use crate::support::nlu::KeywordNlu;
use crate::support::scenarios::{self, conversation_of, link_code};
use crate::support::server::{config, replies, serve_with_platforms, TestServer};

const TOKEN: &str = FakeTelegram::TOKEN;
const CHAT: i64 = 5151;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_customer_gets_the_bots_answer_and_health_shows_the_channel() {
    scenarios::server_answers_and_health_shows_the_platform::<FakeTelegram>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_customer_gets_the_bots_answer_and_health_shows_the_channel() {
    scenarios::server_answers_and_health_shows_the_platform::<FakeDiscord>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_bot_shows_on_the_conversation_in_the_console() {
    let failure = scenarios::refused_delivery_shows_in_the_console::<FakeTelegram>().await;
    assert!(
        failure["error"].as_str().unwrap().contains("blocked"),
        "{failure}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_discord_dms_show_on_the_conversation_in_the_console() {
    let failure = scenarios::refused_delivery_shows_in_the_console::<FakeDiscord>().await;
    assert!(
        failure["error"].as_str().unwrap().contains("403"),
        "{failure}"
    );
}

/// The server (keyword NLU) with `[channels.telegram]` for the fake Bot API; `webhook` is
/// (public URL, secret).
async fn serve_telegram(
    dir: &std::path::Path,
    fake: &FakeTelegram,
    webhook: Option<(&str, &str)>,
) -> TestServer {
    let channels = ChannelsConfig {
        telegram: TelegramSettings {
            token: Some(TOKEN.into()),
            api_url: Some(fake.url.clone()),
            webhook_url: webhook.map(|(url, _)| url.to_string()),
            webhook_secret: webhook.map(|(_, secret)| secret.to_string()),
        },
        ..ChannelsConfig::default()
    };
    let platforms = PlatformsConfig::from_config(&channels).expect("valid channel settings");
    serve_with_platforms(config(dir), KeywordNlu, platforms).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_from_the_rest_channel_links_the_telegram_chat() {
    let fake = FakeTelegram::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let server = serve_telegram(dir.path(), &fake, None).await;

    let first = server.say("web-user-9", "hello").await;
    let web_id = ConversationId(first["conversation_id"].as_str().unwrap().to_string());
    let turn = server.say("web-user-9", "/link").await;
    let code = link_code(&replies(&turn));

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
        .await
        .unwrap()
        .is_none());

    // What the customer writes on Telegram now files under the same customer.
    fake.customer_says(CHAT, "hello again");
    let tg_id = conversation_of(&server.server.desk, ChannelKind::Telegram, CHAT as u64).await;
    let desk = &server.server.desk;
    let web = desk.conversation(&web_id).await.unwrap().unwrap();
    let tg = desk.conversation(&tg_id).await.unwrap().unwrap();
    assert_eq!(tg.customer, web.customer);

    // A used code is refused.
    let again = server.say("web-user-10", &format!("/link {code}")).await;
    assert!(replies(&again).contains("unknown or already used"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_serves_the_telegram_webhook_and_checks_its_secret() {
    let fake = FakeTelegram::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = "server-webhook-secret";
    let webhook = ("https://frontdesk.test/channels/telegram/webhook", secret);
    let server = serve_telegram(dir.path(), &fake, Some(webhook)).await;
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
    assert!(!fake.recorder().calls().contains(&"getUpdates".to_string()));
    server.shutdown().await;
}
