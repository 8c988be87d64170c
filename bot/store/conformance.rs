//! The [`Store`] contract, checked. Every check takes a fresh store through `&dyn Store`
//! only, so each implementation runs the same suite (sled: `sled_keeps_the_store_contract`).
//! What the trait promises: `apply` writes a whole [`Change`] or nothing; reads see every
//! change applied before them; messages read back in their sequence order; a link code is
//! taken once; failure records stay bounded; `flush` returns once everything applied before
//! it is durable (checked by reopening, in `tests.rs`, for engines with a disk).

use super::tests::{conversation, customer, telegram_turn};
use super::*;
use crate::message::{ChannelKind, Speaker};

/// Every check of the contract, by name.
pub(super) const CHECKS: &[(&str, fn(&dyn Store))] = &[
    (
        "purge_closed",
        purge_closed_keeps_open_and_recent_conversations,
    ),
    ("link_codes", link_codes_expire_and_failures_are_counted),
    ("inbound", inbound_ids_keep_their_outcome_until_purged),
    (
        "recent_messages",
        recent_messages_are_the_last_ones_in_order,
    ),
    ("access_control", keys_sessions_and_the_audit_are_kept),
    (
        "customer_data",
        a_customer_is_found_exported_and_erased_whole,
    ),
];

#[test]
fn sled_keeps_the_store_contract() {
    for (name, check) in CHECKS {
        eprintln!("store contract: {name}");
        check(&SledStore::temporary().unwrap());
    }
}

/// Retention deletes closed conversations past it (and their messages), nothing else.
pub(super) fn purge_closed_keeps_open_and_recent_conversations(store: &dyn Store) {
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
pub(super) fn link_codes_expire_and_failures_are_counted(store: &dyn Store) {
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

/// An inbound id is recorded with its outcome in the same change, and forgotten by age.
pub(super) fn inbound_ids_keep_their_outcome_until_purged(store: &dyn Store) {
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
pub(super) fn recent_messages_are_the_last_ones_in_order(store: &dyn Store) {
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

/// API keys and sessions are kept, listed and removed by id; expired sessions are purged;
/// audit lines read back in the order written, two of the same instant both kept.
pub(super) fn keys_sessions_and_the_audit_are_kept(store: &dyn Store) {
    let now = Utc::now();
    let key = |id: &str| ApiKeyRecord {
        id: id.into(),
        name: format!("key {id}"),
        hash: "00".repeat(32),
        scope: "customer".into(),
        created: now,
    };
    store.put_api_key(&key("b")).unwrap();
    store.put_api_key(&key("a")).unwrap();
    assert_eq!(store.api_key("a").unwrap(), Some(key("a")));
    let ids: Vec<String> = store
        .api_keys()
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(store.remove_api_key("a").unwrap());
    assert!(!store.remove_api_key("a").unwrap());
    assert_eq!(store.api_key("a").unwrap(), None);

    let session = |mins: i64| SessionRecord {
        agent: "ana".into(),
        expires: now + chrono::Duration::minutes(mins),
        fingerprint: "f".into(),
    };
    store.put_session("old", &session(-1)).unwrap();
    store.put_session("new", &session(60)).unwrap();
    assert_eq!(store.purge_sessions(now).unwrap(), 1);
    assert_eq!(store.session("old").unwrap(), None);
    assert_eq!(store.session("new").unwrap(), Some(session(60)));
    assert!(store.remove_session("new").unwrap());
    assert_eq!(store.session("new").unwrap(), None);

    let line = |what: &str| AuditLine {
        time: now,
        actor: "ana".into(),
        action: what.into(),
        subject: "h".into(),
    };
    store.audit(&line("first")).unwrap();
    store.audit(&line("second")).unwrap();
    let actions: Vec<String> = store
        .audit_lines()
        .unwrap()
        .into_iter()
        .map(|l| l.action)
        .collect();
    assert_eq!(actions, ["first", "second"]);
}

/// A customer is found by id, exported with their conversations and messages, and erased
/// with everything filed under them; another customer is untouched.
pub(super) fn a_customer_is_found_exported_and_erased_whole(store: &dyn Store) {
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
    store.apply(change).unwrap();
    assert_eq!(
        store.find_customer("c1").unwrap().map(|c| c.id),
        Some("c1".into())
    );
    let export = store.export_customer("c1").unwrap().expect("c1 is there");
    assert_eq!(export.customer.id, "c1");
    assert_eq!(export.conversations.len(), 1);
    assert_eq!(export.conversations[0].messages[0].text, "hello from 1");
    let audit = AuditLine {
        time: now,
        actor: "ana".into(),
        action: "erase".into(),
        subject: "h".into(),
    };
    assert!(store.erase_customer("c1", &audit).unwrap().is_some());
    assert!(store.find_customer("c1").unwrap().is_none());
    assert!(store
        .conversation(&ConversationId("conv1".into()))
        .unwrap()
        .is_none());
    assert!(store
        .messages(&ConversationId("conv1".into()))
        .unwrap()
        .is_empty());
    assert!(store.erase_customer("c1", &audit).unwrap().is_none());
    assert!(store.find_customer("c2").unwrap().is_some());
    assert_eq!(
        store
            .messages(&ConversationId("conv2".into()))
            .unwrap()
            .len(),
        1
    );
}
