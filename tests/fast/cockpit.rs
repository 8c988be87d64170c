//! The lead's cockpit, first part: the rules file reloads while the server answers
//! customers; an invalid change is refused with its line and the version in force stays;
//! every applied version is kept and can be put back from the console.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::nlu::KeywordNlu;
use crate::support::server::{config, serve_with, ANA, BEN};
use crate::support::traffic::Steady;
use crate::support::{eventually, repo};

const CANCELLATIONS_TO_A_PERSON: &str = "
[[rules]]
name = \"cancellations to a person\"
when = \"intent\"
intents = [\"cancel_order\"]
queue = \"general\"
priority = 10
";

/// The same rule without its queue: refused.
const BROKEN: &str = "
[[rules]]
name = \"broken\"
when = \"intent\"
intents = [\"cancel_order\"]
priority = 10
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_reload_under_traffic_refuse_an_invalid_change_and_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    let shipped = std::fs::read_to_string(repo("rules.toml")).unwrap();
    std::fs::write(&rules, &shipped).unwrap();
    let mut cfg = config(dir.path());
    cfg.engine.rules = Some(rules.clone());
    cfg.agents[0].role = "lead".into();
    let s = Arc::new(serve_with(cfg, KeywordNlu).await);

    let ana = s.login(ANA).await;
    let (status, first) = ana.get("/console/api/rules").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["state"]["version"], 1, "{first}");
    assert_eq!(first["text"], shipped.as_str());
    let ben = s.login(BEN).await;
    let (status, _) = ben.get("/console/api/rules").await;
    assert_eq!(
        status, 403,
        "an agent who is not a lead may not see the rules"
    );

    // Customers write all along; none of their messages may fail.
    let traffic = Steady::start(
        s.clone(),
        "where is my order 12345",
        Duration::from_millis(20),
    );

    // Before: a cancellation is the bot's.
    let before = s.say("c-before", "cancel my order 12345").await;
    assert_eq!(before["status"], "bot", "{before}");

    // A valid change: in force within seconds, a version with its author and diff.
    std::fs::write(&rules, format!("{shipped}{CANCELLATIONS_TO_A_PERSON}")).unwrap();
    let written = Instant::now();
    let mut n = 0;
    eventually("the new rule to be in force", || {
        n += 1;
        let s = s.clone();
        async move {
            let turn = s
                .say(&format!("c-after-{n}"), "cancel my order 12345")
                .await;
            (turn["status"] == "queued").then_some(())
        }
    })
    .await;
    println!(
        "new rule in force {:.1} s after the file was written",
        written.elapsed().as_secs_f64()
    );
    let (_, now) = ana.get("/console/api/rules").await;
    assert_eq!(now["state"]["version"], 2, "{now}");
    assert_eq!(now["versions"][0]["summary"], "+7 -0", "{now}");
    assert!(now["versions"][0]["author"]
        .as_str()
        .unwrap()
        .starts_with("file on "));
    let (_, v2) = ana.get("/console/api/rules/versions/2").await;
    assert!(
        v2["diff"]
            .as_str()
            .unwrap()
            .contains("+name = \"cancellations to a person\""),
        "{v2}"
    );

    // An invalid change: refused with its line and reason, version 2 stays in force.
    let broken = format!("{shipped}{CANCELLATIONS_TO_A_PERSON}{BROKEN}");
    // Its `[[rules]]` header (the table that lacks the key): the last line but four.
    let header = broken.lines().count() - 4;
    std::fs::write(&rules, &broken).unwrap();
    let refused: Value = eventually("the invalid change to be refused", || {
        let ana = &ana;
        async move {
            let (_, body) = ana.get("/console/api/rules").await;
            (!body["state"]["refused"].is_null()).then_some(body)
        }
    })
    .await;
    let why = &refused["state"]["refused"];
    assert_eq!(why["line"], header, "{why}");
    assert!(why["reason"].as_str().unwrap().contains("queue"), "{why}");
    assert_eq!(refused["state"]["version"], 2);
    // (The test asks from the monitoring's own address: the refusal in full.)
    let health = s.health().await;
    assert_eq!(
        health["components"]["rules"]["refused"]["line"], header,
        "{health}"
    );
    assert_eq!(health["components"]["rules"]["version"], 2);
    let still = s.say("c-during", "cancel my order 12345").await;
    assert_eq!(
        still["status"], "queued",
        "the version in force stays: {still}"
    );

    // The lead puts the file back as it was: nothing is refused any more.
    std::fs::write(&rules, format!("{shipped}{CANCELLATIONS_TO_A_PERSON}")).unwrap();
    eventually("the refusal to clear", || {
        let ana = &ana;
        async move {
            let (_, body) = ana.get("/console/api/rules").await;
            body["state"]["refused"].is_null().then_some(())
        }
    })
    .await;
    let (_, now) = ana.get("/console/api/rules").await;
    assert_eq!(
        now["state"]["version"], 2,
        "the same text is the same version: {now}"
    );

    // Roll back to the shipped rules from the console: in force at once, written to the file.
    let back = ana
        .post("/console/api/rules/versions/1/rollback", None)
        .await;
    assert_eq!(back.0, 200, "{:?}", back.1);
    assert_eq!(back.1["version"], 3);
    assert_eq!(std::fs::read_to_string(&rules).unwrap(), shipped);
    let after = s.say("c-rolled-back", "cancel my order 12345").await;
    assert_eq!(after["status"], "bot", "{after}");
    let (_, last) = ana.get("/console/api/rules").await;
    assert_eq!(last["state"]["version"], 3);
    assert!(last["state"]["refused"].is_null(), "{last}");
    let ben_rollback = ben
        .post("/console/api/rules/versions/2/rollback", None)
        .await;
    assert_eq!(ben_rollback.0, 403, "an agent may not roll back");

    assert!(traffic.stop().await > 0);
}

