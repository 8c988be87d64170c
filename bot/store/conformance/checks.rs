//! The checks of the contract, each on a fresh store through `&dyn Store` only.

use super::*;
use crate::message::Speaker;

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

/// `conversations_since` finds the conversations changed at or after a time, newest first,
/// no more than asked for.
pub(super) async fn conversations_since_are_the_newest_changed_ones(store: &dyn Store) {
    let now = Utc::now();
    let mut change = Change::default();
    for (id, days) in [("a", 10), ("b", 3), ("c", 1), ("d", 0)] {
        change.conversations.push(conversation(
            id,
            Status::Bot,
            now - chrono::Duration::days(days),
        ));
    }
    store.apply(change).await.unwrap();
    let ids = |records: Vec<ConversationRecord>| -> Vec<String> {
        records.into_iter().map(|r| r.id.0).collect()
    };
    let week = now - chrono::Duration::days(7);
    assert_eq!(
        ids(store.conversations_since(week, 10).await.unwrap()),
        ["d", "c", "b"]
    );
    assert_eq!(
        ids(store.conversations_since(week, 2).await.unwrap()),
        ["d", "c"]
    );
    assert!(store
        .conversations_since(now + chrono::Duration::days(1), 10)
        .await
        .unwrap()
        .is_empty());
}
