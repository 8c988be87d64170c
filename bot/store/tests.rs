use super::*;
use crate::message::{ChannelKind, Speaker};
use std::sync::Arc;

pub(super) fn customer(i: usize) -> Customer {
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

pub(super) fn conversation(id: &str, status: Status, updated: DateTime<Utc>) -> ConversationRecord {
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
pub(super) fn telegram_turn(conv: &str, answer: &str) -> Change {
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
