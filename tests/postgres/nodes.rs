//! Two frontdesk nodes on one PostgreSQL database behave as one desk: one customer's
//! messages through either node land in one conversation in order; an agent on one node
//! claims what the other queued (and a second claim is refused); a widget customer on one
//! node sees the reply an agent sent from the other; the Telegram poller runs on one node
//! at a time and moves to a live node when its holder stops renewing.

use std::time::Duration;

use frontdesk::channels::platforms::PlatformsConfig;
use frontdesk::config::Config;
use frontdesk::store::Location;
use serde_json::{json, Value};

use crate::support::eventually;
use crate::support::fakes::telegram::FakeTelegram;
use crate::support::fakes::ChatFake;
use crate::support::nlu::KeywordNlu;
use crate::support::server::{config, serve_with, serve_with_platforms, Widget, ANA, BEN};

/// Two configs on one database, each node with its own data folder.
fn two_nodes(a: &std::path::Path, b: &std::path::Path) -> (Config, Config) {
    let first = config(a);
    let mut second = config(b);
    second.store.url = first.store.url.clone();
    assert!(
        second.store.url.is_some(),
        "the postgres binary runs on PostgreSQL"
    );
    (first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_writing_through_either_node_lands_in_one_conversation_in_order() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ca, cb) = two_nodes(da.path(), db.path());
    let a = serve_with(ca, KeywordNlu).await;
    let b = serve_with(cb, KeywordNlu).await;
    let mut conversation = None;
    let mut said = Vec::new();
    for i in 0..12 {
        let node = if i % 2 == 0 { &a } else { &b };
        let text = format!("what are your delivery options, question {i}");
        // One integration (one API key, stored once for every node) behind a balancer.
        let (status, turn) = node
            .post_message_with(Some(&a.key), json!({"user_id": "two-nodes", "text": text}))
            .await;
        assert_eq!(status, 200, "{turn}");
        let id = turn["conversation_id"].as_str().unwrap().to_string();
        assert_eq!(conversation.get_or_insert(id.clone()), &id, "{turn}");
        said.push(text);
    }
    let id = conversation.unwrap();
    for node in [&a, &b] {
        let ana = node.login(ANA).await;
        let (status, c) = ana.get(&format!("/api/v1/conversations/{id}")).await;
        assert_eq!(status, 200, "{c}");
        let from_customer: Vec<&str> = c["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["from"]["role"] == "customer")
            .map(|m| m["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            from_customer, said,
            "every message once, in order, on both nodes"
        );
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_on_one_node_claims_what_the_other_queued_and_the_widget_hears_them() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ca, cb) = two_nodes(da.path(), db.path());
    let a = serve_with(ca, KeywordNlu).await;
    let b = serve_with(cb, KeywordNlu).await;

    // A widget customer on node A asks for a person.
    let mut widget = Widget::connect(&a, None, None).await;
    widget.send("I want to talk to a human agent").await;
    let turn = widget.next_of("turn").await;
    assert_eq!(turn["status"], "queued", "{turn}");
    let id = turn["conversation_id"].as_str().unwrap().to_string();

    // Ana works on node B: she sees it waiting, and claims it; Ben on A cannot take it too.
    // (Her session and its CSRF tag, made by B, are good on A as well: one secret.)
    let ana = b.login(ANA).await;
    let (status, queues) = ana.get("/api/v1/queues").await;
    assert_eq!(status, 200, "{queues}");
    let waiting = queues
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|q| q["entries"].as_array().cloned().unwrap_or_default())
        .any(|e| e["conversation_id"] == id.as_str());
    assert!(waiting, "node B's queues show what A queued: {queues}");
    ana.act(&id, "claim", None).await;
    let ben = a.login(BEN).await;
    let (status, body) = ben
        .post(&format!("/console/api/conversations/{id}/claim"), None)
        .await;
    assert_eq!(
        status, 409,
        "a second claim from the other node is refused: {body}"
    );

    // Her reply, sent from B, reaches the customer's socket on A.
    while widget.next_of("status").await["status"] != "with_agent" {}
    ana.act(
        &id,
        "reply",
        Some(json!({"text": "Ana here, from the other node."})),
    )
    .await;
    let live = widget.next_of("agent").await;
    assert_eq!(live["text"], "Ana here, from the other node.", "{live}");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_telegram_poller_moves_to_a_live_node_when_its_holder_stops_renewing() {
    let fake = FakeTelegram::start(FakeTelegram::TOKEN).await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ca, mut cb) = two_nodes(da.path(), db.path());
    cb.store.lease_secs = 3;
    // A node that died holding the poller's lease: its row runs out and is never renewed.
    let dead = frontdesk::store::open(&Location::Postgres(ca.store.url.clone().unwrap()))
        .await
        .unwrap();
    assert!(dead
        .take_lease(
            "telegram:poller",
            "a-node-that-died",
            Duration::from_secs(3)
        )
        .await
        .unwrap());
    let mut platforms = PlatformsConfig::default();
    fake.configure(FakeTelegram::TOKEN, &mut platforms);
    let b = serve_with_platforms(cb, KeywordNlu, platforms).await;
    let node_b = b.health().await["node"].as_str().unwrap().to_string();
    let holder = |health: Value| {
        health["leases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == "telegram:poller")
            .map(|l| l["holder"].as_str().unwrap().to_string())
    };
    assert_eq!(
        holder(b.health().await).as_deref(),
        Some("a-node-that-died")
    );
    // Within the lease's time (and one renewal tick), B polls, and answers.
    eventually("node B to take the poller's lease", || async {
        (holder(b.health().await).as_deref() == Some(node_b.as_str())).then_some(())
    })
    .await;
    fake.says(FakeTelegram::CUSTOMER, "where is my order?");
    let sent = fake.wait_for_texts(FakeTelegram::CUSTOMER, 1).await;
    assert!(!sent.is_empty());
    drop(ca);
    b.shutdown().await;
}

/// Messages of one customer sent at the same moment through both nodes are handled one at
/// a time (the customer's lease): none overwrites another, each is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_customers_messages_at_once_through_both_nodes_are_all_kept() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ca, cb) = two_nodes(da.path(), db.path());
    let a = serve_with(ca, KeywordNlu).await;
    let b = serve_with(cb, KeywordNlu).await;
    let sends = (0..16).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        let key = a.key.clone();
        async move {
            let body = json!({"user_id": "racer", "text": format!("delivery options {i}"), "message_id": format!("m{i}")});
            node.post_message_with(Some(&key), body).await
        }
    });
    let turns = futures::future::join_all(sends).await;
    let mut ids: Vec<String> = turns
        .iter()
        .map(|(status, turn)| {
            assert_eq!(*status, 200, "{turn}");
            turn["conversation_id"].as_str().unwrap().to_string()
        })
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 1, "one conversation: {ids:?}");
    let ana = a.login(ANA).await;
    let (_, c) = ana.get(&format!("/api/v1/conversations/{}", ids[0])).await;
    let mut from_customer: Vec<String> = c["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["from"]["role"] == "customer")
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    from_customer.sort();
    let mut want: Vec<String> = (0..16).map(|i| format!("delivery options {i}")).collect();
    want.sort();
    assert_eq!(from_customer, want, "every message stored once");
    a.shutdown().await;
    b.shutdown().await;
}

