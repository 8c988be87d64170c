//! The [`Store`] contract, checked. Every check takes a fresh store through `&dyn Store`
//! only, so each engine runs the same suite: sled (`sled_keeps_the_store_contract`) and
//! PostgreSQL on a throwaway cluster (`postgres_keeps_the_store_contract`, one database per
//! check). What the trait promises: `apply` writes a whole [`Change`] or nothing, outbox
//! records included; reads see every change applied before them; messages read back in
//! their sequence order; a link code is taken once; failure records stay bounded; outbox
//! records are handed out in order and only once durable; every record survives a copy to
//! another engine; `flush` returns once everything applied before it is durable (checked by
//! reopening, in `embedded/tests.rs`, for engines with a disk).

use super::*;
use crate::message::{ChannelKind, Speaker, Status};
use futures::future::BoxFuture;

type Check = for<'a> fn(&'a dyn Store) -> BoxFuture<'a, ()>;

macro_rules! checks {
    ($($name:literal => $check:ident),* $(,)?) => {
        &[$(($name, |store| Box::pin($check(store)))),*]
    };
}

/// Every check of the contract, by name.
pub(crate) const CHECKS: &[(&str, Check)] = checks![
    "purge_closed" => purge_closed_keeps_open_and_recent_conversations,
    "link_codes" => link_codes_expire_and_failures_are_counted,
    "link_code_once" => a_link_code_is_taken_once_by_concurrent_callers,
    "inbound" => inbound_ids_keep_their_outcome_until_purged,
    "recent_messages" => recent_messages_are_the_last_ones_in_order,
    "access_control" => keys_sessions_and_the_audit_are_kept,
    "customer_data" => a_customer_is_found_exported_and_erased_whole,
    "outbox" => outbox_records_leave_with_their_turn_in_order,
    "outbox_failed" => a_refused_record_moves_to_the_failed_deliveries,
    "channel_state" => channel_state_is_kept_and_updated_atomically,
    "queue_and_claims" => queue_entries_and_assignments_follow_the_change,
    "hostile_text" => any_text_a_customer_sends_is_stored_as_sent,
];

/// Runs every check, each on a fresh store from `fresh`.
pub(crate) async fn run_all<F, Fut>(fresh: F)
where
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Store>>,
{
    for (name, check) in CHECKS {
        eprintln!("store contract: {name}");
        let store = fresh(name).await;
        check(store.as_ref()).await;
    }
}

