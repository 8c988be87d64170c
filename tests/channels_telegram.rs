//! Telegram end to end: the real teloxide client against a fake Bot API on 127.0.0.1, a
//! real desk behind it.

mod fakes;

use std::sync::Arc;

use fakes::telegram::{unescape, FakeTelegram};
use fakes::{desk, eventually, Failure};
use frontdesk::channels::health::{ChannelHealth, ChannelState};
use frontdesk::channels::platforms::{Platforms, PlatformsConfig};
use frontdesk::channels::telegram::{TelegramConfig, WebhookConfig, WEBHOOK_PATH};
use frontdesk::desk::Desk;
use frontdesk::intake::Intake;
use frontdesk::message::{ChannelKind, ConversationId, Speaker, Status};
use frontdesk::store::SledStore;

const TOKEN: &str = "123456:test-token";
const CHAT: i64 = 4242;

fn polling(fake: &FakeTelegram, token: &str) -> PlatformsConfig {
    PlatformsConfig {
        telegram: Some(TelegramConfig {
            token: token.into(),
            api_url: Some(fake.url.parse().unwrap()),
            webhook: None,
        }),
        discord: None,
    }
}

/// The platforms on the desk's own store, messages through the intake.
async fn start(desk: &Desk, store: &Arc<SledStore>, config: PlatformsConfig) -> Platforms {
    Platforms::start(
        Intake::new(desk.clone()),
        store.clone(),
        config,
        ChannelHealth::new(),
        None,
    )
    .await
    .expect("start the Telegram channel")
}

async fn conversation_of(desk: &Desk, chat: i64) -> ConversationId {
    eventually("the desk to open a conversation for the chat", || async {
        desk.conversation_of(ChannelKind::Telegram, &chat.to_string())
            .unwrap()
    })
    .await
}

