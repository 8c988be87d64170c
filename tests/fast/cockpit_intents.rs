//! The lead's cockpit: the intents folder reloads while customers write (a changed answer
//! is given within seconds), an invalid change is refused with its file and line while the
//! intents in force stay, the console checks and applies an edit with the same checks and
//! rolls a version back, and the binary's built-in intents are not written over. (The
//! real NLU's retraining of the intent head is checked in the model tier.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::nlu::KeywordNlu;
use crate::support::server::{config, serve_with, ANA, BEN};
use crate::support::traffic::Steady;
use crate::support::{eventually, repo};

fn copy_intents(to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(repo("intents")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

fn first_reply(turn: &Value) -> String {
    turn["replies"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intents_reload_under_traffic_refuse_an_invalid_change_and_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let intents = dir.path().join("intents");
    copy_intents(&intents);
    let greet = intents.join("greet.yaml");
    let shipped = std::fs::read_to_string(&greet).unwrap();
    let mut cfg = config(dir.path());
    cfg.engine.intents_dir = Some(intents.clone());
    cfg.agents[0].role = "lead".into();
    let s = Arc::new(serve_with(cfg, KeywordNlu).await);
    let ana = s.login(ANA).await;
    let (status, first) = ana.get("/console/api/config/intents").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["state"]["version"], 1, "{first}");
    assert!(first["text"]
        .as_str()
        .unwrap()
        .contains("==> greet.yaml <=="));
    let (status, _) = s.login(BEN).await.get("/console/api/config/intents").await;
    assert_eq!(
        status, 403,
        "an agent who is not a lead may not see the intents"
    );

    let traffic = Steady::start(s.clone(), "hello", Duration::from_millis(20));

    // A changed answer in the file: given within seconds, kept as version 2.
    let old_answer = first_reply(&s.say("i-before", "hello").await);
    let changed = shipped.replace(&old_answer, "Welcome back to the shop! How can I help?");
    assert_ne!(changed, shipped, "the greeting's answer is in greet.yaml");
    std::fs::write(&greet, &changed).unwrap();
    let written = Instant::now();
    let mut n = 0;
    eventually("the new greeting to be given", || {
        n += 1;
        let s = s.clone();
        async move {
            let turn = s.say(&format!("i-after-{n}"), "hello").await;
            first_reply(&turn).starts_with("Welcome back").then_some(())
        }
    })
    .await;
    println!(
        "changed intent answered {:.1} s after the file was written",
        written.elapsed().as_secs_f64()
    );
    // The version is kept right after it is put in force.
    let now: Value = eventually("version 2 to be kept", || {
        let ana = &ana;
        async move {
            let (_, body) = ana.get("/console/api/config/intents").await;
            (body["state"]["version"] == 2).then_some(body)
        }
    })
    .await;
    assert_eq!(now["versions"][0]["summary"], "+1 -1", "{now}");

    // An invalid change (an intent with no examples): refused with its file and line.
    std::fs::write(
        intents.join("gift_cards.yaml"),
        "name: gift_cards\nexamples: []\nresponse:\n  text: We sell gift cards.\n",
    )
    .unwrap();
    let refused: Value = eventually("the invalid change to be refused", || {
        let ana = &ana;
        async move {
            let (_, body) = ana.get("/console/api/config/intents").await;
            (!body["state"]["refused"].is_null()).then_some(body)
        }
    })
    .await;
    let why = &refused["state"]["refused"];
    assert!(
        why["file"].as_str().unwrap().ends_with("gift_cards.yaml"),
        "{why}"
    );
    assert!(why["line"].as_u64().is_some(), "the line is named: {why}");
    assert_eq!(refused["state"]["version"], 2);
    let health = s.health().await;
    assert_eq!(
        health["components"]["config"]["intents"]["version"], 2,
        "{health}"
    );
    assert!(!health["components"]["config"]["intents"]["refused"].is_null());
    assert!(first_reply(&s.say("i-during", "hello").await).starts_with("Welcome back"));
    std::fs::remove_file(intents.join("gift_cards.yaml")).unwrap();

    // The console: a check without applying, a refused edit that changes nothing, an edit.
    let text_now = now["text"].as_str().unwrap().to_string();
    let bad = text_now.replace("name: greet\n", "name: Greet Me\n");
    let (status, checked) = ana
        .post(
            "/console/api/config/intents/check",
            Some(json!({"text": bad})),
        )
        .await;
    assert_eq!(status, 200, "{checked}");
    assert_eq!(checked["ok"], false, "{checked}");
    assert!(checked["problem"]["file"]
        .as_str()
        .unwrap()
        .ends_with("greet.yaml"));
    let (status, body) = ana
        .put("/console/api/config/intents", json!({"text": bad}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        std::fs::read_to_string(&greet).unwrap(),
        changed,
        "nothing written"
    );
    let edited = text_now.replace("Welcome back to the shop!", "Hello from the console!");
    let (status, body) = ana
        .put("/console/api/config/intents", json!({"text": edited}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(first_reply(&s.say("i-edited", "hello").await).starts_with("Hello from the console"));
    assert!(std::fs::read_to_string(&greet)
        .unwrap()
        .contains("Hello from the console!"));

    // Roll back to what shipped: the file and the answer are the old ones again.
    let (_, listed) = ana.get("/console/api/config/intents").await;
    let newest = listed["state"]["version"].as_u64().unwrap();
    let (status, back) = ana
        .post("/console/api/config/intents/versions/1/rollback", None)
        .await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(back["version"], newest + 1);
    assert_eq!(std::fs::read_to_string(&greet).unwrap(), shipped);
    assert_eq!(
        first_reply(&s.say("i-rolled-back", "hello").await),
        old_answer
    );

    assert!(traffic.stop().await > 0);
}

#[tokio::test]
async fn the_built_in_intents_are_shown_but_not_written_over() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.engine.intents_dir = None;
    cfg.agents[0].role = "lead".into();
    let s = serve_with(cfg, KeywordNlu).await;
    let ana = s.login(ANA).await;
    let (status, body) = ana.get("/console/api/config/intents").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["built_in"], true);
    let text = body["text"].as_str().unwrap().to_string();
    let (status, body) = ana
        .put("/console/api/config/intents", json!({"text": text}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("frontdesk init"), "{body}");
    let (status, _) = ana.get("/console/api/config/nothing").await;
    assert_eq!(status, 404);
}
