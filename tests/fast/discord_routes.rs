//! Where a Discord customer from a support channel is answered when their thread cannot be
//! opened: in a DM; when no DM can be opened either, the failure is on the conversation for
//! the agents. Never in the public support channel, whose other customers keep being
//! served; a public-channel route left by an older version is removed at start.

use chrono::Utc;
use frontdesk::channels::discord::{DiscordConfig, Route};
use frontdesk::channels::health::ChannelHealth;
use frontdesk::channels::platforms::PlatformsConfig;
use frontdesk::message::{ChannelKind, ConversationId, Outbound, Speaker};
use frontdesk::outbox::Outbox;
use frontdesk::store::Store;
use serde_json::Value;

use crate::support::desk::TestDesk;
use crate::support::eventually;
use crate::support::fakes::discord::{FakeDiscord, Thread};
use crate::support::fakes::{ChatFake, Failure};
use crate::support::nlu::KeywordNlu;
use crate::support::scenarios::{conversation_of, start_platforms};
use crate::support::server::{config, serve_with_platforms, ANA};

const TOKEN: &str = FakeDiscord::TOKEN;
/// The customer whose thread cannot be opened.
const ALICE: u64 = FakeDiscord::CUSTOMER;
/// Another customer in the same support channel.
const BOB: u64 = FakeDiscord::CUSTOMER + 1;
const SUPPORT: u64 = 920_000_000_000_000_007;

/// Discord on `fake`, with one support channel.
fn platforms(fake: &FakeDiscord) -> PlatformsConfig {
    PlatformsConfig {
        telegram: None,
        discord: Some(DiscordConfig {
            token: TOKEN.into(),
            api_url: Some(fake.url.clone()),
            support_channels: vec![SUPPORT],
        }),
    }
}

/// The bot's call that posts in `channel`.
fn post_in(channel: u64) -> String {
    format!("POST /channels/{channel}/messages")
}

/// Nothing was posted in the support channel, not even tried.
fn nothing_public(fake: &FakeDiscord) {
    assert!(fake.sent_in(SUPPORT).is_empty(), "{:?}", fake.sent());
    assert!(
        !fake.recorder().calls().contains(&post_in(SUPPORT)),
        "{:?}",
        fake.recorder().calls()
    );
}

/// Waits until the bot has opened a thread for `user` (the fake names it after them).
async fn thread_of(fake: &FakeDiscord, user: u64) -> Thread {
    let what = format!("a support thread for Discord user {user}");
    fake.recorder()
        .until(&what, || {
            fake.threads()
                .into_iter()
                .find(|t| t.parent_id == SUPPORT && t.name.contains(&user.to_string()))
        })
        .await
}

/// Every route entry that points at the support channel.
async fn public_routes(store: &dyn Store) -> Vec<String> {
    store
        .channel_states(ChannelKind::Discord)
        .await
        .unwrap()
        .into_iter()
        .filter(|(key, value)| match key.strip_prefix("user:") {
            Some(_) => serde_json::from_str::<Route>(value).unwrap().channel() == SUPPORT,
            None => key == &format!("thread:{SUPPORT}"),
        })
        .map(|(key, _)| key)
        .collect()
}

