//! Nothing twice, nothing lost: a message delivered twice runs its turn once, a platform
//! reply survives a crash between the turn and its delivery, an agent-owned conversation
//! never gets a bot answer, two link redemptions cannot deadlock, and a turn costs the same
//! to store at message 500 as at message 1.

use std::sync::Arc;
use std::time::Duration;

use frontdesk::desk::Desk;
use frontdesk::message::{ChannelKind, Identity, Inbound, Speaker, Status};
use frontdesk::store::Store;

use crate::support::desk::{keyword_desk, reply, say, TestDesk};
use crate::support::eventually;
use crate::support::fakes::discord::FakeDiscord;
use crate::support::fakes::telegram::FakeTelegram;
use crate::support::fakes::ChatFake;
use crate::support::scenarios::{start_platforms, Run};

fn with_id(user: &str, text: &str, id: &str) -> Inbound {
    Inbound::new(ChannelKind::Rest, user, text).with_message_id(id)
}

/// The same message id again returns the first outcome; the message is stored once and the
/// answer is not given twice.
#[tokio::test]
async fn a_repeated_message_id_runs_its_turn_once() {
    let dir = tempfile::tempdir().unwrap();
    let desk = keyword_desk(dir.path());
    let first = desk
        .receive(with_id("u1", "where is my order 10001", "m-1"))
        .await
        .unwrap();
    let again = desk
        .receive(with_id("u1", "where is my order 10001", "m-1"))
        .await
        .unwrap();
    assert_eq!(first, again, "a repeat gets the first outcome back");
    let conversation = desk
        .conversation(&first.conversation_id)
        .await
        .unwrap()
        .unwrap();
    let from_customer = conversation
        .messages
        .iter()
        .filter(|m| m.from == Speaker::Customer)
        .count();
    let from_bot = conversation
        .messages
        .iter()
        .filter(|m| m.from == Speaker::Bot)
        .count();
    assert_eq!((from_customer, from_bot), (1, first.replies.len()));
    // A new id is a new message, and ids are per sender.
    desk.receive(with_id("u1", "thanks", "m-2")).await.unwrap();
    let other = desk
        .receive(with_id("u2", "where is my order 10001", "m-1"))
        .await
        .unwrap();
    assert!(!other.replies.is_empty(), "another sender's m-1 is its own");
    let conversation = desk
        .conversation(&first.conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        conversation
            .messages
            .iter()
            .filter(|m| m.from == Speaker::Customer)
            .count(),
        2
    );
}

/// Many copies of one message at once (a webhook retried while the first call still runs):
/// one turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_copies_of_one_message_run_one_turn() {
    let dir = tempfile::tempdir().unwrap();
    let desk = keyword_desk(dir.path());
    let copies = (0..8).map(|_| {
        let desk = desk.clone();
        tokio::spawn(async move {
            desk.receive(with_id("u1", "agent please", "dup-7"))
                .await
                .unwrap()
        })
    });
    let turns: Vec<_> = futures::future::join_all(copies)
        .await
        .into_iter()
        .map(|t| t.unwrap())
        .collect();
    assert!(turns.windows(2).all(|w| w[0] == w[1]), "{turns:?}");
    let queues = desk.queues().await.unwrap();
    let waiting: usize = queues.iter().map(|q| q.entries.len()).sum();
    assert_eq!(waiting, 1, "queued once");
    let conversation = desk
        .conversation(&turns[0].conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        conversation
            .messages
            .iter()
            .filter(|m| m.from == Speaker::Customer)
            .count(),
        1
    );
}

/// Telegram delivers an update twice (a webhook retry, a restart during polling): the
/// customer's message is stored once and answered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telegram_update_delivered_twice_is_handled_once() {
    let run: Run<FakeTelegram> = Run::start().await;
    let chat = FakeTelegram::CUSTOMER as i64;
    let update = run.fake.customer_says(chat, "where is my order 10001");
    let first = run.fake.wait_for_messages(chat, 1).await;
    run.fake.deliver_again(update).unwrap();
    run.fake.customer_says(chat, "thanks");
    // the answer to "thanks" arrives after whatever the repeat would have caused
    let all = run.fake.wait_for_messages(chat, first.len() + 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = run.conversation_of(FakeTelegram::CUSTOMER).await;
    let stored = run.desk.conversation(&id).await.unwrap().unwrap();
    let asked: Vec<_> = stored
        .messages
        .iter()
        .filter(|m| m.from == Speaker::Customer)
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(asked, ["where is my order 10001", "thanks"]);
    let sent = run.fake.sent_to(chat);
    assert_eq!(sent.len(), all.len(), "no answer twice: {sent:?}");
    let bot = run.bot_messages(&id).await;
    assert_eq!(sent.len(), bot.len(), "every stored reply sent once");
    run.shutdown().await;
}

