//! Discord end to end: the real serenity client (REST and gateway) against a fake Discord on
//! 127.0.0.1, a real desk behind it.

mod fakes;

use std::sync::Arc;

use fakes::discord::{unescape, FakeDiscord};
use fakes::telegram::FakeTelegram;
use fakes::{desk, eventually, Failure};
use frontdesk::channels::discord::DiscordConfig;
use frontdesk::channels::health::{ChannelHealth, ChannelState};
use frontdesk::channels::platforms::{Platforms, PlatformsConfig};
use frontdesk::channels::telegram::TelegramConfig;
use frontdesk::desk::Desk;
use frontdesk::intake::Intake;
use frontdesk::message::{ChannelKind, ConversationId, Speaker, Status};
use frontdesk::store::SledStore;

const TOKEN: &str = "discord-test-token";
const USER: u64 = 555_000_000_000_000_042;
const SUPPORT: u64 = 920_000_000_000_000_007;
const DIRECT_MESSAGES: u64 = 1 << 12;
const MESSAGE_CONTENT: u64 = 1 << 15;

fn discord(fake: &FakeDiscord, token: &str, support: &[u64]) -> Option<DiscordConfig> {
    Some(DiscordConfig {
        token: token.into(),
        api_url: Some(fake.url.clone()),
        support_channels: support.to_vec(),
    })
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
    .expect("start the channels")
}

async fn start_discord(
    desk: &Desk,
    store: &Arc<SledStore>,
    fake: &FakeDiscord,
    support: &[u64],
) -> Platforms {
    let config = PlatformsConfig {
        telegram: None,
        discord: discord(fake, TOKEN, support),
    };
    start(desk, store, config).await
}