/// The bot's messages in a conversation, as stored by the desk.
fn bot_messages(desk: &Desk, id: &ConversationId) -> Vec<String> {
    desk.conversation(id)
        .unwrap()
        .unwrap()
        .messages
        .into_iter()
        .filter(|m| m.from == Speaker::Bot)
        .map(|m| m.text)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_message_gets_the_bots_answer_over_long_polling() {
    let fake = FakeTelegram::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = desk::open(dir.path());
    let platforms = start(&desk, &store, polling(&fake, TOKEN)).await;

    fake.customer_says(CHAT, "/start");
    let greeting = fake.wait_for_messages(CHAT, 1).await.remove(0);
    let id = conversation_of(&desk, CHAT).await;
    assert_eq!(greeting.parse_mode.as_deref(), Some("MarkdownV2"));
    assert_eq!(unescape(&greeting.text), bot_messages(&desk, &id)[0]);

    fake.customer_says(CHAT, "where is my order?");
    let answer = fake.wait_for_messages(CHAT, 2).await.remove(1);
    assert!(
        unescape(&answer.text).contains("order number"),
        "the bot should ask for the order number, said {:?}",
        answer.text
    );
    // Both updates were confirmed to Telegram once handled.
    eventually("the updates to be confirmed", || async {
        (fake.pending_updates() == 0).then_some(())
    })
    .await;
    assert_eq!(
        platforms.health().get(ChannelKind::Telegram).unwrap().state,
        ChannelState::Connected
    );
    platforms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn angry_customer_is_escalated_and_the_agents_reply_arrives_on_telegram() {
    let fake = FakeTelegram::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = desk::open(dir.path());
    let platforms = start(&desk, &store, polling(&fake, TOKEN)).await;

    fake.customer_says(CHAT, "I am furious, the parcel arrived broken *again*!");
    let queued = fake
        .wait_for_message(CHAT, |t| t.contains("number 1 in the queue"))
        .await;
    assert!(
        queued.text.contains("\\."),
        "MarkdownV2 needs escaped full stops"
    );
    let id = conversation_of(&desk, CHAT).await;
    let conversation = desk.conversation(&id).unwrap().unwrap();
    assert_eq!(conversation.status, Status::Queued);
    assert_eq!(conversation.queue.as_deref(), Some("angry"));

    desk.claim(desk::AGENT, &id).await.unwrap();
    desk.agent_reply(
        desk::AGENT,
        &id,
        "So sorry! A replacement ships today (order #A-17).",
    )
    .await
    .unwrap();
    let reply = fake
        .wait_for_message(CHAT, |t| t.contains("replacement ships today"))
        .await;
    assert_eq!(
        reply.text,
        "*Ana*\nSo sorry\\! A replacement ships today \\(order \\#A\\-17\\)\\."
    );
    platforms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_are_retried_and_nothing_is_lost() {
    let fake = FakeTelegram::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = desk::open(dir.path());
    fake.fail_sends(&[
        Failure::RetryAfter(1),
        Failure::ServerError,
        Failure::RetryAfter(1),
    ]);
    let platforms = start(&desk, &store, polling(&fake, TOKEN)).await;

    fake.customer_says(CHAT, "hello");
    fake.customer_says(CHAT, "where is my order?");
    let sent = fake.wait_for_messages(CHAT, 2).await;
    let id = conversation_of(&desk, CHAT).await;
    let expected = bot_messages(&desk, &id);
    let got: Vec<String> = sent.iter().map(|s| unescape(&s.text)).collect();
    assert_eq!(got, expected, "every answer, once, in order");
    assert_eq!(fake.send_attempts(), 2 + 3);
    eventually("the outbox to empty", || async {
        platforms
            .outbox()
            .pending(ChannelKind::Telegram)
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    platforms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_outbox_is_delivered_after_a_restart() {
    let fake = FakeTelegram::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = desk::open(dir.path());
    // Telegram is down for longer than this run lasts.
    fake.fail_sends(&[Failure::ServerError; 50]);
    let platforms = start(&desk, &store, polling(&fake, TOKEN)).await;
    fake.customer_says(CHAT, "hello");
    eventually("the answer to wait in the outbox", || async {
        (fake.send_attempts() >= 1
            && platforms
                .outbox()
                .pending(ChannelKind::Telegram)
                .unwrap()
                .len()
                == 1)
            .then_some(())
    })
    .await;
    platforms.shutdown().await;
    assert!(fake.sent_to(CHAT).is_empty());

    // Telegram is back; frontdesk restarts with the same data folder.
    let fake_back = FakeTelegram::start(TOKEN).await;
    let platforms = start(&desk, &store, polling(&fake_back, TOKEN)).await;
    let delivered = fake_back.wait_for_messages(CHAT, 1).await;
    let id = conversation_of(&desk, CHAT).await;
    assert_eq!(unescape(&delivered[0].text), bot_messages(&desk, &id)[0]);
    platforms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_calls_without_the_right_secret_are_refused() {
    let fake = FakeTelegram::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = desk::open(dir.path());
    let secret = "s3cret-token_for_tests";
    let config = PlatformsConfig {
        telegram: Some(TelegramConfig {
            token: TOKEN.into(),
            api_url: Some(fake.url.parse().unwrap()),
            webhook: Some(WebhookConfig {
                public_url: "https://frontdesk.test/channels/telegram/webhook"
                    .parse()
                    .unwrap(),
                secret: secret.into(),
            }),
        }),
        discord: None,
    };
    let platforms = start(&desk, &store, config).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    eprintln!(
        "calls {:?} health {:?}",
        fake.calls(),
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
        .unwrap()
        .is_some());
    fake.wait_for_messages(CHAT, 1).await;
    assert!(!fake.calls().contains(&"getUpdates".to_string()));
    server.abort();
    platforms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_bot_is_recorded_as_a_failed_delivery() {
    let fake = FakeTelegram::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = desk::open(dir.path());
    let (tx, mut reported) = tokio::sync::mpsc::unbounded_channel();
    let hook: frontdesk::channels::outbox::FailureHook = Arc::new(move |failed| {
        let _ = tx.send(failed);
        Box::pin(async {})
    });
    let platforms = Platforms::start(
        Intake::new(desk.clone()),
        store.clone(),
        polling(&fake, TOKEN),
        ChannelHealth::new(),
        Some(hook),
    )
    .await
    .unwrap();
    fake.block(CHAT);
    fake.customer_says(CHAT, "hello");
    let id = conversation_of(&desk, CHAT).await;
    let failures = eventually("the refusal to be recorded", || async {
        let f = platforms.outbox().failures(&id).unwrap();
        (!f.is_empty()).then_some(f)
    })
    .await;
    assert!(
        failures[0].error.contains("blocked"),
        "{}",
        failures[0].error
    );
    let hooked = reported.recv().await.unwrap();
    assert_eq!(hooked.message.conversation_id, id);
    let health = platforms.health().get(ChannelKind::Telegram).unwrap();
    assert_eq!(health.failed_deliveries, 1);
    assert!(platforms
        .outbox()
        .pending(ChannelKind::Telegram)
        .unwrap()
        .is_empty());
    platforms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_is_reported_and_retried() {
    let fake = FakeTelegram::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = desk::open(dir.path());
    let platforms = start(&desk, &store, polling(&fake, "999:wrong")).await;
    let status = eventually("Telegram to be reported failing", || async {
        platforms
            .health()
            .get(ChannelKind::Telegram)
            .filter(|s| s.state == ChannelState::Failing)
    })
    .await;
    let error = status.error.unwrap();
    assert!(error.contains("FRONTDESK_TELEGRAM_TOKEN"), "{error}");
    // Retried with backoff, not given up.
    fake.wait_for_rejected(3).await;
    assert_eq!(
        platforms.health().get(ChannelKind::Telegram).unwrap().state,
        ChannelState::Failing
    );
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
    let (desk, store) = desk::open(dir.path());
    let config = PlatformsConfig {
        telegram: Some(TelegramConfig {
            token: TOKEN.into(),
            api_url: Some(format!("http://127.0.0.1:{port}").parse().unwrap()),
            webhook: None,
        }),
        discord: None,
    };
    let platforms = start(&desk, &store, config).await;
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