/// A node whose LISTEN connection drops may have missed the other nodes' events: once it
/// listens again, its widget sockets get the whole state again (a fresh `welcome`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_events_has_its_widgets_read_everything_again() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ca, cb) = two_nodes(da.path(), db.path());
    let url = ca.store.url.clone().unwrap();
    let a = serve_with(ca, KeywordNlu).await;
    let b = serve_with(cb, KeywordNlu).await;
    let mut widget = Widget::connect(&a, None, None).await;
    widget.send("where is my order?").await;
    widget.next_of("turn").await;
    // Every listening connection of the database is cut, as a network blip would.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let cut = client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%'",
            &[],
        )
        .await
        .unwrap();
    assert!(!cut.is_empty(), "the nodes were listening");
    driver.abort();
    let again = widget.next_of("welcome").await;
    let history = again["history"].as_array().unwrap();
    assert!(
        history.iter().any(|h| h["text"] == "where is my order?"),
        "the whole conversation again: {again}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_session_made_by_one_node_works_on_the_other() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut ca, mut cb) = two_nodes(da.path(), db.path());
    // No secret in the config: the nodes agree on one through the database.
    ca.server.secret = None;
    cb.server.secret = None;
    let a = serve_with(ca, KeywordNlu).await;
    let b = serve_with(cb, KeywordNlu).await;
    let ana = a.login(ANA).await;
    let on_b = crate::support::server::Agent {
        server: &b,
        token: ana.token.clone(),
        csrf: ana.csrf.clone(),
    };
    let (status, body) = on_b.get("/console/api/queues").await;
    assert_eq!(status, 200, "node B takes node A's session: {body}");
    // Its CSRF tag too: a logout through B ends the session on A as well.
    let (status, body) = on_b.post("/console/api/logout", None).await;
    assert!(
        status < 300,
        "node B takes node A's CSRF tag: {status} {body}"
    );
    let (status, _) = ana.get("/console/api/queues").await;
    assert_eq!(status, 401, "the session ended on every node");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_change_made_on_one_node_is_in_force_on_the_other() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut ca, mut cb) = two_nodes(da.path(), db.path());
    let shipped = std::fs::read_to_string(crate::support::repo("rules.toml")).unwrap();
    // Each node its own copy of the file, as two machines would have.
    let (ra, rb) = (da.path().join("rules.toml"), db.path().join("rules.toml"));
    std::fs::write(&ra, &shipped).unwrap();
    std::fs::write(&rb, &shipped).unwrap();
    ca.engine.rules = Some(ra.clone());
    cb.engine.rules = Some(rb.clone());
    cb.agents[0].role = "lead".into();
    let a = serve_with(ca, KeywordNlu).await;
    let b = serve_with(cb, KeywordNlu).await;
    let before = b.say("cancel-1", "cancel my order 12345").await;
    assert_eq!(before["status"], "bot", "{before}");

    std::fs::write(
        &ra,
        format!(
            "{shipped}\n[[rules]]\nname = \"cancellations to a person\"\nwhen = \"intent\"\n\
             intents = [\"cancel_order\"]\nqueue = \"general\"\npriority = 10\n"
        ),
    )
    .unwrap();
    let mut n = 0;
    eventually("node B to use the rule written on node A", || {
        n += 1;
        let b = &b;
        async move {
            let turn = b
                .say(&format!("cancel-b-{n}"), "cancel my order 12345")
                .await;
            (turn["status"] == "queued").then_some(())
        }
    })
    .await;
    let ana = b.login(ANA).await;
    let (_, rules) = ana.get("/console/api/rules").await;
    assert_eq!(rules["state"]["version"], 2, "{rules}");
    assert_eq!(
        std::fs::read_to_string(&rb).unwrap(),
        shipped,
        "node B's own file is left as it was"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intents_change_made_on_one_node_is_answered_on_the_other() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut ca, mut cb) = two_nodes(da.path(), db.path());
    // Each node its own copy of the intents folder, as two machines would have.
    let (ia, ib) = (da.path().join("intents"), db.path().join("intents"));
    for dir in [&ia, &ib] {
        std::fs::create_dir_all(dir).unwrap();
        for entry in std::fs::read_dir(crate::support::repo("intents")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
            }
        }
    }
    ca.engine.intents_dir = Some(ia.clone());
    cb.engine.intents_dir = Some(ib.clone());
    let a = serve_with(ca, KeywordNlu).await;
    let b = serve_with(cb, KeywordNlu).await;
    let shipped = std::fs::read_to_string(ia.join("greet.yaml")).unwrap();
    let old = b.say("hello-1", "hello").await["replies"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(
        ia.join("greet.yaml"),
        shipped.replace(&old, "Good to see you again! What can I do for you?"),
    )
    .unwrap();
    let mut n = 0;
    eventually("node B to give the greeting written on node A", || {
        n += 1;
        let b = &b;
        async move {
            let turn = b.say(&format!("hello-b-{n}"), "hello").await;
            turn["replies"][0]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("Good to see you again"))
                .then_some(())
        }
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(ib.join("greet.yaml")).unwrap(),
        shipped,
        "node B's own folder is left as it was"
    );
    a.shutdown().await;
    b.shutdown().await;
}
