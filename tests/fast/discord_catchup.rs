//! Discord catch-up: the gateway never sends an event again, so a message dispatched to a
//! process that died before storing it is only in the channel's history. When a session
//! starts, the adapter reads the history of the channels where customers talk to it and
//! feeds what the desk has not seen, through the same path as live messages.
//!
//! The fake keeps each channel's history; `missed_*` puts a message there without
//! dispatching it (as if the process it was dispatched to had died).

use std::sync::Arc;
use std::time::Duration;

use frontdesk::channels::discord::DiscordConfig;
use frontdesk::channels::platforms::{Platforms, PlatformsConfig};
use frontdesk::desk::Desk;
use frontdesk::message::{ChannelKind, Speaker};
use frontdesk::store::Store;
use tempfile::TempDir;

use crate::support::desk::TestDesk;
use crate::support::eventually;
use crate::support::fakes::discord::{unescape, FakeDiscord};
use crate::support::fakes::ChatFake;
use crate::support::scenarios::{conversation_of, start_platforms};

const TOKEN: &str = FakeDiscord::TOKEN;
const USER: u64 = FakeDiscord::CUSTOMER;
const STAFF: u64 = FakeDiscord::CUSTOMER + 1;
const NEWCOMER: u64 = FakeDiscord::CUSTOMER + 2;
const OTHER_BOT: u64 = 930_000_000_000_000_003;
const SUPPORT: u64 = 920_000_000_000_000_007;

/// How long to let a catch-up finish once it has read a channel, before checking that it
/// fed nothing more.
const SETTLE: Duration = Duration::from_millis(1500);

/// A desk on a store that outlives the adapter, and the fake Discord.
struct Bench {
    fake: FakeDiscord,
    desk: Desk,
    store: Arc<dyn Store>,
    support: Vec<u64>,
    _dir: TempDir,
}

impl Bench {
    async fn new(support: Vec<u64>) -> Bench {
        let fake = FakeDiscord::start(TOKEN).await;
        let dir = tempfile::tempdir().unwrap();
        let (desk, store) = TestDesk::new().open_with_store(dir.path());
        Bench {
            fake,
            desk,
            store,
            support,
            _dir: dir,
        }
    }

    /// Starts the Discord adapter (a new gateway session) on the same desk and store.
    async fn start(&self) -> Platforms {
        let config = PlatformsConfig {
            telegram: None,
            discord: Some(DiscordConfig {
                token: TOKEN.into(),
                api_url: Some(self.fake.url.clone()),
                support_channels: self.support.clone(),
            }),
        };
        start_platforms(&self.desk, &self.store, config, None).await
    }

    /// A first session in which `USER` says hello in a DM and is answered, then the adapter
    /// stops: the DM channel and its `seen` mark (covering the hello).
    async fn greeted_then_stopped(&self) -> (u64, serde_json::Value) {
        let platforms = self.start().await;
        self.fake.wait_for_identify().await;
        let hello = self.fake.direct_message(USER, "hello");
        self.fake.wait_for_texts(USER, 1).await;
        let dm = self.fake.dm_channel_of(USER);
        let mark = self.wait_for_mark(dm, hello).await;
        platforms.shutdown().await;
        (dm, mark)
    }

    /// The customer messages the desk stored for `user`.
    async fn customer_lines(&self, user: u64) -> Vec<String> {
        let id = conversation_of(&self.desk, ChannelKind::Discord, user).await;
        self.desk
            .conversation(&id)
            .await
            .unwrap()
            .unwrap()
            .messages
            .into_iter()
            .filter(|m| m.from == Speaker::Customer)
            .map(|m| m.text)
            .collect()
    }

    /// Waits for the adapter's `seen:{channel}` mark to cover message `id` (it is written
    /// once the desk has the message, which may be after the answer went out).
    async fn wait_for_mark(&self, channel: u64, id: u64) -> serde_json::Value {
        let what = format!("the seen mark of channel {channel} to reach {id}");
        eventually(&what, || async {
            self.seen_mark(channel).await.filter(|m| {
                m["last"]
                    .as_str()
                    .and_then(|l| l.parse::<u64>().ok())
                    .is_some_and(|l| l >= id)
            })
        })
        .await
    }

    /// The `seen:{channel}` mark the adapter keeps.
    async fn seen_mark(&self, channel: u64) -> Option<serde_json::Value> {
        self.store
            .channel_state(ChannelKind::Discord, &format!("seen:{channel}"))
            .await
            .unwrap()
            .map(|v| serde_json::from_str(&v).unwrap())
    }

