use super::*;
use crate::message::ChannelKind;
use crate::store::conformance::{conversation, customer, telegram_turn};
use std::sync::Arc;

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
                    .await
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
            reopened.customer(&format!("c{i}")).await.unwrap().is_some(),
            "c{i} lost"
        );
    }
}

#[tokio::test]
async fn stale_link_failures_are_purged_and_fresh_ones_kept() {
    let store = SledStore::temporary().unwrap();
    let now = Utc::now();
    let old = Identity::new(ChannelKind::Web, "old-guesser").key();
    let fresh = Identity::new(ChannelKind::Web, "fresh-guesser").key();
    let long_ago = now - chrono::Duration::hours(25);
    store.note_failure(&old, long_ago, long_ago).await.unwrap();
    store.note_failure(&fresh, now, now).await.unwrap();
    // An order check failed 20 hours ago still counts for its day: kept.
    let yesterday = now - chrono::Duration::hours(20);
    store
        .note_failure("order:10009", yesterday, yesterday)
        .await
        .unwrap();
    assert_eq!(store.purge_link_codes(now).await.unwrap(), 1);
    let since = now - chrono::Duration::hours(1);
    assert_eq!(store.failures(&fresh, since).await.unwrap(), 1);
    assert_eq!(store.failures("order:10009", long_ago).await.unwrap(), 1);
    assert_eq!(
        store.trees[LINK_ATTEMPTS].len(),
        2,
        "only the fresh records are left"
    );
}

/// The bot's answer is queued for the platform in the turn's own transaction, becomes
/// deliverable only once flushed, and survives a restart: no relay in between to lose it.
#[tokio::test]
async fn a_platform_reply_is_queued_with_its_turn_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store
            .apply(telegram_turn("t1", "It ships today."))
            .await
            .unwrap();
        let tree = store.trees[OUTBOX].clone();
        let (key, value) = tree.iter().next().unwrap().unwrap();
        let parcel: Parcel = serde_json::from_slice(&value).unwrap();
        assert_eq!(parcel.message.text, "It ships today.");
        assert_eq!(parcel.message.channel_user, "4242");
        assert_eq!(tree.len(), 1, "the customer's own message is not sent back");
        let pending = |s: &SledStore| {
            futures::executor::block_on(s.outbox_pending(ChannelKind::Telegram, 10)).unwrap()
        };
        assert!(
            pending(&store).is_empty(),
            "not deliverable before it is on disk"
        );
        store.flush().await.unwrap();
        assert_eq!(pending(&store)[0].id, outbox_sequence_of(&key).unwrap());
    }
    let reopened = SledStore::open(dir.path()).unwrap();
    let tree = reopened.trees[OUTBOX].clone();
    assert_eq!(tree.len(), 1);
    assert_eq!(
        reopened
            .outbox_pending(ChannelKind::Telegram, 10)
            .await
            .unwrap()
            .len(),
        1,
        "what was on disk is deliverable after a restart"
    );
    // a new reply sorts after the one carried over
    reopened
        .apply(telegram_turn("t2", "Second."))
        .await
        .unwrap();
    let keys: Vec<_> = tree.iter().keys().map(|k| k.unwrap()).collect();
    assert_eq!(keys.len(), 2);
    assert!(keys[0] < keys[1]);
}

/// REST replies go back in the answer to the request: nothing is queued. The widget's are
/// queued in their own lane (its courier shows them on the customer's sockets).
#[tokio::test]
async fn rest_replies_are_not_queued_and_widget_replies_are() {
    let store = SledStore::temporary().unwrap();
    let mut change = telegram_turn("r1", "hi");
    change.conversations[0].channel = ChannelKind::Rest;
    store.apply(change).await.unwrap();
    assert_eq!(store.trees[OUTBOX].len(), 0);
    let mut change = telegram_turn("w1", "hi");
    change.conversations[0].channel = ChannelKind::Web;
    store.apply(change).await.unwrap();
    assert_eq!(store.trees[OUTBOX].len(), 1);
    let key = store.trees[OUTBOX].iter().keys().next().unwrap().unwrap();
    assert_eq!(key[0], lane(ChannelKind::Web));
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
