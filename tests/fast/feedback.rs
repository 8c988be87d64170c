//! Learning from escalations: agents mark escalations needed or not and bot answers wrong,
//! and the lead's figures follow their marks; an agent cannot mark a conversation they did
//! not handle, a non-lead cannot read the figures, a hostile reason is refused.

use serde_json::{json, Value};

use crate::support::nlu::KeywordNlu;
use crate::support::server::{config, dump, serve_with, Agent, ANA, BEN};

const ANGRY_RULE: &str = "angry message (frustration head)";
const PERSON_RULE: &str = "asked for a person";

/// The lead's figures for `rule`: (needed, not needed, precision).
async fn rule_figures(lead: &Agent<'_>, rule: &str) -> Option<(u64, u64, Option<f64>)> {
    let (status, figures) = lead.get("/console/api/feedback?since=30d").await;
    assert_eq!(status, 200, "{figures}");
    let r = figures["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == rule)?
        .clone();
    Some((
        r["needed"].as_u64().unwrap(),
        r["not_needed"].as_u64().unwrap(),
        r["precision"].as_f64(),
    ))
}

async fn mark(agent: &Agent<'_>, id: &str, body: Value) -> (u16, Value) {
    agent
        .post(
            &format!("/console/api/conversations/{id}/feedback"),
            Some(body),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_marks_move_the_leads_precision_per_rule() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    // lee: a lead (ana's password, her own name)
    let mut lee = cfg.agents[0].clone();
    lee.name = "lee".into();
    lee.display_name = Some("Lee".into());
    lee.role = "lead".into();
    cfg.agents.push(lee);
    let s = serve_with(cfg, KeywordNlu).await;
    let (ana, ben, lead) = (
        s.login(ANA).await,
        s.login(BEN).await,
        s.login(("lee", ANA.1)).await,
    );

    // An answered question, then an angry message: to a person.
    let first = s.say("c-angry", "where is my order 12345").await;
    assert_eq!(first["status"], "bot", "{first}");
    let angry = s.say("c-angry", "this is ridiculous!!!").await;
    assert_eq!(angry["status"], "queued", "{angry}");
    let angry_id = angry["conversation_id"].as_str().unwrap().to_string();
    let person = s.say("c-person", "I want to talk to a human agent").await;
    assert_eq!(person["status"], "queued", "{person}");
    let person_id = person["conversation_id"].as_str().unwrap().to_string();
    let routine = s.say("c-routine", "where is my order 12345").await;
    let routine_id = routine["conversation_id"].as_str().unwrap().to_string();

    // Only leads read the figures; nothing is marked yet.
    let (status, body) = ben.get("/console/api/feedback").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(rule_figures(&lead, ANGRY_RULE).await, None);

    // ana takes the angry customer and says no person was needed...
    ana.act(&angry_id, "claim", None).await;
    let (status, body) = mark(
        &ana,
        &angry_id,
        json!({"mark": "not_needed", "reason": "just venting"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verdict"], "not_needed", "{body}");
    assert_eq!(body["marks"][0]["reason"], "just venting");
    assert!(
        body["marks"][0]["escalation"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rule"] == ANGRY_RULE),
        "the mark keeps the rules that fired: {body}"
    );
    assert_eq!(
        rule_figures(&lead, ANGRY_RULE).await,
        Some((0, 1, Some(0.0)))
    );

    // ...then changes her mind: her mark is replaced, the precision follows.
    let (status, body) = mark(&ana, &angry_id, json!({"mark": "needed"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["marks"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(
        rule_figures(&lead, ANGRY_RULE).await,
        Some((1, 0, Some(1.0)))
    );
    let (_, figures) = lead.get("/console/api/feedback?since=7d").await;
    let rule = figures["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == ANGRY_RULE)
        .unwrap()
        .clone();
    // the angry reading (0.95) is bucketed, with the week it happened in
    assert_eq!(rule["buckets"][0]["from"], 0.9, "{rule}");
    assert_eq!(rule["buckets"][0]["needed"], 1, "{rule}");
    assert_eq!(rule["weeks"][0]["needed"], 1, "{rule}");

    // A waiting conversation: any agent may judge it.
    let (status, body) = mark(&ben, &person_id, json!({"mark": "not_needed"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        rule_figures(&lead, PERSON_RULE).await,
        Some((0, 1, Some(0.0)))
    );
    // The lead agrees with nobody: the person rule's precision is now 1 of 2.
    let (status, body) = mark(&lead, &person_id, json!({"mark": "needed"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verdict"], "disputed", "{body}");
    assert_eq!(
        rule_figures(&lead, PERSON_RULE).await,
        Some((1, 1, Some(0.5)))
    );

    // ana took over from a wrong answer: the bot's latest answer before the queue.
    let (status, body) = mark(&ana, &angry_id, json!({"mark": "wrong_answer"})).await;
    assert_eq!(status, 200, "{body}");
    let wrong = body["marks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mark"] == "wrong_answer")
        .unwrap()
        .clone();
    assert_eq!(wrong["message"], 1, "{body}");
    assert_eq!(wrong["intent"], "track_order", "{body}");
    let (_, figures) = lead.get("/console/api/feedback").await;
    assert_eq!(figures["wrong_answers"], 1, "{figures}");
    assert_eq!(
        figures["wrong_answers_per_intent"][0]["intent"],
        "track_order"
    );
    // a customer message is no bot answer
    let (status, body) = mark(
        &ana,
        &angry_id,
        json!({"mark": "wrong_answer", "message": 0}),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // Who may not mark: ben never handled ana's conversation; nobody marks what is not there.
    let (status, body) = mark(&ben, &angry_id, json!({"mark": "not_needed"})).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("ana"),
        "{body}"
    );
    let (status, _) = mark(&ben, "no-such-conversation", json!({"mark": "needed"})).await;
    assert_eq!(status, 404);
    // A conversation that never escalated is not marked needed or not, even by a lead.
    let (status, body) = mark(&lead, &routine_id, json!({"mark": "needed"})).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("never went to a person"));
    // Every console action needs the session's CSRF token.
    let res = s
        .http
        .post(s.at(&format!("/console/api/conversations/{angry_id}/feedback")))
        .bearer_auth(&ana.token)
        .json(&json!({"mark": "not_needed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);

    // Hostile reasons are refused and change nothing.
    let huge = "x".repeat(10 * 1024);
    for reason in [huge.as_str(), "line\u{0}break\u{1b}[31m", "two\nlines"] {
        let (status, body) = mark(
            &ana,
            &angry_id,
            json!({"mark": "not_needed", "reason": reason}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
    }
    let (status, body) = mark(&ana, &angry_id, json!({"mark": "maybe"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        rule_figures(&lead, ANGRY_RULE).await,
        Some((1, 0, Some(1.0)))
    );
    let (status, marks) = ben
        .get(&format!("/console/api/conversations/{angry_id}/feedback"))
        .await;
    assert_eq!(status, 200, "{marks}");
    assert_eq!(marks["verdict"], "needed", "{marks}");

    // The marks live on the stored conversation, each with an audit line (no reason in it).
    let stored = s
        .server
        .store
        .conversation(&frontdesk::message::ConversationId(angry_id.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.feedback.len(), 2);
    let audit: Vec<String> = dump(s.server.store.as_ref())
        .await
        .into_iter()
        .filter(|(table, _, _)| table == "audit")
        .map(|(_, _, v)| v)
        .collect();
    assert!(
        audit
            .iter()
            .any(|l| l.contains("feedback: needed") && l.contains("agent:ana")),
        "{audit:?}"
    );
    assert!(!audit.iter().any(|l| l.contains("just venting")));
    s.shutdown().await;
}
