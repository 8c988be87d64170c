//! The LLM escalation judge in real conversations: a real server (keyword NLU) whose `[llm]`
//! points at the fake OpenAI-compatible endpoint. A message the local stakes reading is
//! unsure about ("not sure it matters": safety 0.4 in the keyword table) is put to the judge;
//! its verdict feeds the `llm_judge` rule; a late, failed or malformed verdict leaves the local
//! decision, and a message the local reading is sure about costs no call.

use frontdesk::config::Config;
use serde_json::Value;

use crate::support::fakes::llm::{Fake, Reply};
use crate::support::nlu::KeywordNlu;
use crate::support::server::{config_with_llm, serve_with, TestServer, ANA};

const UNSURE: &str =
    "where is my order 10001? the cable looked a bit melted, not sure it matters. emma@example.com";

async fn server(fake: &Fake, tweak: impl FnOnce(&mut Config)) -> (TestServer, tempfile::TempDir) {
    let url = fake.start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_with_llm(dir.path(), url);
    tweak(&mut config);
    (serve_with(config, KeywordNlu).await, dir)
}

/// The judge's requests among those the fake received.
fn judge_calls(fake: &Fake) -> Vec<Value> {
    fake.calls()
        .into_iter()
        .map(|(_, body)| body)
        .filter(|b| b["response_format"]["json_schema"]["name"] == "escalation_verdict")
        .collect()
}

fn verdict(person: bool, stakes: &[&str], reason: &str) -> Reply {
    Reply::Content(
        serde_json::json!({"person": person, "stakes": stakes, "reason": reason}).to_string(),
    )
}

#[tokio::test]
async fn the_judge_sends_an_unsure_message_to_a_person_with_its_reason() {
    let fake = Fake::default();
    fake.then(verdict(true, &["safety"], "a melted cable is a fire risk"));
    let (s, _dir) = server(&fake, |_| {}).await;
    let turn = s.say("emma", UNSURE).await;
    assert_eq!(turn["status"], "queued", "{turn}");
    assert_eq!(turn["queue"]["name"], "care", "{turn}");
    // one fixed, structured question, the customer's words as data, their email masked
    let calls = judge_calls(&fake);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["response_format"]["json_schema"]["strict"], true);
    let user = calls[0]["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("not sure it matters"), "{user}");
    assert!(!user.contains("emma@example.com"), "{user}");
    // the agent sees why
    let agent = s.login(ANA).await;
    let id = turn["conversation_id"].as_str().unwrap();
    let (status, c) = agent.get(&format!("/console/api/conversations/{id}")).await;
    assert_eq!(status, 200);
    let text = c.to_string();
    assert!(
        text.contains("llm_judge") && text.contains("a melted cable is a fire risk"),
        "{text}"
    );
}

#[tokio::test]
async fn a_verdict_for_the_bot_a_late_one_a_failed_one_and_a_malformed_one_leave_the_local_decision(
) {
    for (reply, what) in [
        (
            verdict(false, &[], "a routine order question"),
            "bot verdict",
        ),
        (Reply::Hang, "no answer within judge_ms"),
        (Reply::Status(500, None), "a server error"),
        (
            Reply::Content("Yes, a person should look at this.".into()),
            "prose",
        ),
        (
            verdict(true, &["urgent"], "made-up stake"),
            "an unknown stake",
        ),
    ] {
        let fake = Fake::default();
        fake.then(reply);
        let (s, _dir) = server(&fake, |c| c.llm.judge_ms = 400).await;
        let turn = s.say("emma", UNSURE).await;
        assert_eq!(turn["status"], "bot", "{what}: {turn}");
        assert!(
            !turn["replies"].as_array().unwrap().is_empty(),
            "{what}: the bot answered: {turn}"
        );
        assert_eq!(judge_calls(&fake).len(), 1, "{what}");
    }
}

#[tokio::test]
async fn a_message_the_local_reading_is_sure_about_costs_no_call() {
    let fake = Fake::default();
    let (s, _dir) = server(&fake, |_| {}).await;
    // nothing at stake
    let turn = s.say("emma", "where is my order 10001").await;
    assert_eq!(turn["status"], "bot", "{turn}");
    // a clear stake: the rules decide alone
    let turn = s.say("olli", "the heater sparked and smoke came out").await;
    assert_eq!(turn["status"], "queued", "{turn}");
    assert!(judge_calls(&fake).is_empty());
    // and with judge_ms = 0 there is no judge at all
    let fake = Fake::default();
    let (s, _dir) = server(&fake, |c| c.llm.judge_ms = 0).await;
    let turn = s.say("emma", UNSURE).await;
    assert_eq!(turn["status"], "bot", "{turn}");
    assert!(judge_calls(&fake).is_empty());
}