async fn conversation_of(desk: &Desk, user: u64) -> ConversationId {
    eventually("the desk to open a conversation for the user", || async {
        desk.conversation_of(ChannelKind::Discord, &user.to_string())
            .unwrap()
    })
    .await
}

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
async fn direct_message_gets_the_bots_answer() {
    let fake = FakeDiscord::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = desk::open(dir.path());
    let platforms = start_discord(&desk, &store, &fake, &[]).await;

    let intents = fake.wait_for_identify().await;
    assert_ne!(
        intents & DIRECT_MESSAGES,
        0,
        "DMs need the DIRECT_MESSAGES intent"
    );
    assert_eq!(
        intents & MESSAGE_CONTENT,
        0,
        "no privileged intent without support channels"
    );

    let dm = fake.dm_from(USER, "hello");
    let answer = fake.wait_for_messages(dm, 1).await.remove(0);
    let id = conversation_of(&desk, USER).await;
    assert_eq!(unescape(&answer.content), bot_messages(&desk, &id)[0]);
    assert_eq!(
        answer.allowed_mentions["parse"],
        serde_json::json!([]),
        "bot messages never ping anyone"
    );
    assert_eq!(
        platforms.health().get(ChannelKind::Discord).unwrap().state,
        ChannelState::Connected
    );
    platforms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_channel_customer_gets_their_own_thread() {
    let fake = FakeDiscord::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = desk::open(dir.path());
    let platforms = start_discord(&desk, &store, &fake, &[SUPPORT]).await;
    let intents = fake.wait_for_identify().await;
    assert_ne!(
        intents & MESSAGE_CONTENT,
        0,
        "guild text needs MESSAGE_CONTENT"
    );

    fake.guild_message(SUPPORT, USER, "where is my order?");
    let thread = fake.wait_for_thread(SUPPORT).await;
    let asked = fake.wait_for_messages(thread.id, 1).await.remove(0);
    assert!(
        unescape(&asked.content).contains("order number"),
        "{}",
        asked.content
    );
    assert!(
        fake.sent_in(SUPPORT).is_empty(),
        "answers go to the thread, not the channel"
    );

    // The customer answers in their thread; someone else chatting there is not a customer.
    fake.guild_message(thread.id, USER, "hello again");
    fake.guild_message(thread.id, USER + 1, "staff note: checking the warehouse");
    fake.wait_for_messages(thread.id, 2).await;
    let id = conversation_of(&desk, USER).await;
    let customer_messages = desk
        .conversation(&id)
        .unwrap()
        .unwrap()
        .messages
        .iter()
        .filter(|m| m.from == Speaker::Customer)
        .count();
    assert_eq!(customer_messages, 2);
    assert_eq!(fake.threads().len(), 1, "one thread per customer");
    platforms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn angry_customer_is_escalated_and_the_agents_reply_arrives_on_discord() {
    let fake = FakeDiscord::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = desk::open(dir.path());
    let platforms = start_discord(&desk, &store, &fake, &[]).await;

    let dm = fake.dm_from(USER, "I am furious: third broken parcel in a row");
    fake.wait_for_message(dm, |t| t.contains("number 1 in the queue"))
        .await;
    let id = conversation_of(&desk, USER).await;
    assert_eq!(
        desk.conversation(&id).unwrap().unwrap().status,
        Status::Queued
    );

    desk.claim(desk::AGENT, &id).await.unwrap();
    desk.agent_reply(
        desk::AGENT,
        &id,
        "Sorry! *Two* new parcels ship today, @everyone.",
    )
    .await
    .unwrap();
    let reply = fake
        .wait_for_message(dm, |t| t.contains("new parcels ship today"))
        .await;
    assert_eq!(
        reply.content,
        "**Ana**\nSorry! \\*Two\\* new parcels ship today, \\@everyone."
    );
    platforms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_are_retried_and_nothing_is_lost() {
    let fake = FakeDiscord::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = desk::open(dir.path());
    fake.fail_sends(&[
        Failure::RetryAfter(1),
        Failure::ServerError,
        Failure::ServerError,
    ]);
    let platforms = start_discord(&desk, &store, &fake, &[]).await;

    let dm = fake.dm_from(USER, "hello");
    fake.dm_from(USER, "where is my order?");
    let sent = fake.wait_for_messages(dm, 2).await;
    let id = conversation_of(&desk, USER).await;
    let got: Vec<String> = sent.iter().map(|s| unescape(&s.content)).collect();
    assert_eq!(
        got,
        bot_messages(&desk, &id),
        "every answer, once, in order"
    );
    assert_eq!(fake.send_attempts(), 2 + 3);
    platforms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_outbox_is_delivered_after_a_restart() {
    let fake = FakeDiscord::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = desk::open(dir.path());
    fake.fail_sends(&[Failure::ServerError; 200]);
    let platforms = start_discord(&desk, &store, &fake, &[]).await;
    let dm = fake.dm_from(USER, "hello");
    eventually("the answer to wait in the outbox", || async {
        (fake.send_attempts() >= 2
            && platforms
                .outbox()
                .pending(ChannelKind::Discord)
                .unwrap()
                .len()
                == 1)
            .then_some(())
    })
    .await;
    platforms.shutdown().await;
    assert!(fake.sent_in(dm).is_empty());

    fake.clear_failures();
    let platforms = start_discord(&desk, &store, &fake, &[]).await;
    let delivered = fake.wait_for_messages(dm, 1).await;
    let id = conversation_of(&desk, USER).await;
    assert_eq!(unescape(&delivered[0].content), bot_messages(&desk, &id)[0]);
    platforms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_who_closed_their_dms_is_recorded_as_a_failed_delivery() {
    let fake = FakeDiscord::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = desk::open(dir.path());
    let platforms = start_discord(&desk, &store, &fake, &[]).await;
    fake.close_dms(USER);
    fake.dm_from(USER, "hello");
    let id = conversation_of(&desk, USER).await;
    let failures = eventually("the refusal to be recorded", || async {
        let f = platforms.outbox().failures(&id).unwrap();
        (!f.is_empty()).then_some(f)
    })
    .await;
    assert!(failures[0].error.contains("403"), "{}", failures[0].error);
    platforms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_discord_token_is_retried_while_telegram_keeps_working() {
    let discord_fake = FakeDiscord::start(TOKEN).await;
    let telegram_fake = FakeTelegram::start("1:tg").await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = desk::open(dir.path());
    let config = PlatformsConfig {
        telegram: Some(TelegramConfig {
            token: "1:tg".into(),
            api_url: Some(telegram_fake.url.parse().unwrap()),
            webhook: None,
        }),
        discord: discord(&discord_fake, "wrong-token", &[]),
    };
    let platforms = start(&desk, &store, config).await;

    discord_fake.wait_for_refused_identifies(2).await;
    let status = platforms.health().get(ChannelKind::Discord).unwrap();
    assert_eq!(status.state, ChannelState::Failing);
    assert!(
        status
            .error
            .as_deref()
            .unwrap_or("")
            .contains("FRONTDESK_DISCORD_TOKEN"),
        "{status:?}"
    );

    telegram_fake.customer_says(77, "hello");
    telegram_fake.wait_for_messages(77, 1).await;
    assert_eq!(
        platforms.health().get(ChannelKind::Telegram).unwrap().state,
        ChannelState::Connected
    );
    platforms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_links_telegram_and_discord_with_a_one_time_code() {
    let discord_fake = FakeDiscord::start(TOKEN).await;
    let telegram_fake = FakeTelegram::start("1:tg").await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = desk::open(dir.path());
    let config = PlatformsConfig {
        telegram: Some(TelegramConfig {
            token: "1:tg".into(),
            api_url: Some(telegram_fake.url.parse().unwrap()),
            webhook: None,
        }),
        discord: discord(&discord_fake, TOKEN, &[]),
    };
    let platforms = start(&desk, &store, config).await;

    // Started on Telegram...
    telegram_fake.customer_says(77, "hello");
    telegram_fake.wait_for_messages(77, 1).await;
    telegram_fake.customer_says(77, "/link");
    let code_message = telegram_fake
        .wait_for_message(77, |t| t.contains("link code"))
        .await;
    let text = fakes::telegram::unescape(&code_message.text);
    let code: String = text
        .split_whitespace()
        .find(|w| {
            w.trim_end_matches('.').len() == 6 && w.chars().take(6).all(|c| c.is_ascii_digit())
        })
        .expect("a six-digit code")
        .chars()
        .take(6)
        .collect();

    // ...a wrong code from Discord is refused...
    let dm = discord_fake.dm_from(USER, "/link 000000x");
    discord_fake
        .wait_for_message(dm, |t| t.contains("could not link"))
        .await;
    // ...the right one links, once.
    discord_fake.dm_from(USER, &format!("/link {code}"));
    discord_fake
        .wait_for_message(dm, |t| t.contains("Done"))
        .await;
    discord_fake.dm_from(USER, "where is my order?");
    discord_fake
        .wait_for_message(dm, |t| t.contains("order number"))
        .await;

    let on_telegram = desk
        .conversation(
            &desk
                .conversation_of(ChannelKind::Telegram, "77")
                .unwrap()
                .unwrap(),
        )
        .unwrap()
        .unwrap();
    let on_discord = desk
        .conversation(&conversation_of(&desk, USER).await)
        .unwrap()
        .unwrap();
    assert_eq!(on_discord.customer, on_telegram.customer, "one customer");
    // Link commands never reach the conversation itself.
    assert!(on_discord
        .messages
        .iter()
        .all(|m| !m.text.contains("/link")));
    platforms.shutdown().await;
}
