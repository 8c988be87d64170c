//! Conversation search in the console: agents and leads find conversations by customer
//! (id, name, email, channel user), order number, text and date window; strangers and
//! API keys cannot; a query it cannot run is refused with what to change.

use crate::support::nlu::KeywordNlu;
use crate::support::server::{config, customer, serve_with, Agent, ANA, BEN};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// The ids of the conversations a search finds (which must answer 200).
async fn found(agent: &Agent<'_>, query: &str) -> Vec<String> {
    let (code, body) = agent.get(&format!("/console/api/search?{query}")).await;
    assert_eq!(code, 200, "{query}: {body}");
    assert_eq!(body["complete"], true, "{body}");
    ids(&body)
}

fn ids(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

#[tokio::test]
async fn agents_and_leads_find_conversations_by_customer_order_text_and_date() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.agents[1].role = "lead".into();
    let s = serve_with(cfg, KeywordNlu).await;
    let mut zoe = customer("shop-zoe", None, None);
    zoe.name = Some("Zoe Quinn".into());
    zoe.email = Some("zoe@example.org".into());
    let z = s.say_as("zoe-web", &zoe, "where is my order 10001").await;
    let zoe_id = z["conversation_id"].as_str().unwrap().to_string();
    let m = s
        .say("max-rest", "I need a refund, the blender arrived broken")
        .await;
    let max_id = m["conversation_id"].as_str().unwrap().to_string();
    let ana = s.login(ANA).await;
    let lead = s.login(BEN).await;

    // By customer: name, email (any case), shop id, channel user.
    for q in [
        "customer=zoe%20quinn",
        "customer=ZOE@EXAMPLE",
        "customer=zoe-web",
    ] {
        assert_eq!(found(&ana, q).await, [zoe_id.clone()], "{q}");
    }
    assert_eq!(found(&lead, "customer=max-rest").await, [max_id.clone()]);
    // By order number, as a whole number only.
    assert_eq!(found(&ana, "order=10001").await, [zoe_id.clone()]);
    assert!(found(&ana, "order=1000").await.is_empty());
    // By text, with the message around the match.
    let (code, body) = lead.get("/console/api/search?text=BLENDER").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(ids(&body), [max_id.clone()]);
    let hit = &body["results"][0];
    assert!(
        hit["snippet"].as_str().unwrap().contains("blender arrived"),
        "{hit}"
    );
    assert!(hit["customer"].as_str().is_some(), "{hit}");
    assert_eq!(hit["channel"], "rest");
    // By date window: the day they wrote finds both, newest first; the day before or
    // after finds neither. Fields combine.
    let created: DateTime<Utc> = serde_json::from_value(hit["created"].clone()).unwrap();
    let today = day(created);
    let yesterday = day(created - chrono::Duration::days(1));
    let tomorrow = day(created + chrono::Duration::days(1));
    assert_eq!(
        found(&ana, &format!("from={today}&to={today}")).await,
        [max_id.clone(), zoe_id.clone()]
    );
    assert!(found(&ana, &format!("to={yesterday}")).await.is_empty());
    assert!(found(&ana, &format!("from={tomorrow}")).await.is_empty());
    assert_eq!(
        found(&ana, &format!("from={today}&text=refund&limit=5")).await,
        [max_id.clone()]
    );
    assert_eq!(
        found(&ana, &format!("from={today}&limit=1")).await,
        [max_id.clone()]
    );
    assert!(found(&ana, "customer=zoe&text=blender").await.is_empty());

    // Strangers and API keys: 401.
    let res = s
        .http
        .get(s.at("/console/api/search?text=refund"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let (code, _) = s.get_with(&s.key, "/console/api/search?text=refund").await;
    assert_eq!(code, 401, "an API key is not a console session");

    // Queries it cannot run: 400 with what to change.
    let long = "x".repeat(201);
    for (q, says) in [
        (format!("text={long}"), "longer than 200"),
        (format!("customer={long}"), "longer than 200"),
        ("limit=101&text=refund".to_string(), "limit"),
        ("limit=many&text=refund".to_string(), "limit"),
        ("from=last%20tuesday".to_string(), "not a time"),
        ("order=10001%27%20OR%201%3D1".to_string(), "order number"),
        (String::new(), "say what to look for"),
        ("sort=newest&text=refund".to_string(), "use customer, order"),
    ] {
        let (code, body) = ana.get(&format!("/console/api/search?{q}")).await;
        assert_eq!(code, 400, "{q}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{q}: {message}");
    }
    s.shutdown().await;
}