    /// Forgets the `seen` marks (but those of `keep`), so that the next catch-up reads
    /// whole pages of those channels and relies on the desk's exactly-once alone.
    async fn forget_marks(&self, keep: &[u64]) {
        let keep: Vec<String> = keep.iter().map(|c| format!("seen:{c}")).collect();
        let all = self
            .store
            .channel_states(ChannelKind::Discord)
            .await
            .unwrap();
        for (key, _) in all {
            if key.starts_with("seen:") && !keep.contains(&key) {
                self.store
                    .set_channel_state(ChannelKind::Discord, &key, None)
                    .await
                    .unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_message_sent_while_the_bot_was_down_is_answered_at_start() {
    let bench = Bench::new(Vec::new()).await;
    let fake = &bench.fake;
    let (dm, mark) = bench.greeted_then_stopped().await;
    assert_eq!(mark["guild"], false, "{mark}");

    // Dispatched to a process that died before storing it: only in the history now.
    let missed = fake.missed_dm(USER, "where is my order?");
    let platforms = bench.start().await;
    let answer = fake
        .wait_for_text(USER, |t| t.contains("order number"))
        .await;
    assert!(unescape(&answer).contains("order number"));
    assert_eq!(
        bench.customer_lines(USER).await,
        vec!["hello".to_string(), "where is my order?".to_string()]
    );
    // The mark covers the recovered message.
    bench.wait_for_mark(dm, missed).await;

    // Nothing more: the greeting is not answered again, nor the recovered message.
    tokio::time::sleep(SETTLE).await;
    assert_eq!(fake.texts_to(USER).len(), 2, "{:?}", fake.texts_to(USER));
    platforms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_dispatched_live_and_read_from_history_is_handled_once() {
    let bench = Bench::new(Vec::new()).await;
    let fake = &bench.fake;
    let (dm, _) = bench.greeted_then_stopped().await;

    // Queued for the next session: the gateway dispatches it right after READY, while the
    // catch-up reads the same message from the history.
    let asked = fake.direct_message(USER, "where is my order?");
    let platforms = bench.start().await;
    fake.wait_for_text(USER, |t| t.contains("order number"))
        .await;
    fake.wait_for_history_reads(dm, 1).await;
    assert_eq!(fake.pending_events(), 0);
    tokio::time::sleep(SETTLE).await;
    assert_eq!(fake.texts_to(USER).len(), 2, "{:?}", fake.texts_to(USER));
    assert_eq!(
        bench.customer_lines(USER).await,
        vec!["hello".to_string(), "where is my order?".to_string()]
    );
    bench.wait_for_mark(dm, asked).await;
    platforms.shutdown().await;

    // Without the marks, a catch-up reads the whole latest page: the desk knows every
    // message there, nothing is fed again.
    bench.forget_marks(&[]).await;
    let reads = fake.history_reads(dm);
    let platforms = bench.start().await;
    fake.wait_for_history_reads(dm, reads + 1).await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(fake.texts_to(USER).len(), 2, "{:?}", fake.texts_to(USER));
    assert_eq!(bench.customer_lines(USER).await.len(), 2);
    // The catch-up sets the mark again.
    bench.wait_for_mark(dm, asked).await;
    platforms.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bots_own_messages_and_messages_not_for_the_desk_are_not_fed() {
    let bench = Bench::new(vec![SUPPORT]).await;
    let fake = &bench.fake;
    let platforms = bench.start().await;
    fake.wait_for_identify().await;
    let first = fake.guild_message(SUPPORT, USER, "where is my order?");
    let thread = fake.wait_for_thread(SUPPORT).await;
    fake.wait_for_messages(thread.id, 1).await;
    bench.wait_for_mark(SUPPORT, first).await;
    platforms.shutdown().await;
    assert!(
        fake.history(thread.id)
            .iter()
            .any(|m| m["author"]["bot"] == true),
        "the bot's answer is in the thread's history"
    );

    // While the bot is away: staff talk in the customer's thread, another bot posts in the
    // support channel (neither goes to the desk live), the customer goes on in their
    // thread and a new customer writes in the support channel (both do).
    fake.missed_guild_message(thread.id, STAFF, "staff note: checking the warehouse");
    fake.missed_bot_message(SUPPORT, OTHER_BOT, "Reminder: be kind");
    fake.missed_guild_message(thread.id, USER, "hello again");
    fake.missed_guild_message(SUPPORT, NEWCOMER, "where is my order?");

    // Forgetting the thread's mark makes the catch-up read its every message again, the
    // bot's own included; the support channel is read from its mark (a few seconds before:
    // the customer's first message and the other bot's are read again too).
    assert!(bench.seen_mark(SUPPORT).await.is_some());
    bench.forget_marks(&[SUPPORT]).await;
    let platforms = bench.start().await;
    fake.wait_for_messages(thread.id, 2).await;
    let newcomer = fake
        .recorder()
        .until("a thread for the new customer", || {
            fake.threads()
                .into_iter()
                .find(|t| t.name.contains(&NEWCOMER.to_string()))
        })
        .await;
    fake.wait_for_message(newcomer.id, |t| t.contains("order number"))
        .await;
    fake.wait_for_history_reads(SUPPORT, 2).await;
    fake.wait_for_history_reads(thread.id, 1).await;
    tokio::time::sleep(SETTLE).await;

    assert_eq!(fake.threads().len(), 2, "{:?}", fake.threads());
    assert_eq!(fake.sent_in(thread.id).len(), 2, "{:?}", fake.sent());
    assert!(fake.sent_in(SUPPORT).is_empty(), "{:?}", fake.sent());
    assert_eq!(
        bench.customer_lines(USER).await,
        vec!["where is my order?".to_string(), "hello again".to_string()]
    );
    assert_eq!(bench.customer_lines(NEWCOMER).await.len(), 1);
    for nobody in [STAFF, OTHER_BOT] {
        assert!(
            bench
                .desk
                .conversation_of(ChannelKind::Discord, &nobody.to_string())
                .await
                .unwrap()
                .is_none(),
            "{nobody} is not a customer"
        );
    }
    assert!(
        bench
            .desk
            .conversation_of(ChannelKind::Discord, &frontdesk_bot().to_string())
            .await
            .unwrap()
            .is_none(),
        "the bot's own messages are not fed"
    );
    platforms.shutdown().await;
}

/// The fake's bot user id.
fn frontdesk_bot() -> u64 {
    crate::support::fakes::discord::BOT_USER_ID
}

/// The fake's history reads as Discord's do: newest first; `after` gives the oldest ones
/// newer than it, `before` the newest ones older than it; no `guild_id` on REST messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fakes_history_pages_like_discord() {
    let fake = FakeDiscord::start(TOKEN).await;
    let ids: Vec<u64> = (0..5)
        .map(|i| fake.missed_guild_message(SUPPORT, USER, &format!("m{i}")))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");
    let http = reqwest::Client::new();
    let read = |query: String| {
        let http = http.clone();
        let url = format!("{}/api/v10/channels/{SUPPORT}/messages{query}", fake.url);
        async move {
            let page: Vec<serde_json::Value> = http
                .get(url)
                .header("authorization", format!("Bot {TOKEN}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(page.iter().all(|m| m.get("guild_id").is_none()), "{page:?}");
            page.iter()
                .map(|m| m["content"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(read(String::new()).await, ["m4", "m3", "m2", "m1", "m0"]);
    assert_eq!(read("?limit=2".into()).await, ["m4", "m3"]);
    assert_eq!(
        read(format!("?after={}&limit=2", ids[1])).await,
        ["m3", "m2"]
    );
    assert_eq!(read(format!("?after={}", ids[1])).await, ["m4", "m3", "m2"]);
    assert_eq!(
        read(format!("?before={}&limit=2", ids[3])).await,
        ["m2", "m1"]
    );
    assert_eq!(
        read(format!("?after={}", ids[4])).await,
        Vec::<String>::new()
    );
}

/// A support channel the bot reads for the first time (just configured): what people wrote
/// there before is not answered; from then on a missed message is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_support_channel_seen_for_the_first_time_is_not_answered_backwards() {
    let bench = Bench::new(vec![SUPPORT]).await;
    let fake = &bench.fake;
    let before = fake.missed_guild_message(SUPPORT, USER, "anyone here?");
    let platforms = bench.start().await;
    fake.wait_for_history_reads(SUPPORT, 1).await;
    tokio::time::sleep(SETTLE).await;
    assert!(fake.threads().is_empty(), "{:?}", fake.threads());
    assert!(bench
        .desk
        .conversation_of(ChannelKind::Discord, &USER.to_string())
        .await
        .unwrap()
        .is_none());
    let mark = bench.wait_for_mark(SUPPORT, before).await;
    assert_eq!(mark["floor"], before.to_string(), "{mark}");
    platforms.shutdown().await;

    fake.missed_guild_message(SUPPORT, USER, "where is my order?");
    let platforms = bench.start().await;
    let thread = fake.wait_for_thread(SUPPORT).await;
    fake.wait_for_message(thread.id, |t| t.contains("order number"))
        .await;
    assert_eq!(
        bench.customer_lines(USER).await,
        vec!["where is my order?".to_string()]
    );
    platforms.shutdown().await;
}
