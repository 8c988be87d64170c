//! The unanswered inbox: what customers asked that the bot could not answer comes to the
//! lead grouped by subject, largest first; the lead turns a group into an intent file in
//! the intents folder (never over one) or a help-centre article draft. Other agents may not.
//!
//! The help centre here embeds on hashed words (`support::kb`) and never answers on its
//! own, so every question outside the keyword NLU's intents stays unanswered.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::support::kb::demo_help_centre;
use crate::support::nlu::KeywordNlu;
use crate::support::repo;
use crate::support::server::{config, serve_with, serve_with_help, ANA, BEN};
use frontdesk::cockpit::unanswered::normalise;
use frontdesk::nlu::IntentSet;

/// Asked by one customer three times in a row: the third goes to a person ("bot could not
/// help", a repeated-failure rule).
const GIFTS_IN_A_ROW: [&str; 3] = [
    "do you sell gift cards",
    "do you sell gift cards online",
    "gift cards, do you sell them",
];
/// Asked by other customers, one each (the first the same as above but for case and spaces).
const GIFTS: [&str; 3] = [
    "Do you sell  GIFT cards",
    "you sell gift cards?",
    "do you sell gift cards in stores",
];
const HOURS: [&str; 3] = [
    "what are your opening hours",
    "what are your opening hours on sunday",
    "what are your opening hours today",
];
const POINTS: [&str; 2] = [
    "how many loyalty points do I have",
    "how many loyalty points have I got",
];

fn set(texts: &[&str]) -> BTreeSet<String> {
    texts.iter().map(|t| normalise(t)).collect()
}