#[tokio::test]
async fn sled_keeps_the_store_contract() {
    run_all(|_| async { temporary().unwrap() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_the_store_contract() {
    let cluster = std::sync::Arc::new(cluster::Cluster::start().expect("a throwaway PostgreSQL"));
    run_all(|name| {
        let cluster = cluster.clone();
        async move {
            let url = cluster.new_database(name).expect("a database per check");
            Arc::new(PgStore::connect(&url).await.expect("connect")) as Arc<dyn Store>
        }
    })
    .await;
}

/// Everything one engine holds copies into the other and reads back the same, both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_copies_to_postgres_and_back_whole() {
    let cluster = cluster::Cluster::start().expect("a throwaway PostgreSQL");
    let sled = temporary().unwrap();
    fill(sled.as_ref()).await;
    let pg: Arc<dyn Store> = Arc::new(PgStore::connect(&cluster.url()).await.unwrap());
    let there = copy::copy(sled.as_ref(), pg.as_ref(), &|_, _| {})
        .await
        .unwrap();
    assert!(there.len() >= 10, "most tables hold something: {there:?}");
    assert!(
        matches!(
            copy::copy(sled.as_ref(), pg.as_ref(), &|_, _| {}).await,
            Err(copy::CopyError::NotEmpty(_))
        ),
        "a second copy into the same store is refused"
    );
    let back = temporary().unwrap();
    let returned = copy::copy(pg.as_ref(), back.as_ref(), &|_, _| {})
        .await
        .unwrap();
    assert_eq!(
        there, returned,
        "counts and checksums agree after the round trip"
    );
    // And the copy works as a store: the conversation reads, the outbox delivers in order.
    let id = ConversationId("t1".into());
    assert_eq!(back.messages(&id).await.unwrap().len(), 2);
    assert_eq!(pg.messages(&id).await.unwrap().len(), 2);
    let pending = pg.outbox_pending(ChannelKind::Telegram, 10).await.unwrap();
    assert_eq!(pending.len(), 1, "t1's answer was refused: only t2's waits");
    assert_eq!(pg.failed_deliveries(&id).await.unwrap().len(), 1);
    pg.apply(telegram_turn("t3", "after the move"))
        .await
        .unwrap();
    let pending = pg.outbox_pending(ChannelKind::Telegram, 10).await.unwrap();
    assert_eq!(
        pending.last().unwrap().parcel.message.text,
        "after the move"
    );
}

/// A little of everything, for the copy.
async fn fill(store: &dyn Store) {
    let mut change = telegram_turn("t1", "It ships today.");
    change.customers.push(customer(1));
    change
        .identities
        .push((Identity::new(ChannelKind::Telegram, "4242"), "c1".into()));
    change.open.push((
        Identity::new(ChannelKind::Telegram, "4242"),
        Some(ConversationId("t1".into())),
    ));
    change.inbound.push((
        Identity::new(ChannelKind::Telegram, "4242"),
        "m1".into(),
        serde_json::json!({"replies": ["It ships today."]}),
    ));
    change.awaiting.push((ConversationId("t1".into()), true));
    change.audit.push(audit_line("verify"));
    change.audit.push(audit_line("verify"));
    store.apply(change).await.unwrap();
    let mut queued = telegram_turn("t2", "An agent will be with you.");
    queued.conversations[0].status = Status::Queued;
    queued.enqueue.push(queue_entry("care", "t2"));
    queued
        .assign
        .push(("ana".into(), ConversationId("t2".into())));
    store.apply(queued).await.unwrap();
    store.flush().await.unwrap();
    let link = LinkCode {
        identity: Identity::new(ChannelKind::Web, "v1"),
        expires: Utc::now() + chrono::Duration::minutes(10),
    };
    store.insert_link_code("K7QX3MZD", &link).await.unwrap();
    store
        .note_failure("order:10001", Utc::now(), Utc::now())
        .await
        .unwrap();
    store.put_api_key(&api_key("k1")).await.unwrap();
    store
        .put_session(
            "s1",
            &SessionRecord {
                agent: "ana".into(),
                expires: Utc::now() + chrono::Duration::hours(1),
                fingerprint: "f".into(),
            },
        )
        .await
        .unwrap();
    store
        .set_channel_state(
            ChannelKind::Discord,
            "user:555",
            Some(r#"{"kind":"thread","channel":900}"#),
        )
        .await
        .unwrap();
    let failed = store
        .outbox_pending(ChannelKind::Telegram, 10)
        .await
        .unwrap();
    store
        .outbox_failed(
            &failed[0],
            &FailedDelivery {
                message: failed[0].parcel.message.clone(),
                error: "blocked".into(),
                time: Utc::now(),
            },
        )
        .await
        .unwrap();
    store.flush().await.unwrap();
}

fn audit_line(action: &str) -> AuditLine {
    AuditLine {
        time: Utc::now(),
        actor: "ana".into(),
        action: action.into(),
        subject: "h".into(),
    }
}

fn api_key(id: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        name: "shop".into(),
        scope: "messages".into(),
        hash: "00".into(),
        created: Utc::now(),
    }
}

fn queue_entry(queue: &str, conversation: &str) -> QueueEntry {
    let mut entry: QueueEntry = serde_json::from_value(serde_json::json!({
        "queue": queue,
        "conversation_id": conversation,
        "customer": "c1",
        "channel": "telegram",
        "priority": 5,
        "enqueued_at": Utc::now(),
        "reasons": [],
    }))
    .expect("a queue entry");
    entry.queue = queue.into();
    entry
}

/// Retention deletes closed conversations past it (and their messages), nothing else.
pub(super) async fn purge_closed_keeps_open_and_recent_conversations(store: &dyn Store) {
    let old = Utc::now() - chrono::Duration::days(40);
    let mut change = Change::default();
    for (id, status, when) in [
        ("old-closed", Status::Closed, old),
        ("old-open", Status::Bot, old),
        ("new-closed", Status::Closed, Utc::now()),
    ] {
        change.conversations.push(conversation(id, status, when));
        change.messages.push((
            ConversationId(id.into()),
            0,
            StoredMessage {
                from: Speaker::Customer,
                text: "hi".into(),
                time: when,
                analysis: None,
            },
        ));
    }
    store.apply(change).await.unwrap();
    let purged = store
        .purge_closed(Utc::now() - chrono::Duration::days(30))
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let gone = ConversationId("old-closed".into());
    assert!(store.conversation(&gone).await.unwrap().is_none());
    assert!(store.messages(&gone).await.unwrap().is_empty());
    for kept in ["old-open", "new-closed"] {
        let id = ConversationId(kept.into());
        assert!(store.conversation(&id).await.unwrap().is_some());
        assert_eq!(store.messages(&id).await.unwrap().len(), 1);
    }
}

/// Expired link codes are purged; wrong redemptions are counted per identity in a window.
pub(super) async fn link_codes_expire_and_failures_are_counted(store: &dyn Store) {
    let who = Identity::new(ChannelKind::Web, "v1");
    let expired = LinkCode {
        identity: who.clone(),
        expires: Utc::now() - chrono::Duration::minutes(1),
    };
    let valid = LinkCode {
        identity: who.clone(),
        expires: Utc::now() + chrono::Duration::minutes(10),
    };
    assert!(store.insert_link_code("111111", &expired).await.unwrap());
    assert!(store.insert_link_code("222222", &valid).await.unwrap());
    assert_eq!(store.purge_link_codes(Utc::now()).await.unwrap(), 1);
    assert!(store.take_link_code("111111").await.unwrap().is_none());
    assert!(store.take_link_code("222222").await.unwrap().is_some());

    let now = Utc::now();
    let hour_ago = now - chrono::Duration::hours(1);
    let who = who.key();
    store
        .note_failure(
            &who,
            now - chrono::Duration::hours(2),
            hour_ago - chrono::Duration::hours(2),
        )
        .await
        .unwrap();
    assert_eq!(store.note_failure(&who, now, hour_ago).await.unwrap(), 1);
    assert_eq!(store.failures(&who, hour_ago).await.unwrap(), 1);
    // One key's record stays bounded however many failures are noted.
    for _ in 0..MAX_NOTED_FAILURES + 10 {
        store.note_failure("link-all", now, hour_ago).await.unwrap();
    }
    assert_eq!(
        store.failures("link-all", hour_ago).await.unwrap(),
        MAX_NOTED_FAILURES
    );
}

/// An inbound id is recorded with its outcome in the same change, and forgotten by age.
pub(super) async fn inbound_ids_keep_their_outcome_until_purged(store: &dyn Store) {
    let who = Identity::new(ChannelKind::Telegram, "4242");
    assert_eq!(store.seen_inbound(&who, "m1").await.unwrap(), None);
    let mut change = telegram_turn("t1", "ok");
    change.inbound.push((
        who.clone(),
        "m1".into(),
        serde_json::json!({"replies": ["ok"]}),
    ));
    store.apply(change).await.unwrap();
    assert_eq!(
        store.seen_inbound(&who, "m1").await.unwrap(),
        Some(serde_json::json!({"replies": ["ok"]}))
    );
    let other = Identity::new(ChannelKind::Telegram, "7");
    assert_eq!(
        store.seen_inbound(&other, "m1").await.unwrap(),
        None,
        "ids are per sender"
    );
    assert_eq!(
        store
            .purge_inbound(Utc::now() - chrono::Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .purge_inbound(Utc::now() + chrono::Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.seen_inbound(&who, "m1").await.unwrap(), None);
}

/// Only the newest messages are read when asked for a few.
pub(super) async fn recent_messages_are_the_last_ones_in_order(store: &dyn Store) {
    let now = Utc::now();
    let id = ConversationId("r1".into());
    let messages = (0..10)
        .map(|i| {
            (
                id.clone(),
                i,
                StoredMessage {
                    from: Speaker::Customer,
                    text: format!("m{i}"),
                    time: now,
                    analysis: None,
                },
            )
        })
        .collect();
    store
        .apply(Change {
            messages,
            ..Change::default()
        })
        .await
        .unwrap();
    let texts: Vec<String> = store
        .recent_messages(&id, 3)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts, ["m7", "m8", "m9"]);
}

/// API keys and sessions are kept, listed and removed by id; expired sessions are purged;
/// audit lines read back in the order written, two of the same instant both kept.
pub(super) async fn keys_sessions_and_the_audit_are_kept(store: &dyn Store) {
    let now = Utc::now();
    let key = |id: &str| ApiKeyRecord {
        id: id.into(),
        name: format!("key {id}"),
        hash: "00".repeat(32),
        scope: "customer".into(),
        created: now,
    };
    store.put_api_key(&key("b")).await.unwrap();
    store.put_api_key(&key("a")).await.unwrap();
    assert_eq!(store.api_key("a").await.unwrap(), Some(key("a")));
    let ids: Vec<String> = store
        .api_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(store.remove_api_key("a").await.unwrap());
    assert!(!store.remove_api_key("a").await.unwrap());
    assert_eq!(store.api_key("a").await.unwrap(), None);

    let session = |mins: i64| SessionRecord {
        agent: "ana".into(),
        expires: now + chrono::Duration::minutes(mins),
        fingerprint: "f".into(),
    };
    store.put_session("old", &session(-1)).await.unwrap();
    store.put_session("new", &session(60)).await.unwrap();
    assert_eq!(store.purge_sessions(now).await.unwrap(), 1);
    assert_eq!(store.session("old").await.unwrap(), None);
    assert_eq!(store.session("new").await.unwrap(), Some(session(60)));
    assert!(store.remove_session("new").await.unwrap());
    assert_eq!(store.session("new").await.unwrap(), None);

    let line = |what: &str| AuditLine {
        time: now,
        actor: "ana".into(),
        action: what.into(),
        subject: "h".into(),
    };
    store.audit(&line("first")).await.unwrap();
    store.audit(&line("second")).await.unwrap();
    let actions: Vec<String> = store
        .audit_lines()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.action)
        .collect();
    assert_eq!(actions, ["first", "second"]);
}

/// A customer is found by id, exported with their conversations and messages, and erased
/// with everything filed under them; another customer is untouched.
pub(super) async fn a_customer_is_found_exported_and_erased_whole(store: &dyn Store) {
    let now = Utc::now();
    let mut change = Change::default();
    for i in [1, 2] {
        change.customers.push(customer(i));
        let mut record = conversation(&format!("conv{i}"), Status::Bot, now);
        record.customer = format!("c{i}");
        record.channel_user = format!("u{i}");
        change.conversations.push(record);
        change.messages.push((
            ConversationId(format!("conv{i}")),
            0,
            StoredMessage {
                from: Speaker::Customer,
                text: format!("hello from {i}"),
                time: now,
                analysis: None,
            },
        ));
    }
    store.apply(change).await.unwrap();
    assert_eq!(
        store.find_customer("c1").await.unwrap().map(|c| c.id),
        Some("c1".into())
    );
    let export = store
        .export_customer("c1")
        .await
        .unwrap()
        .expect("c1 is there");
    assert_eq!(export.customer.id, "c1");
    assert_eq!(export.conversations.len(), 1);
    assert_eq!(export.conversations[0].messages[0].text, "hello from 1");
    let audit = AuditLine {
        time: now,
        actor: "ana".into(),
        action: "erase".into(),
        subject: "h".into(),
    };
    assert!(store.erase_customer("c1", &audit).await.unwrap().is_some());
    assert!(store.find_customer("c1").await.unwrap().is_none());
    assert!(store
        .conversation(&ConversationId("conv1".into()))
        .await
        .unwrap()
        .is_none());
    assert!(store
        .messages(&ConversationId("conv1".into()))
        .await
        .unwrap()
        .is_empty());
    assert!(store.erase_customer("c1", &audit).await.unwrap().is_none());
    assert!(store.find_customer("c2").await.unwrap().is_some());
    assert_eq!(
        store
            .messages(&ConversationId("conv2".into()))
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Of many callers redeeming one code at the same moment, exactly one gets it.
pub(super) async fn a_link_code_is_taken_once_by_concurrent_callers(store: &dyn Store) {
    let link = LinkCode {
        identity: Identity::new(ChannelKind::Web, "v1"),
        expires: Utc::now() + chrono::Duration::minutes(10),
    };
    assert!(store.insert_link_code("ABCD1234", &link).await.unwrap());
    assert!(
        !store.insert_link_code("ABCD1234", &link).await.unwrap(),
        "a taken code is not reissued"
    );
    let takers = (0..8).map(|_| store.take_link_code("ABCD1234"));
    let got = futures::future::join_all(takers).await;
    let winners = got.into_iter().filter(|r| matches!(r, Ok(Some(_)))).count();
    assert_eq!(winners, 1);
    // Concurrent failures under one key are all counted.
    let now = Utc::now();
    let notes =
        (0..10).map(|_| store.note_failure("link-all", now, now - chrono::Duration::hours(1)));
    futures::future::join_all(notes).await;
    assert_eq!(
        store
            .failures("link-all", now - chrono::Duration::hours(1))
            .await
            .unwrap(),
        10
    );
}

/// Platform replies are queued by the change that wrote them, handed out per channel in the
/// order written, keep their progress, and leave once done; the widget's are not queued.
pub(super) async fn outbox_records_leave_with_their_turn_in_order(store: &dyn Store) {
    store.apply(telegram_turn("t1", "first")).await.unwrap();
    store.apply(telegram_turn("t2", "second")).await.unwrap();
    let mut web = telegram_turn("w1", "on the widget");
    web.conversations[0].channel = ChannelKind::Web;
    store.apply(web).await.unwrap();
    store
        .queue_outbox(Outbound {
            conversation_id: ConversationId("t3".into()),
            channel: ChannelKind::Discord,
            channel_user: "555".into(),
            text: "linked".into(),
            from: Speaker::Bot,
            time: Utc::now(),
        })
        .await
        .unwrap();
    store.flush().await.unwrap();
    let pending = store
        .outbox_pending(ChannelKind::Telegram, 10)
        .await
        .unwrap();
    let texts: Vec<_> = pending
        .iter()
        .map(|e| e.parcel.message.text.as_str())
        .collect();
    assert_eq!(texts, ["first", "second"]);
    assert!(pending[0].id < pending[1].id);
    assert!(
        pending[0].parcel.bot_answer,
        "a bot answer of a bot-owned conversation"
    );
    assert_eq!(store.outbox_len(ChannelKind::Telegram).await.unwrap(), 2);
    assert_eq!(store.outbox_len(ChannelKind::Web).await.unwrap(), 0);
    assert_eq!(
        store
            .outbox_pending(ChannelKind::Discord, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .outbox_pending(ChannelKind::Telegram, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    let mut first = pending[0].clone();
    first.parcel.pieces_sent = 1;
    first.parcel.attempts = 2;
    store.outbox_progress(&first).await.unwrap();
    let again = store
        .outbox_pending(ChannelKind::Telegram, 10)
        .await
        .unwrap();
    assert_eq!(
        (again[0].parcel.pieces_sent, again[0].parcel.attempts),
        (1, 2)
    );
    store.outbox_done(&again[0]).await.unwrap();
    store.flush().await.unwrap();
    let left = store
        .outbox_pending(ChannelKind::Telegram, 10)
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].parcel.message.text, "second");
}

/// A refused record leaves the outbox and is kept, for its conversation's agent.
pub(super) async fn a_refused_record_moves_to_the_failed_deliveries(store: &dyn Store) {
    store
        .apply(telegram_turn("t1", "never arrives"))
        .await
        .unwrap();
    store.flush().await.unwrap();
    let entry = store
        .outbox_pending(ChannelKind::Telegram, 10)
        .await
        .unwrap()
        .remove(0);
    let failed = FailedDelivery {
        message: entry.parcel.message.clone(),
        error: "Forbidden: bot was blocked by the user".into(),
        time: Utc::now(),
    };
    store.outbox_failed(&entry, &failed).await.unwrap();
    store.flush().await.unwrap();
    assert!(store
        .outbox_pending(ChannelKind::Telegram, 10)
        .await
        .unwrap()
        .is_empty());
    let kept = store
        .failed_deliveries(&ConversationId("t1".into()))
        .await
        .unwrap();
    assert_eq!(kept, [failed]);
    assert!(store
        .failed_deliveries(&ConversationId("t2".into()))
        .await
        .unwrap()
        .is_empty());
}

/// An adapter's small records: set, read, updated under a lock, listed in key order.
pub(super) async fn channel_state_is_kept_and_updated_atomically(store: &dyn Store) {
    let d = ChannelKind::Discord;
    store
        .set_channel_state(d, "user:2", Some("b"))
        .await
        .unwrap();
    store
        .set_channel_state(d, "user:1", Some("a"))
        .await
        .unwrap();
    store
        .set_channel_state(ChannelKind::Telegram, "user:1", Some("t"))
        .await
        .unwrap();
    assert_eq!(
        store.channel_state(d, "user:1").await.unwrap().as_deref(),
        Some("a")
    );
    let listed = store.channel_states(d).await.unwrap();
    assert_eq!(
        listed,
        [
            ("user:1".to_string(), "a".to_string()),
            ("user:2".into(), "b".into())
        ]
    );
    let count = |old: Option<&str>| {
        Some((old.and_then(|o| o.parse::<u32>().ok()).unwrap_or(0) + 1).to_string())
    };
    let updates = (0..20).map(|_| store.update_channel_state(d, "seen:9", &count));
    for r in futures::future::join_all(updates).await {
        r.unwrap();
    }
    assert_eq!(
        store.channel_state(d, "seen:9").await.unwrap().as_deref(),
        Some("20")
    );
    store.set_channel_state(d, "user:2", None).await.unwrap();
    assert_eq!(store.channel_state(d, "user:2").await.unwrap(), None);
    assert_eq!(
        store.channel_states(ChannelKind::Telegram).await.unwrap(),
        [("user:1".to_string(), "t".to_string())]
    );
}

/// Queue entries and agents' claims are written and removed by the change that says so.
pub(super) async fn queue_entries_and_assignments_follow_the_change(store: &dyn Store) {
    let mut change = telegram_turn("t1", "An agent will be with you.");
    change.conversations[0].status = Status::Queued;
    change.enqueue.push(queue_entry("care", "t1"));
    store.apply(change).await.unwrap();
    let queued = store.queue_entries().await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].conversation_id, ConversationId("t1".into()));
    let claim = Change {
        dequeue: vec![("care".into(), ConversationId("t1".into()))],
        assign: vec![("ana".into(), ConversationId("t1".into()))],
        ..Change::default()
    };
    store.apply(claim).await.unwrap();
    assert!(store.queue_entries().await.unwrap().is_empty());
    assert_eq!(
        store.assignments().await.unwrap(),
        [("ana".to_string(), ConversationId("t1".into()))]
    );
    let release = Change {
        unassign: vec![("ana".into(), ConversationId("t1".into()))],
        ..Change::default()
    };
    store.apply(release).await.unwrap();
    assert!(store.assignments().await.unwrap().is_empty());
    assert_eq!(store.conversation_count().await.unwrap(), 1);
}

/// Whatever a customer types (control characters, emoji, right-to-left text, a quote that
/// ends SQL) is stored and read back as typed, in every field it reaches. (NUL characters
/// are dropped at intake, `Inbound::strip_nul`: PostgreSQL's text cannot hold them.)
pub(super) async fn any_text_a_customer_sends_is_stored_as_sent(store: &dyn Store) {
    let nasty = "it's 'quoted' \u{202e}txet ; DROP TABLE messages; -- 🙂\t\r\n\u{1}";
    let mut change = telegram_turn("t1", nasty);
    change.conversations[0].channel_user = format!("user{nasty}");
    change.messages[0].2.text = nasty.to_string();
    let who = Identity::new(ChannelKind::Telegram, &format!("user{nasty}"));
    change
        .inbound
        .push((who.clone(), format!("id{nasty}"), serde_json::json!(nasty)));
    store.apply(change).await.unwrap();
    store.flush().await.unwrap();
    let messages = store.messages(&ConversationId("t1".into())).await.unwrap();
    assert_eq!(messages[0].text, nasty);
    assert_eq!(messages[1].text, nasty);
    assert_eq!(
        store
            .seen_inbound(&who, &format!("id{nasty}"))
            .await
            .unwrap(),
        Some(serde_json::json!(nasty))
    );
    let sent = store
        .outbox_pending(ChannelKind::Telegram, 10)
        .await
        .unwrap();
    assert_eq!(sent[0].parcel.message.text, nasty);
    assert_eq!(sent[0].parcel.message.channel_user, format!("user{nasty}"));
    store
        .note_failure(&who.key(), Utc::now(), Utc::now())
        .await
        .unwrap();
    assert_eq!(
        store
            .failures(&who.key(), Utc::now() - chrono::Duration::hours(1))
            .await
            .unwrap(),
        1
    );
}

pub(crate) fn customer(i: usize) -> Customer {
    Customer {
        id: format!("c{i}"),
        tier: None,
        lifetime_value: None,
        name: None,
        email: None,
        shop_customer_id: None,
        identities: vec![Identity {
            channel: ChannelKind::Rest,
            user: format!("u{i}"),
        }],
        created: Utc::now(),
        conversations: 0,
        blocked: None,
        shop_verified: Vec::new(),
    }
}

pub(crate) fn conversation(id: &str, status: Status, updated: DateTime<Utc>) -> ConversationRecord {
    ConversationRecord {
        id: ConversationId(id.into()),
        origin: None,
        anonymous_in_queue: false,
        customer: "c1".into(),
        channel: ChannelKind::Rest,
        channel_user: "u1".into(),
        status,
        assigned_agent: None,
        queue: None,
        priority: 0,
        message_count: 1,
        sentiment_trajectory: vec![],
        slots: Default::default(),
        pending: None,
        offered_human: false,
        unresolved_turns: 0,
        escalation: vec![],
        queued_since: None,
        created: updated,
        updated,
        last_customer_at: updated,
        last_agent_at: None,
        delivery_failures: vec![],
        frustration: 0.0,
        frustration_reasons: vec![],
        late_parcel_raised: false,
        access: Default::default(),
        llm_summary: None,
    }
}

/// A turn on Telegram: the customer's message, the bot's answer, the record.
pub(crate) fn telegram_turn(conv: &str, answer: &str) -> Change {
    let now = Utc::now();
    let mut record = conversation(conv, Status::Bot, now);
    record.channel = ChannelKind::Telegram;
    record.channel_user = "4242".into();
    let message = |from: Speaker, text: &str| StoredMessage {
        from,
        text: text.into(),
        time: now,
        analysis: None,
    };
    let id = record.id.clone();
    Change {
        messages: vec![
            (id.clone(), 0, message(Speaker::Customer, "where is 10001?")),
            (id, 1, message(Speaker::Bot, answer)),
        ],
        conversations: vec![record],
        ..Change::default()
    }
}