/// Discord's gateway dispatches one message twice: one turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discord_message_dispatched_twice_is_handled_once() {
    let run: Run<FakeDiscord> = Run::start().await;
    let user = FakeDiscord::CUSTOMER;
    let id = run.fake.direct_message(user, "where is my order 10001");
    run.fake.dm_again(user, id, "where is my order 10001");
    run.fake.dm_from(user, "thanks");
    let conversation = run.conversation_of(user).await;
    let stored = eventually("both messages stored", || async {
        let c = run.desk.conversation(&conversation).await.unwrap().unwrap();
        let asked: Vec<String> = c
            .messages
            .iter()
            .filter(|m| m.from == Speaker::Customer)
            .map(|m| m.text.clone())
            .collect();
        (asked.len() >= 2).then_some(asked)
    })
    .await;
    // the repeat had every chance to be stored too
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = run.desk.conversation(&conversation).await.unwrap().unwrap();
    let stored_now = again
        .messages
        .iter()
        .filter(|m| m.from == Speaker::Customer)
        .count();
    assert_eq!(stored_now, stored.len());
    // (the gateway's events are handled concurrently: no order between the two texts)
    let asked = stored
        .iter()
        .filter(|t| *t == "where is my order 10001")
        .count();
    assert_eq!((asked, stored.len()), (1, 2), "{stored:?}");
    run.shutdown().await;
}

/// The process dies after a turn is stored and before anything reached the platform (no
/// platform running at all): on restart, the stored answer is delivered, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_turn_and_delivery_still_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let chat = FakeTelegram::CUSTOMER;
    let conversation = {
        let (desk, store) = TestDesk::new().open_with_store(dir.path());
        let turn = desk
            .receive(
                Inbound::new(
                    ChannelKind::Telegram,
                    chat.to_string(),
                    "where is my order 10001",
                )
                .with_message_id("tg-1"),
            )
            .await
            .unwrap();
        assert!(!turn.replies.is_empty());
        assert_eq!(
            store.outbox_len(ChannelKind::Telegram).await.unwrap(),
            turn.replies.len(),
            "the answer is in the outbox with the turn, before any relay ran"
        );
        turn.conversation_id
        // desk and store dropped here: nothing was sent
    };
    let fake = FakeTelegram::start(FakeTelegram::TOKEN).await;
    let (desk, store) = TestDesk::new().open_with_store(dir.path());
    let mut config = frontdesk::channels::platforms::PlatformsConfig::default();
    fake.configure(FakeTelegram::TOKEN, &mut config);
    let platforms = start_platforms(&desk, &store, config, None).await;
    let stored = crate::support::scenarios::bot_messages(&desk, &conversation).await;
    let sent = fake.wait_for_messages(chat as i64, stored.len()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.sent_to(chat as i64).len(), stored.len(), "{sent:?}");
    eventually("the outbox to empty", || async {
        (store.outbox_len(ChannelKind::Telegram).await.unwrap() == 0).then_some(())
    })
    .await;
    platforms.shutdown().await;
}

/// An agent claims while the customer keeps writing: every message after the claim is the
/// agent's to answer; the bot never answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_owned_conversation_never_gets_a_bot_answer() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let desk = keyword_desk(dir.path());
        let user = format!("racer-{round}");
        let first = say(&desk, &user, "agent please").await;
        let id = first.conversation_id.clone();
        let writer = {
            let desk = desk.clone();
            let user = user.clone();
            tokio::spawn(async move {
                let mut turns = Vec::new();
                for i in 0..20 {
                    turns.push(
                        say(&desk, &user, &format!("where is my order 1000{}", i % 10)).await,
                    );
                }
                turns
            })
        };
        tokio::time::sleep(Duration::from_millis(round * 3)).await;
        desk.claim("ana", &id).await.unwrap();
        let turns = writer.await.unwrap();
        for t in &turns {
            if t.status == Status::WithAgent {
                assert!(
                    t.replies.is_empty(),
                    "bot answered an agent's customer: {}",
                    reply(t)
                );
            }
        }
        let c = desk.conversation(&id).await.unwrap().unwrap();
        let claimed_at = c
            .messages
            .iter()
            .position(|m| m.from == Speaker::Bot && m.text.contains("has joined the conversation"))
            .or_else(|| {
                c.messages
                    .iter()
                    .position(|m| matches!(m.from, Speaker::Agent(_)))
            });
        if let Some(at) = claimed_at {
            assert!(
                c.messages[at + 1..].iter().all(|m| m.from != Speaker::Bot),
                "a bot message after the claim: {:?}",
                &c.messages[at..]
            );
        }
    }
}

