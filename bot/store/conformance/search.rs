//! The checks of [`ConversationSearch`] and of the settings the nodes share.

use super::*;
use crate::message::Speaker;

/// Four conversations of three customers, days apart, each with a few messages.
async fn history(store: &dyn Store) -> DateTime<Utc> {
    let now = Utc::now();
    let day = chrono::Duration::days(1);
    let mut change = Change::default();
    let mut ann = customer(1);
    ann.name = Some("Ann Smith".into());
    ann.email = Some("ann@example.com".into());
    let mut bob = customer(2);
    bob.name = Some("Bob Stone".into());
    let carol = customer(3);
    change.customers.extend([ann, bob, carol]);
    let talk: [(&str, usize, i64, &[&str], Option<&str>); 4] = [
        (
            "s-ann-old",
            1,
            10,
            &["my parcel 10001 is late", "thanks"],
            Some("10001"),
        ),
        (
            "s-ann-new",
            1,
            1,
            &["I want a REFUND for 10002, 50%_off did not apply"],
            None,
        ),
        (
            "s-bob",
            2,
            3,
            &["where is 100012?", "please refund it"],
            None,
        ),
        ("s-carol", 3, 5, &["hello", "about order #A-77"], None),
    ];
    for (id, who, days_ago, lines, order) in talk {
        let at = now - day * days_ago as i32;
        let mut r = conversation(id, Status::Closed, at);
        r.customer = format!("c{who}");
        r.channel_user = format!("user-{who}");
        if let Some(o) = order {
            r.slots.insert("order".into(), o.into());
        }
        change.conversations.push(r);
        for (seq, text) in lines.iter().enumerate() {
            change.messages.push((
                ConversationId(id.into()),
                seq as u64,
                StoredMessage {
                    from: Speaker::Customer,
                    text: text.to_string(),
                    time: at,
                    analysis: None,
                },
            ));
        }
    }
    store.apply(change).await.unwrap();
    store.flush().await.unwrap();
    now
}

async fn ids(store: &dyn Store, query: SearchQuery) -> Vec<String> {
    let found = store.search_conversations(&query).await.unwrap();
    assert!(found.complete, "a small store is searched whole");
    found
        .hits
        .into_iter()
        .map(|h| h.conversation.id.0)
        .collect()
}

/// Customer (id, name, email, channel user; any case), order (slot or whole-word mention),
/// text (any case, wildcards literal), date window and limit, newest changed first; a
/// query with a problem finds nothing.
pub(super) async fn conversations_are_found_by_customer_order_text_and_date(store: &dyn Store) {
    let now = history(store).await;
    let q = |f: fn(&mut SearchQuery)| {
        let mut q = SearchQuery {
            limit: 20,
            ..SearchQuery::default()
        };
        f(&mut q);
        q
    };
    let ann = vec!["s-ann-new".to_string(), "s-ann-old".to_string()];
    assert_eq!(
        ids(store, q(|q| q.customer = Some("ANN SMITH".into()))).await,
        ann
    );
    assert_eq!(
        ids(store, q(|q| q.customer = Some("@example.".into()))).await,
        ann
    );
    assert_eq!(
        ids(store, q(|q| q.customer = Some("user-2".into()))).await,
        ["s-bob"]
    );
    assert_eq!(
        ids(store, q(|q| q.customer = Some("c3".into()))).await,
        ["s-carol"]
    );
    // The slot, or a message naming it as a whole word: "100012" is another order.
    assert_eq!(
        ids(store, q(|q| q.order = Some("10001".into()))).await,
        ["s-ann-old"]
    );
    assert_eq!(
        ids(store, q(|q| q.order = Some("10002".into()))).await,
        ["s-ann-new"]
    );
    assert_eq!(
        ids(store, q(|q| q.order = Some("a-77".into()))).await,
        ["s-carol"]
    );
    assert!(ids(store, q(|q| q.order = Some("1000".into())))
        .await
        .is_empty());
    assert_eq!(
        ids(store, q(|q| q.text = Some("refund".into()))).await,
        ["s-ann-new", "s-bob"]
    );
    assert_eq!(
        ids(store, q(|q| q.text = Some("50%_off".into()))).await,
        ["s-ann-new"]
    );
    assert!(ids(store, q(|q| q.text = Some("50%off".into())))
        .await
        .is_empty());
    // Every field given must match.
    let both = SearchQuery {
        customer: Some("bob".into()),
        text: Some("refund".into()),
        limit: 20,
        ..SearchQuery::default()
    };
    assert_eq!(ids(store, both).await, ["s-bob"]);
    // The window: active (changed) since `from`, started before `to`.
    let window = SearchQuery {
        from: Some(now - chrono::Duration::days(6)),
        to: Some(now - chrono::Duration::days(2)),
        limit: 20,
        ..SearchQuery::default()
    };
    assert_eq!(ids(store, window).await, ["s-bob", "s-carol"]);
    let limited = SearchQuery {
        from: Some(now - chrono::Duration::days(30)),
        limit: 3,
        ..SearchQuery::default()
    };
    assert_eq!(ids(store, limited).await, ["s-ann-new", "s-bob", "s-carol"]);
    // The snippet is the matching message, cut around the match.
    let found = store
        .search_conversations(&q(|q| q.text = Some("please REFUND".into())))
        .await
        .unwrap();
    assert_eq!(found.hits.len(), 1);
    assert_eq!(found.hits[0].snippet.as_deref(), Some("please refund it"));
    let by_order = store
        .search_conversations(&q(|q| q.order = Some("10001".into())))
        .await
        .unwrap();
    assert_eq!(
        by_order.hits[0].snippet.as_deref(),
        Some("my parcel 10001 is late")
    );
    // Nothing asked, a bad order number, a limit past the bound: nothing searched.
    assert!(ids(store, q(|_| {})).await.is_empty());
    assert!(ids(store, q(|q| q.order = Some("1' OR '1'='1".into())))
        .await
        .is_empty());
    let mut huge = q(|q| q.text = Some("refund".into()));
    huge.limit = MAX_SEARCH_LIMIT + 1;
    assert!(ids(store, huge).await.is_empty());
}

/// Settings set, read by prefix (in name order, a prefix's `%` meaning itself) and removed.
pub(super) async fn settings_are_set_listed_and_removed(store: &dyn Store) {
    store.set_setting("available:ben", Some("1")).await.unwrap();
    store.set_setting("available:ana", Some("x")).await.unwrap();
    store.set_setting("available:ana", Some("2")).await.unwrap();
    store.set_setting("availablex", Some("3")).await.unwrap();
    store.set_setting("a%", Some("4")).await.unwrap();
    let under = store.settings_under("available:").await.unwrap();
    assert_eq!(
        under,
        vec![
            ("available:ana".to_string(), "2".to_string()),
            ("available:ben".to_string(), "1".to_string())
        ]
    );
    assert_eq!(store.settings_under("a%").await.unwrap().len(), 1);
    store.set_setting("available:ana", None).await.unwrap();
    store.set_setting("never-there", None).await.unwrap();
    assert_eq!(store.settings_under("available:").await.unwrap().len(), 1);
    // Agreed settings are the same table: set ones are read by `agreed_setting` too.
    assert_eq!(
        store.agreed_setting("available:ben", "9").await.unwrap(),
        "1"
    );
}
