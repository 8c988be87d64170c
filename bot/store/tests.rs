use super::*;
use crate::message::{ChannelKind, Speaker};
use std::sync::Arc;

fn customer(i: usize) -> Customer {
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

/// Many writers acknowledging at once (concurrent `flush_async` deadlocks in sled 0.34):
/// every flush returns, and every acknowledged write is there after reopening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_acknowledgements_all_complete_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let writers: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .apply(Change {
                        customers: vec![customer(i)],
                        ..Default::default()
                    })
                    .unwrap();
                store.flush().await.unwrap();
            })
        })
        .collect();
    let all = futures::future::join_all(writers);
    // A guard against the deadlock hanging the suite, not a speed assertion.
    let done = tokio::time::timeout(std::time::Duration::from_secs(60), all).await;
    assert!(done.is_ok(), "flushes deadlocked");
    drop(store);
    let reopened = SledStore::open(dir.path()).unwrap();
    for i in 0..200 {
        assert!(
            reopened.customer(&format!("c{i}")).unwrap().is_some(),
            "c{i} lost"
        );
    }
}

fn conversation(id: &str, status: Status, updated: DateTime<Utc>) -> ConversationRecord {
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

/// Retention deletes closed conversations past it (and their messages), nothing else.
#[test]
fn purge_closed_keeps_open_and_recent_conversations() {
    let store = SledStore::temporary().unwrap();
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
    store.apply(change).unwrap();
    let purged = store
        .purge_closed(Utc::now() - chrono::Duration::days(30))
        .unwrap();
    assert_eq!(purged, 1);
    let gone = ConversationId("old-closed".into());
    assert!(store.conversation(&gone).unwrap().is_none());
    assert!(store.messages(&gone).unwrap().is_empty());
    for kept in ["old-open", "new-closed"] {
        let id = ConversationId(kept.into());
        assert!(store.conversation(&id).unwrap().is_some());
        assert_eq!(store.messages(&id).unwrap().len(), 1);
    }
}

/// Expired link codes are purged; wrong redemptions are counted per identity in a window.
#[test]
fn link_codes_expire_and_failures_are_counted() {
    let store = SledStore::temporary().unwrap();
    let who = Identity::new(ChannelKind::Web, "v1");
    let expired = LinkCode {
        identity: who.clone(),
        expires: Utc::now() - chrono::Duration::minutes(1),
    };
    let valid = LinkCode {
        identity: who.clone(),
        expires: Utc::now() + chrono::Duration::minutes(10),
    };
    assert!(store.insert_link_code("111111", &expired).unwrap());
    assert!(store.insert_link_code("222222", &valid).unwrap());
    assert_eq!(store.purge_link_codes(Utc::now()).unwrap(), 1);
    assert!(store.take_link_code("111111").unwrap().is_none());
    assert!(store.take_link_code("222222").unwrap().is_some());

    let now = Utc::now();
    let hour_ago = now - chrono::Duration::hours(1);
    let who = who.key();
    store
        .note_failure(
            &who,
            now - chrono::Duration::hours(2),
            hour_ago - chrono::Duration::hours(2),
        )
        .unwrap();
    assert_eq!(store.note_failure(&who, now, hour_ago).unwrap(), 1);
    assert_eq!(store.failures(&who, hour_ago).unwrap(), 1);
    // One key's record stays bounded however many failures are noted.
    for _ in 0..MAX_NOTED_FAILURES + 10 {
        store.note_failure("link-all", now, hour_ago).unwrap();
    }
    assert_eq!(
        store.failures("link-all", hour_ago).unwrap(),
        MAX_NOTED_FAILURES
    );
}

#[test]
fn stale_link_failures_are_purged_and_fresh_ones_kept() {
    let store = SledStore::temporary().unwrap();
    let now = Utc::now();
    let old = Identity::new(ChannelKind::Web, "old-guesser").key();
    let fresh = Identity::new(ChannelKind::Web, "fresh-guesser").key();
    let long_ago = now - chrono::Duration::hours(25);
    store.note_failure(&old, long_ago, long_ago).unwrap();
    store.note_failure(&fresh, now, now).unwrap();
    // An order check failed 20 hours ago still counts for its day: kept.
    let yesterday = now - chrono::Duration::hours(20);
    store
        .note_failure("order:10009", yesterday, yesterday)
        .unwrap();
    assert_eq!(store.purge_link_codes(now).unwrap(), 1);
    let since = now - chrono::Duration::hours(1);
    assert_eq!(store.failures(&fresh, since).unwrap(), 1);
    assert_eq!(store.failures("order:10009", long_ago).unwrap(), 1);
    assert_eq!(
        store.trees[LINK_ATTEMPTS].len(),
        2,
        "only the fresh records are left"
    );
}

/// A turn on Telegram: the customer's message, the bot's answer, the record.
fn telegram_turn(conv: &str, answer: &str) -> Change {
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

/// The bot's answer is queued for the platform in the turn's own transaction, becomes
/// deliverable only once flushed, and survives a restart: no relay in between to lose it.
#[tokio::test]
async fn a_platform_reply_is_queued_with_its_turn_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.apply(telegram_turn("t1", "It ships today.")).unwrap();
        let tree = store.channel_tree(ChannelTree::Outbox);
        let (key, value) = tree.iter().next().unwrap().unwrap();
        let parcel: Parcel = serde_json::from_slice(&value).unwrap();
        assert_eq!(parcel.message.text, "It ships today.");
        assert_eq!(parcel.message.channel_user, "4242");
        assert_eq!(tree.len(), 1, "the customer's own message is not sent back");
        assert!(
            !store.outbox_durable(&key),
            "not deliverable before it is on disk"
        );
        store.flush().await.unwrap();
        assert!(store.outbox_durable(&key));
    }
    let reopened = SledStore::open(dir.path()).unwrap();
    let tree = reopened.channel_tree(ChannelTree::Outbox);
    assert_eq!(tree.len(), 1);
    let key = tree.iter().keys().next().unwrap().unwrap();
    assert!(reopened.outbox_durable(&key));
    // a new reply sorts after the one carried over
    reopened.apply(telegram_turn("t2", "Second.")).unwrap();
    let keys: Vec<_> = tree.iter().keys().map(|k| k.unwrap()).collect();
    assert_eq!(keys.len(), 2);
    assert!(keys[0] < keys[1]);
}