/// Where the store says `user`'s answers go.
async fn route_of(store: &dyn Store, user: u64) -> Route {
    let text = store
        .channel_state(ChannelKind::Discord, &format!("user:{user}"))
        .await
        .unwrap()
        .expect("a route");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_thread_the_customer_is_answered_in_a_dm_and_others_keep_their_threads() {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.fail_next_threads(&[Failure::Forbidden]);
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = TestDesk::new().open_with_store(dir.path());
    let platforms = start_platforms(&desk, &store, platforms(&fake), None).await;
    fake.wait_for_identify().await;

    // Alice's thread cannot be opened: she is answered in a DM the bot opens.
    fake.guild_message(SUPPORT, ALICE, "where is my order?");
    let dm = fake.wait_for_dm_opened(ALICE).await;
    fake.wait_for_message(dm, |t| t.contains("order number"))
        .await;
    assert!(fake.threads().is_empty());
    nothing_public(&fake);

    // Bob, in the same channel, is a customer with his own thread, not staff in Alice's.
    fake.guild_message(SUPPORT, BOB, "where is my order?");
    let thread = thread_of(&fake, BOB).await;
    fake.wait_for_message(thread.id, |t| t.contains("order number"))
        .await;

    // Alice goes on in her DM.
    fake.dm_from(ALICE, "hello again");
    fake.wait_for_messages(dm, 2).await;
    let alice = desk
        .conversation(&conversation_of(&desk, ChannelKind::Discord, ALICE).await)
        .await
        .unwrap()
        .unwrap();
    let from_alice = alice
        .messages
        .iter()
        .filter(|m| m.from == Speaker::Customer)
        .count();
    assert_eq!(from_alice, 2);
    conversation_of(&desk, ChannelKind::Discord, BOB).await;

    nothing_public(&fake);
    assert_eq!(public_routes(store.as_ref()).await, Vec::<String>::new());
    let alice_route = route_of(store.as_ref(), ALICE).await;
    assert_eq!(alice_route, Route::Direct(dm));
    platforms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_thread_or_a_dm_the_failure_is_on_the_conversation_and_nothing_goes_public() {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.fail_all_threads(Some(Failure::Forbidden));
    fake.fail_all_dms(Some(Failure::Forbidden));
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with_platforms(config(dir.path()), KeywordNlu, platforms(&fake)).await;
    fake.wait_for_identify().await;
    let desk = &server.server.desk;
    let agent = server.login(ANA).await;
    let failure_of = |user: u64| {
        let agent = &agent;
        async move {
            let id = conversation_of(desk, ChannelKind::Discord, user).await;
            let path = format!("/console/api/conversations/{}", id.0);
            eventually("the undeliverable answer on the conversation", || async {
                let (status, body) = agent.get(&path).await;
                assert_eq!(status, 200, "{body}");
                body["delivery_failures"]
                    .as_array()
                    .and_then(|f| f.first().cloned())
            })
            .await
        }
    };

    fake.guild_message(SUPPORT, ALICE, "where is my order?");
    let failure: Value = failure_of(ALICE).await;
    assert_eq!(failure["channel"], "discord");
    let error = failure["error"].as_str().unwrap();
    assert!(error.contains("DM") && error.contains("403"), "{error}");
    assert!(failure["text"].as_str().unwrap().contains("order number"));
    assert!(fake.dms_opened().is_empty());

    // Bob in the same channel still reaches the desk (and is told about the same way).
    fake.guild_message(SUPPORT, BOB, "where is my order?");
    failure_of(BOB).await;

    assert!(fake.sent().is_empty(), "{:?}", fake.sent());
    nothing_public(&fake);
    assert!(public_routes(server.server.store.as_ref()).await.is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_channel_route_from_an_old_database_is_not_used() {
    let fake = FakeDiscord::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (desk, store) = TestDesk::new().open_with_store(dir.path());
    // What the old fallback stored when Alice's thread could not be opened, and an answer
    // to her still waiting in the outbox.
    let old_route = serde_json::to_string(&Route::Thread(SUPPORT)).unwrap();
    let discord = ChannelKind::Discord;
    let alice = ALICE.to_string();
    store
        .set_channel_state(discord, &format!("user:{ALICE}"), Some(&old_route))
        .await
        .unwrap();
    store
        .set_channel_state(discord, &format!("thread:{SUPPORT}"), Some(&alice))
        .await
        .unwrap();
    let waiting = "Your refund is on its way.";
    Outbox::open(store.clone(), ChannelHealth::new())
        .await
        .unwrap()
        .enqueue(Outbound {
            conversation_id: ConversationId::fresh(),
            channel: ChannelKind::Discord,
            channel_user: ALICE.to_string(),
            text: waiting.into(),
            from: Speaker::Bot,
            time: Utc::now(),
            turn: None,
            survey: None,
        })
        .await
        .unwrap();

    let platforms = start_platforms(&desk, &store, platforms(&fake), None).await;
    assert_eq!(public_routes(store.as_ref()).await, Vec::<String>::new());

    // The waiting answer goes to a DM, not to the channel.
    let dm = fake.wait_for_dm_opened(ALICE).await;
    fake.wait_for_message(dm, |t| t == waiting).await;

    // Bob writes in the channel: a customer, not someone talking in Alice's "thread".
    fake.wait_for_identify().await;
    fake.guild_message(SUPPORT, BOB, "where is my order?");
    let bobs = thread_of(&fake, BOB).await;
    fake.wait_for_message(bobs.id, |t| t.contains("order number"))
        .await;

    // Alice's next message opens her own thread.
    fake.guild_message(SUPPORT, ALICE, "where is my order?");
    let alices = thread_of(&fake, ALICE).await;
    assert_ne!(alices.id, bobs.id);
    fake.wait_for_message(alices.id, |t| t.contains("order number"))
        .await;

    nothing_public(&fake);
    let alice_route = route_of(store.as_ref(), ALICE).await;
    assert_eq!(alice_route, Route::Thread(alices.id));
    platforms.shutdown().await;
}