/// The what-if before "apply": the proposed rules against those in force on the store's own
/// conversations; nothing is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_sees_what_a_rules_change_would_do_on_real_history_before_applying_it() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    let shipped = std::fs::read_to_string(repo("rules.toml")).unwrap();
    std::fs::write(&rules, &shipped).unwrap();
    let mut cfg = config(dir.path());
    cfg.engine.rules = Some(rules.clone());
    cfg.agents[0].role = "lead".into();
    let s = serve_with(cfg, KeywordNlu).await;
    for (user, text) in [
        ("h-1", "cancel my order 12345"),
        ("h-2", "please cancel order 12346"),
        ("h-3", "where is my order 12347"),
        ("h-4", "hello"),
    ] {
        assert_eq!(s.say(user, text).await["status"], "bot");
    }
    let ana = s.login(ANA).await;
    let proposed = format!("{shipped}{CANCELLATIONS_TO_A_PERSON}");
    let (status, w) = ana
        .post(
            "/console/api/config/rules/whatif",
            Some(json!({"text": proposed, "since": "1d"})),
        )
        .await;
    assert_eq!(status, 200, "{w}");
    assert_eq!(w["conversations"], 4, "{w}");
    let mut moved: Vec<&str> = w["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["change"], "newly_escalated");
            assert_eq!(c["after_queue"], "general");
            c["first_message"].as_str().unwrap()
        })
        .collect();
    moved.sort();
    assert_eq!(
        moved,
        ["cancel my order 12345", "please cancel order 12346"]
    );
    assert_eq!(w["escalated_after"], 2);
    assert_eq!(w["queues"][0]["queue"], "general");
    assert_eq!(w["queues"][0]["after"], 2);
    assert!(w["html"]
        .as_str()
        .unwrap()
        .contains("please cancel order 12346"));
    // Nothing was applied: the rules in force and the file are as they were.
    assert_eq!(std::fs::read_to_string(&rules).unwrap(), shipped);
    assert_eq!(s.say("h-5", "cancel my order 12348").await["status"], "bot");

    let broken = format!("{shipped}{BROKEN}");
    let (status, body) = ana
        .post(
            "/console/api/config/rules/whatif",
            Some(json!({"text": broken})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("queue"), "{body}");
    let (status, _) = s
        .login(BEN)
        .await
        .post(
            "/console/api/config/rules/whatif",
            Some(json!({"text": proposed})),
        )
        .await;
    assert_eq!(
        status, 403,
        "an agent who is not a lead may not run a what-if"
    );
}