/// Widget and REST replies go back in the answer to the request: nothing is queued.
#[test]
fn web_and_rest_replies_are_not_queued_for_a_platform() {
    let store = SledStore::temporary().unwrap();
    let mut change = telegram_turn("w1", "hi");
    change.conversations[0].channel = ChannelKind::Web;
    store.apply(change).unwrap();
    assert_eq!(store.channel_tree(ChannelTree::Outbox).len(), 0);
}

/// An inbound id is recorded with its outcome in the same change, and forgotten by age.
#[test]
fn inbound_ids_keep_their_outcome_until_purged() {
    let store = SledStore::temporary().unwrap();
    let who = Identity::new(ChannelKind::Telegram, "4242");
    assert_eq!(store.seen_inbound(&who, "m1").unwrap(), None);
    let mut change = telegram_turn("t1", "ok");
    change.inbound.push((
        who.clone(),
        "m1".into(),
        serde_json::json!({"replies": ["ok"]}),
    ));
    store.apply(change).unwrap();
    assert_eq!(
        store.seen_inbound(&who, "m1").unwrap(),
        Some(serde_json::json!({"replies": ["ok"]}))
    );
    let other = Identity::new(ChannelKind::Telegram, "7");
    assert_eq!(
        store.seen_inbound(&other, "m1").unwrap(),
        None,
        "ids are per sender"
    );
    assert_eq!(
        store
            .purge_inbound(Utc::now() - chrono::Duration::hours(1))
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .purge_inbound(Utc::now() + chrono::Duration::seconds(1))
            .unwrap(),
        1
    );
    assert_eq!(store.seen_inbound(&who, "m1").unwrap(), None);
}

/// Only the newest messages are read when asked for a few.
#[test]
fn recent_messages_are_the_last_ones_in_order() {
    let store = SledStore::temporary().unwrap();
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
        .unwrap();
    let texts: Vec<String> = store
        .recent_messages(&id, 3)
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts, ["m7", "m8", "m9"]);
}

/// Records stored before the LLM's handoff summary existed read as having none.
#[test]
fn a_record_without_an_llm_summary_still_reads() {
    let record = conversation("old", Status::Queued, Utc::now());
    let mut json = serde_json::to_value(&record).unwrap();
    json.as_object_mut().unwrap().remove("llm_summary");
    let read: ConversationRecord = serde_json::from_value(json).unwrap();
    assert_eq!(read, record);
    assert_eq!(read.llm_summary, None);
}
