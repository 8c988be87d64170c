//! Discord end to end: the real serenity client (REST and gateway) against a fake Discord on
//! 127.0.0.1, a real desk behind it. The stories Telegram shares are in
//! `support::scenarios`; what is Discord's own (intents, mentions, support-channel threads)
//! is checked here.

use frontdesk::channels::discord::DiscordConfig;
use frontdesk::channels::platforms::PlatformsConfig;
use frontdesk::message::{ChannelKind, Speaker};

use crate::support::desk::TestDesk;
use crate::support::fakes::discord::{unescape, FakeDiscord};
use crate::support::fakes::telegram::FakeTelegram;
use crate::support::fakes::{ChatFake, Failure};
use crate::support::scenarios::{self, conversation_of, start_platforms};

const TOKEN: &str = FakeDiscord::TOKEN;
const USER: u64 = FakeDiscord::CUSTOMER;
const SUPPORT: u64 = 920_000_000_000_000_007;
const DIRECT_MESSAGES: u64 = 1 << 12;
const MESSAGE_CONTENT: u64 = 1 << 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_message_gets_the_bots_answer() {
    let run = scenarios::customer_gets_the_bots_answer::<FakeDiscord>("hello").await;
    let intents = run.fake.wait_for_identify().await;
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
    let dm = run.fake.dm_channel_of(USER);
    for answer in run.fake.sent_in(dm) {
        assert_eq!(
            answer.allowed_mentions["parse"],
            serde_json::json!([]),
            "bot messages never ping anyone"
        );
    }
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_channel_customer_gets_their_own_thread() {
    let fake = FakeDiscord::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = TestDesk::new().open_with_store(dir.path());
    let config = PlatformsConfig {
        telegram: None,
        discord: Some(DiscordConfig {
            token: TOKEN.into(),
            api_url: Some(fake.url.clone()),
            support_channels: vec![SUPPORT],
        }),
    };
    let platforms = start_platforms(&desk, &store, config, None).await;
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
    let id = conversation_of(&desk, ChannelKind::Discord, USER).await;
    let customer_messages = desk
        .conversation(&id)
        .await
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
    let (run, _queued, reply) = scenarios::angry_customer_gets_the_agents_reply::<FakeDiscord>(
        "I am furious: third broken parcel in a row",
        "Sorry! *Two* new parcels ship today, @everyone.",
    )
    .await;
    assert_eq!(
        reply,
        "**Ana**\nSorry! \\*Two\\* new parcels ship today, \\@everyone."
    );
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_are_retried_and_nothing_is_lost() {
    scenarios::failed_deliveries_are_retried_and_nothing_is_lost::<FakeDiscord>(&[
        Failure::RetryAfter(1),
        Failure::ServerError,
        Failure::ServerError,
    ])
    .await;
}

/// Discord posted the reply but its answer was lost: the bot sends it again with the same
/// nonce (`enforce_nonce`), and Discord returns the first instead of posting a second copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_whose_answer_was_lost_is_posted_once() {
    scenarios::failed_deliveries_are_retried_and_nothing_is_lost::<FakeDiscord>(&[
        Failure::LostAnswer,
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_outbox_is_delivered_after_a_restart() {
    // Discord is down for longer than this run lasts, then recovers.
    scenarios::pending_outbox_is_delivered_after_a_restart::<FakeDiscord>(200, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_who_closed_their_dms_is_recorded_as_a_failed_delivery() {
    let error = scenarios::refused_delivery_is_recorded_as_a_failed_delivery::<FakeDiscord>().await;
    assert!(error.contains("403"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_discord_token_is_retried_while_telegram_keeps_working() {
    scenarios::bad_token_is_retried_while_the_other_platform_works::<FakeDiscord, FakeTelegram>(2)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_links_telegram_and_discord_with_a_one_time_code() {
    scenarios::customer_links_two_platforms_with_a_one_time_code::<FakeTelegram, FakeDiscord>()
        .await;
}
