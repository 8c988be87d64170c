use super::*;
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