/// Many link redemptions at once, half of them in the opposite order: all finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_links_in_opposite_orders_all_finish() {
    let dir = tempfile::tempdir().unwrap();
    let desk: Desk = keyword_desk(dir.path());
    let ids: Vec<Identity> = (0..40)
        .map(|i| Identity::new(ChannelKind::Telegram, &format!("{i}")))
        .collect();
    for (i, who) in ids.iter().enumerate() {
        desk.receive(Inbound::new(
            who.channel,
            who.user.clone(),
            format!("hi {i}"),
        ))
        .await
        .unwrap();
    }
    let desk = Arc::new(desk);
    let mut tasks = Vec::new();
    for i in 0..ids.len() {
        for j in (i + 1)..ids.len().min(i + 6) {
            let (a, b) = if (i + j) % 2 == 0 {
                (ids[i].clone(), ids[j].clone())
            } else {
                (ids[j].clone(), ids[i].clone())
            };
            let desk = desk.clone();
            tasks.push(tokio::spawn(
                async move { desk.link_identity(&a, &b).await },
            ));
        }
    }
    let all = tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(tasks))
        .await
        .expect("the link race finished (no deadlock)");
    for r in all {
        r.unwrap().unwrap();
    }
}

/// What one turn writes stays the same size however long the conversation is: messages are
/// appended under their own keys, and the record keeps bounded trends. Prints the figures.
#[tokio::test]
async fn a_turn_costs_the_same_to_store_at_message_500() {
    let dir = tempfile::tempdir().unwrap();
    let (desk, store): (Desk, Arc<dyn Store>) = TestDesk::new().open_with_store(dir.path());
    let record_size = async |id| {
        let record = store
            .conversation(id)
            .await
            .unwrap()
            .expect("the conversation is stored");
        serde_json::to_vec(&record).unwrap().len()
    };
    let first = say(&desk, "long", "hello").await;
    let id = first.conversation_id.clone();
    let at_1 = record_size(&id).await;
    let mut at_500 = 0;
    for i in 2..=500 {
        say(
            &desk,
            "long",
            &format!("what are your delivery options {i}"),
        )
        .await;
        if i == 500 {
            at_500 = record_size(&id).await;
        }
    }
    let messages = store.messages(&id).await.unwrap().len();
    eprintln!(
        "conversation record written per turn: {at_1} bytes at turn 1, {at_500} bytes at turn 500 ({messages} messages stored under their own keys)"
    );
    assert!(messages >= 1000, "{messages}");
    assert!(
        at_500 < at_1 + 4096,
        "the record grows with the conversation: {at_1} -> {at_500} bytes"
    );
}