fn examples(group: &Value) -> BTreeSet<String> {
    group["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| normalise(e.as_str().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_sees_unanswered_groups_largest_first_and_makes_one_an_intent() {
    let dir = tempfile::tempdir().unwrap();
    let intents = dir.path().join("intents");
    std::fs::create_dir(&intents).unwrap();
    for entry in std::fs::read_dir(repo("intents")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, intents.join(path.file_name().unwrap())).unwrap();
    }
    let kb = dir.path().join("kb");
    std::fs::create_dir(&kb).unwrap();
    let mut cfg = config(dir.path());
    cfg.engine.intents_dir = Some(intents.clone());
    cfg.kb.dir = Some(kb.clone());
    cfg.agents[0].role = "lead".into();
    let s = serve_with_help(cfg, demo_help_centre(2.0)).await;

    let mut fan = Value::Null;
    for text in GIFTS_IN_A_ROW {
        fan = s.say("gift-fan", text).await;
    }
    assert_eq!(fan["status"], "queued", "three failures in a row: {fan}");
    // Written while waiting: no part of the run that failed.
    s.say("gift-fan", "hello").await;
    for (i, text) in GIFTS.iter().enumerate() {
        s.say(&format!("gift-{i}"), text).await;
    }
    for (i, text) in HOURS.iter().enumerate() {
        s.say(&format!("hours-{i}"), text).await;
    }
    for (i, text) in POINTS.iter().enumerate() {
        s.say(&format!("points-{i}"), text).await;
    }
    // Answered: not in the inbox.
    s.say("tracker", "track my order 12345").await;

    let ana = s.login(ANA).await;
    let (status, inbox) = ana.get("/console/api/unanswered?since=1d").await;
    assert_eq!(status, 200, "{inbox}");
    let groups = inbox["groups"].as_array().unwrap();
    let counts: Vec<u64> = groups
        .iter()
        .map(|g| g["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [6, 3, 2], "{inbox:#}");
    assert_eq!(inbox["read"], 11, "{inbox:#}");
    let gifts = &groups[0];
    let all_gifts: Vec<&str> = GIFTS_IN_A_ROW.iter().chain(&GIFTS).copied().collect();
    assert_eq!(
        examples(gifts),
        set(&all_gifts),
        "the near-duplicate shows once"
    );
    assert_eq!(gifts["examples"].as_array().unwrap().len(), 5);
    let kinds: Vec<&str> = gifts["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["out_of_scope", "repeated_failure"], "{gifts}");
    assert!(gifts["last_seen"].is_string());
    assert_eq!(examples(&groups[1]), set(&HOURS));
    assert_eq!(examples(&groups[2]), set(&POINTS));
    let (_, again) = ana.get("/console/api/unanswered?since=1d").await;
    assert_eq!(
        again["groups"], inbox["groups"],
        "same data, same groups and ids"
    );
    let (status, _) = ana.get("/console/api/unanswered?since=forever").await;
    assert_eq!(status, 400);

    // Other agents may neither read nor act.
    let ben = s.login(BEN).await;
    let (status, _) = ben.get("/console/api/unanswered").await;
    assert_eq!(status, 403);
    let id = gifts["id"].as_str().unwrap();
    let intent_url = format!("/console/api/unanswered/{id}/intent");
    let (status, _) = ben
        .post(&intent_url, Some(json!({"name": "gift_cards"})))
        .await;
    assert_eq!(status, 403);
    assert!(!intents.join("gift_cards.yaml").exists());
    // An action needs the session's CSRF token.
    let res = s
        .http
        .post(s.at(&intent_url))
        .bearer_auth(&ana.token)
        .json(&json!({"name": "gift_cards"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);

    // The gift cards become an intent, its examples prefilled.
    let answer = "Gift cards from 10 to 500 EUR are on our Gift cards page.";
    let (status, made) = ana
        .post(
            &intent_url,
            Some(json!({"name": "gift_cards", "answer": answer})),
        )
        .await;
    assert_eq!(status, 200, "{made}");
    assert_eq!(made["examples"], 5, "{made}");
    let set_now = IntentSet::load_dir(&intents).expect("the folder still loads");
    let intent = set_now
        .get("gift_cards")
        .expect("the new intent is in the folder");
    let written: BTreeSet<String> = intent.examples.iter().map(|e| normalise(e)).collect();
    assert_eq!(written, set(&all_gifts));
    assert_eq!(intent.response.text, answer);

    // A name in use is refused and its file left as it was; so is a name the loader refuses.
    let greet = std::fs::read_to_string(intents.join("greet.yaml")).unwrap();
    let (status, body) = ana.post(&intent_url, Some(json!({"name": "greet"}))).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("greet.yaml"));
    assert_eq!(
        std::fs::read_to_string(intents.join("greet.yaml")).unwrap(),
        greet
    );
    let (status, _) = ana
        .post(&intent_url, Some(json!({"name": "Gift Cards"})))
        .await;
    assert_eq!(status, 400);
    let (status, _) = ana
        .post(
            "/console/api/unanswered/000000000000/intent",
            Some(json!({"name": "x_y"})),
        )
        .await;
    assert_eq!(status, 404);

    // The opening hours become an article draft, not served until it is moved up.
    let hours_id = groups[1]["id"].as_str().unwrap();
    let (status, draft) = ana
        .post(
            &format!("/console/api/unanswered/{hours_id}/article"),
            Some(json!({"title": "Opening hours"})),
        )
        .await;
    assert_eq!(status, 200, "{draft}");
    let text = std::fs::read_to_string(kb.join("drafts/opening-hours.md")).unwrap();
    assert!(text.starts_with("<!-- DRAFT"), "{text}");
    for q in HOURS {
        assert!(text.contains(q), "{q}: {text}");
    }

    let audit = s.server.store.audit_lines().await.unwrap();
    assert!(
        audit
            .iter()
            .any(|l| l.action.contains("made intent gift_cards") && l.actor == "agent:ana"),
        "{audit:?}"
    );
    assert!(audit.iter().any(|l| l.action.contains("article draft")));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_intents_and_help_centre_are_not_written_and_the_inbox_needs_the_encoder() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.agents[0].role = "lead".into();
    // The keyword NLU alone: no encoder for the help centre, nor for the inbox.
    let s = serve_with(cfg, KeywordNlu).await;
    let ana = s.login(ANA).await;
    let (status, body) = ana.get("/console/api/unanswered").await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("kb.enabled"));
    let (status, body) = ana
        .post(
            "/console/api/unanswered/abc/intent",
            Some(json!({"name": "gift_cards"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("engine.intents_dir"));
    let (status, body) = ana
        .post(
            "/console/api/unanswered/abc/article",
            Some(json!({"title": "Gift cards"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("kb.dir"));
    s.shutdown().await;
}
