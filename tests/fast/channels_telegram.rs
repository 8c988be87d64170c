//! Telegram end to end: the real teloxide client against a fake Bot API on 127.0.0.1, a
//! real desk behind it. The stories Discord shares are in `support::scenarios`; what is
//! Telegram's own (MarkdownV2, long polling, the webhook) is checked here.

use frontdesk::channels::health::ChannelState;
use frontdesk::channels::platforms::PlatformsConfig;
use frontdesk::channels::telegram::{TelegramConfig, WebhookConfig, WEBHOOK_PATH};
use frontdesk::message::ChannelKind;

use crate::support::desk::TestDesk;
use crate::support::eventually;
use crate::support::fakes::discord::FakeDiscord;
use crate::support::fakes::telegram::FakeTelegram;
use crate::support::fakes::{ChatFake, Failure};
use crate::support::scenarios::{self, start_platforms};

const TOKEN: &str = FakeTelegram::TOKEN;
const CHAT: i64 = FakeTelegram::CUSTOMER as i64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_message_gets_the_bots_answer_over_long_polling() {
    let run = scenarios::customer_gets_the_bots_answer::<FakeTelegram>("/start").await;
    let greeting = run.fake.sent_to(CHAT).remove(0);
    assert_eq!(greeting.parse_mode.as_deref(), Some("MarkdownV2"));
    // Both updates were confirmed to Telegram once handled.
    eventually("the updates to be confirmed", || async {
        (run.fake.pending_updates() == 0).then_some(())
    })
    .await;
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn angry_customer_is_escalated_and_the_agents_reply_arrives_on_telegram() {
    let (run, queued, reply) = scenarios::angry_customer_gets_the_agents_reply::<FakeTelegram>(
        "I am furious, the parcel arrived broken *again*!",
        "So sorry! A replacement ships today (order #A-17).",
    )
    .await;
    assert!(
        queued.contains("\\."),
        "MarkdownV2 needs escaped full stops"
    );
    assert_eq!(
        reply,
        "*Ana*\nSo sorry\\! A replacement ships today \\(order \\#A\\-17\\)\\."
    );
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_are_retried_and_nothing_is_lost() {
    scenarios::failed_deliveries_are_retried_and_nothing_is_lost::<FakeTelegram>(&[
        Failure::RetryAfter(1),
        Failure::ServerError,
        Failure::RetryAfter(1),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_outbox_is_delivered_after_a_restart() {
    // Telegram is down for longer than this run lasts, then back on a new fake.
    scenarios::pending_outbox_is_delivered_after_a_restart::<FakeTelegram>(50, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_bot_is_recorded_as_a_failed_delivery() {
    let error =
        scenarios::refused_delivery_is_recorded_as_a_failed_delivery::<FakeTelegram>().await;
    assert!(error.contains("blocked"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_is_reported_and_retried() {
    scenarios::bad_token_is_retried_while_the_other_platform_works::<FakeTelegram, FakeDiscord>(3)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_links_discord_and_telegram_with_a_one_time_code() {
    scenarios::customer_links_two_platforms_with_a_one_time_code::<FakeDiscord, FakeTelegram>()
        .await;
}

/// The webhook secret of [`webhook_config`].
const SECRET: &str = "s3cret-token_for_tests";

/// Telegram on `fake` with the webhook on (secret [`SECRET`]).
fn webhook_config(fake: &FakeTelegram) -> PlatformsConfig {
    PlatformsConfig {
        telegram: Some(TelegramConfig {
            token: TOKEN.into(),
            api_url: Some(fake.url.parse().unwrap()),
            webhook: Some(WebhookConfig {
                public_url: "https://frontdesk.test/channels/telegram/webhook"
                    .parse()
                    .unwrap(),
                secret: SECRET.into(),
            }),
        }),
        discord: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_calls_without_the_right_secret_are_refused() {
    let fake = FakeTelegram::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = TestDesk::new().open_with_store(dir.path());
    let secret = SECRET;
    let platforms = start_platforms(&desk, &store, webhook_config(&fake), None).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    eprintln!(
        "calls {:?} health {:?}",
        fake.recorder().calls(),
        platforms.health().snapshot()
    );
    let registered = eventually("the webhook to be registered", || async { fake.webhook() }).await;
    assert_eq!(registered.1.as_deref(), Some(secret));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = platforms.router();
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let url = format!("http://{addr}{WEBHOOK_PATH}");
    let client = reqwest::Client::new();

    let update = fake.webhook_update(CHAT, "hello");
    let no_secret = client.post(&url).json(&update).send().await.unwrap();
    assert_eq!(no_secret.status(), 401);
    let wrong = client
        .post(&url)
        .header("X-Telegram-Bot-Api-Secret-Token", "guess")
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(desk
        .conversation_of(ChannelKind::Telegram, &CHAT.to_string())
        .await
        .unwrap()
        .is_none());

    let right = client
        .post(&url)
        .header("X-Telegram-Bot-Api-Secret-Token", secret)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    // Answered 200 only once stored.
    assert!(desk
        .conversation_of(ChannelKind::Telegram, &CHAT.to_string())
        .await
        .unwrap()
        .is_some());
    fake.wait_for_messages(CHAT, 1).await;
    assert!(!fake.recorder().calls().contains(&"getUpdates".to_string()));
    server.abort();
    platforms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_bot_api_is_reported_as_a_network_failure() {
    // A port nobody listens on: connection refused, as when the network is down.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = TestDesk::new().open_with_store(dir.path());
    let config = PlatformsConfig {
        telegram: Some(TelegramConfig {
            token: TOKEN.into(),
            api_url: Some(format!("http://127.0.0.1:{port}").parse().unwrap()),
            webhook: None,
        }),
        discord: None,
    };
    let platforms = start_platforms(&desk, &store, config, None).await;
    let status = eventually("Telegram to be reported failing", || async {
        platforms
            .health()
            .get(ChannelKind::Telegram)
            .filter(|s| s.state == ChannelState::Failing)
    })
    .await;
    let error = status.error.unwrap();
    assert!(
        error.contains("cannot reach the Telegram Bot API"),
        "{error}"
    );
    platforms.shutdown().await;
}

/// A Bot API that fails the first sendMessage with 500: the answer to a webhook update is
/// sent again at the courier's first backoff (about half a second, as the log says), not
/// after a stall of seconds. (The limit below only tells a stall from a retry.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_is_retried_at_its_logged_backoff() {
    let fake = FakeTelegram::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = TestDesk::new().open_with_store(dir.path());
    let secret = SECRET;
    let platforms = start_platforms(&desk, &store, webhook_config(&fake), None).await;
    eventually("the webhook to be registered", || async { fake.webhook() }).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = platforms.router();
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = reqwest::Client::new();
    fake.recorder().fail_next(&[Failure::ServerError]);
    let update = fake.webhook_update(CHAT, "hello");
    let sent_at = std::time::Instant::now();
    let right = client
        .post(format!("http://{addr}{WEBHOOK_PATH}"))
        .header("X-Telegram-Bot-Api-Secret-Token", secret)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    fake.wait_for_messages(CHAT, 1).await;
    let took = sent_at.elapsed();
    eprintln!(
        "answer delivered {} ms after the update (one 500 first)",
        took.as_millis()
    );
    assert!(fake.recorder().attempts() >= 2);
    assert!(
        took < std::time::Duration::from_secs(4),
        "the retry stalled: {took:?} (the first backoff is about 0.5 s)"
    );
    server.abort();
    platforms.shutdown().await;
}
