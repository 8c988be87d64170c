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
use crate::message::{ChannelKind, Status};
use futures::future::BoxFuture;

mod checks;
mod deliveries;
mod fixtures;
mod search;
mod versions;
use checks::*;
use deliveries::*;
pub(crate) use fixtures::{conversation, customer, telegram_turn};
use search::*;
use versions::*;

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
    "versions" => versions_are_numbered_kept_whole_and_not_repeated,
    "conversations_since" => conversations_since_are_the_newest_changed_ones,
    "search" => conversations_are_found_by_customer_order_text_and_date,
    "settings" => settings_are_set_listed_and_removed,
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
    store
        .add_version(version("rules", "[queues]\n"))
        .await
        .unwrap();
    store.flush().await.unwrap();
}

pub(super) fn audit_line(action: &str) -> AuditLine {
    AuditLine {
        time: Utc::now(),
        actor: "ana".into(),
        action: action.into(),
        subject: "h".into(),
    }
}

pub(super) fn api_key(id: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        name: "shop".into(),
        scope: "messages".into(),
        hash: "00".into(),
        created: Utc::now(),
    }
}

pub(super) fn queue_entry(queue: &str, conversation: &str) -> QueueEntry {
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