/// "my order" … "is 10001" … "please" within the window: one turn, one answer, given to
/// the last message's caller; the conversation holds the three lines as one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_three_messages_gets_one_answer() {
    use frontdesk::intake::Intake;
    let dir = tempfile::tempdir().unwrap();
    let desk = keyword_desk(dir.path());
    let intake = Intake::with_debounce(desk.clone(), Duration::from_millis(400));
    let mut calls = Vec::new();
    for (i, text) in ["where is my order", "it is 10001", "thanks in advance"]
        .into_iter()
        .enumerate()
    {
        let intake = intake.clone();
        let msg = Inbound::new(ChannelKind::Web, "bursty", text).with_message_id(format!("b{i}"));
        calls.push(tokio::spawn(
            async move { intake.receive(msg).await.unwrap() },
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let results: Vec<_> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let answered: Vec<_> = results
        .iter()
        .filter(|r| !r.turn.replies.is_empty())
        .collect();
    assert_eq!(answered.len(), 1, "{results:?}");
    assert!(
        !results[2].turn.replies.is_empty(),
        "the last message's caller gets the answer"
    );
    assert!(
        reply(&results[2].turn).contains("10001"),
        "the answer uses the number typed in the second message: {}",
        reply(&results[2].turn)
    );
    let c = desk
        .conversation(&results[0].turn.conversation_id)
        .await
        .unwrap()
        .unwrap();
    let asked: Vec<_> = c
        .messages
        .iter()
        .filter(|m| m.from == Speaker::Customer)
        .collect();
    assert_eq!(asked.len(), 1);
    assert_eq!(
        asked[0].text,
        "where is my order\nit is 10001\nthanks in advance"
    );
    // a repeat of any message of the burst is not handled again
    let again = intake
        .receive(Inbound::new(ChannelKind::Web, "bursty", "it is 10001").with_message_id("b1"))
        .await
        .unwrap();
    assert_eq!(again.turn.conversation_id, results[0].turn.conversation_id);
    let c = desk
        .conversation(&results[0].turn.conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.messages
            .iter()
            .filter(|m| m.from == Speaker::Customer)
            .count(),
        1
    );
}

/// REST callers send whole requests: they are never held back.
#[tokio::test]
async fn rest_messages_are_not_held_back() {
    use frontdesk::intake::Intake;
    let dir = tempfile::tempdir().unwrap();
    let desk = keyword_desk(dir.path());
    let intake = Intake::with_debounce(desk, Duration::from_secs(30));
    let got = tokio::time::timeout(
        Duration::from_secs(10),
        intake.receive(Inbound::new(
            ChannelKind::Rest,
            "api",
            "where is my order 10001",
        )),
    )
    .await
    .expect("answered without waiting for the window")
    .unwrap();
    assert!(!got.turn.replies.is_empty());
}

/// An agent blocks an abusive customer: the conversation closes and leaves its queue, the
/// customer's next messages are refused (not stored), and an unblock lets them write again.
#[tokio::test]
async fn a_blocked_customer_is_refused_until_unblocked() {
    let dir = tempfile::tempdir().unwrap();
    let desk = keyword_desk(dir.path());
    let first = say(&desk, "troll", "agent please").await;
    assert_eq!(first.status, Status::Queued);
    let customer = desk
        .block_customer(
            "ben",
            &first.conversation_id,
            "floods the queue with insults",
        )
        .await
        .unwrap();
    let waiting: usize = desk
        .queues()
        .await
        .unwrap()
        .iter()
        .map(|q| q.entries.len())
        .sum();
    assert_eq!(waiting, 0, "the blocked customer left the queue");
    let c = desk
        .conversation(&first.conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.status, Status::Closed);
    let refused = desk
        .receive(Inbound::new(ChannelKind::Rest, "troll", "agent please!!!"))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("not accepted"), "{refused}");
    assert!(
        desk.block_customer("ben", &first.conversation_id, "")
            .await
            .is_err(),
        "a reason is required"
    );
    desk.unblock_customer("ana", &customer).await.unwrap();
    let back = say(&desk, "troll", "where is my order 10001").await;
    assert!(!back.replies.is_empty());
    assert_ne!(back.conversation_id, first.conversation_id);
}

/// A queue holds at most `max_waiting` customers: the next one stays with the bot and is
/// told so, the people already waiting keep their places.
#[tokio::test]
async fn a_full_queue_keeps_the_next_customer_with_the_bot() {
    let dir = tempfile::tempdir().unwrap();
    let rules = std::fs::read_to_string(crate::support::repo("rules.toml"))
        .unwrap()
        .replace(
            "[queues.general]\nsla_secs = 300",
            "[queues.general]\nsla_secs = 300\nmax_waiting = 2",
        );
    let rules =
        frontdesk::policy::Rules::parse(&rules, std::path::Path::new("rules.toml")).unwrap();
    assert_eq!(rules.queues["general"].max_waiting, 2);
    let desk = TestDesk::new().rules(rules).open(dir.path());
    for user in ["w1", "w2"] {
        assert_eq!(
            say(&desk, user, "agent please").await.status,
            Status::Queued
        );
    }
    let third = say(&desk, "w3", "agent please").await;
    assert_eq!(third.status, Status::Bot, "{}", reply(&third));
    assert!(reply(&third).contains("queue is full"), "{}", reply(&third));
    let general = desk
        .queues()
        .await
        .unwrap()
        .into_iter()
        .find(|q| q.name == "general")
        .unwrap();
    assert_eq!(general.entries.len(), 2);
}

/// After a close, the next message starts a new conversation; with a reopen window, a
/// message soon after reopens the same one, back with the bot.
#[tokio::test]
async fn a_message_after_close_opens_a_new_conversation_or_reopens_within_the_window() {
    for (window, reopens) in [(0u64, false), (10, true)] {
        let dir = tempfile::tempdir().unwrap();
        let desk = TestDesk::new().reopen_within_mins(window).open(dir.path());
        let first = say(&desk, "comeback", "agent please").await;
        desk.claim("ana", &first.conversation_id).await.unwrap();
        desk.close("ana", &first.conversation_id).await.unwrap();
        let next = say(&desk, "comeback", "where is my order 10001").await;
        assert_eq!(next.status, Status::Bot);
        assert_eq!(
            next.conversation_id == first.conversation_id,
            reopens,
            "window {window} min"
        );
        assert!(!next.replies.is_empty(), "the bot answers again");
    }
}
