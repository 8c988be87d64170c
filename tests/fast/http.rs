//! The HTTP surface without the model: a real server started with the keyword NLU, for
//! what does not depend on understanding — bad input answered with errors that say what
//! to fix, refused credentials and sessions, forged customer tokens, the pages and probes a
//! deployment relies on.

use crate::support::server::*;
use serde_json::json;

#[tokio::test]
async fn bad_inputs_get_errors_that_say_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let url = s.at("/api/v1/messages");
    let post_raw = |body: &'static str, content_type: &'static str| {
        let req = s
            .http
            .post(&url)
            .bearer_auth(&s.key)
            .header("content-type", content_type)
            .body(body);
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<serde_json::Value>().await.unwrap())
        }
    };
    let message =
        |body: &serde_json::Value| body["error"]["message"].as_str().unwrap_or("").to_string();

    let (status, body) = post_raw("{\"user_id\": \"x\", \"text\": ", "application/json").await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("not valid JSON"), "{body}");

    let (status, body) = post_raw("{\"user\": \"x\", \"text\": \"hi\"}", "application/json").await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("user_id"), "{body}");

    let (status, body) = post_raw("user_id=x&text=hi", "application/x-www-form-urlencoded").await;
    assert_eq!(status, 415, "{body}");
    assert!(message(&body).contains("application/json"), "{body}");

    let (status, body) = s.post_message(json!({"user_id": "x", "text": "   "})).await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("`text` is empty"), "{body}");

    let (status, body) = s
        .post_message(json!({"user_id": "", "text": "hello"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("user_id"), "{body}");

    let long = "a".repeat(2001);
    let (status, body) = s.post_message(json!({"user_id": "x", "text": long})).await;
    assert_eq!(status, 413, "{body}");
    assert!(message(&body).contains("limit is 2000"), "{body}");

    // A forged customer token is refused, not silently trusted or ignored.
    let (status, body) = s
        .post_message(json!({"user_id": "x", "text": "hi", "customer_token": "eyJjdXN0b21lcl9pZCI6IkMxIn0.AAAA"}))
        .await;
    assert_eq!(status, 401, "{body}");

    // Nothing of the refused input was stored as a conversation.
    let agent = s.login(ANA).await;
    let (status, _) = agent.get("/api/v1/conversations/does-not-exist").await;
    assert_eq!(status, 404);
    s.shutdown().await;
}

#[tokio::test]
async fn health_metrics_demo_page_and_widget_script_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let health = s.http.get(s.at("/health")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let health: serde_json::Value = health.json().await.unwrap();
    assert_eq!(health["status"], "ready", "{health}");
    assert_eq!(health["components"]["store"], "ok (sled)", "{health}");
    assert_eq!(health["node"], "local", "{health}");
    let leases: Vec<&str> = health["leases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert!(leases.is_empty() || leases == ["timers"], "{health}");

    s.say("metrics-1", "where is my order 10001").await;
    let metrics = s.metrics_text().await;
    assert!(
        metrics.contains("frontdesk_messages_received_total{channel=\"rest\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("frontdesk_reply_latency_seconds_bucket"),
        "{metrics}"
    );
    assert!(metrics.contains("frontdesk_queue_depth"), "{metrics}");

    let page = s
        .http
        .get(s.at("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("<script src=\"//{}/widget.js\"", s.server.addr)),
        "{page}"
    );
    let script = s.http.get(s.at("/widget.js")).send().await.unwrap();
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    assert!(script.text().await.unwrap().contains("new WebSocket"));
    s.shutdown().await;
}

#[tokio::test]
async fn unauthenticated_console_and_api_access_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let id = s.say("u-auth", "I want to talk to a human agent").await["conversation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    for path in [
        "/api/v1/queues".to_string(),
        format!("/api/v1/conversations/{id}"),
        "/console/api/queues".into(),
        "/console/api/me".into(),
        format!("/console/api/conversations/{id}"),
        "/console/assets/console.js".into(),
        "/console/ws".into(),
    ] {
        let res = plain.get(s.at(&path)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 401, "GET {path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("log in"),
            "{body}"
        );
    }
    for action in ["claim", "hand_back", "close"] {
        let res = plain
            .post(s.at(&format!("/console/api/conversations/{id}/{action}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401, "{action}");
    }
    // The page itself sends the visitor to the login form.
    let page = plain.get(s.at("/console")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 303);
    assert_eq!(page.headers()["location"], "/console/login");

    // Wrong password, unknown agent, a forged cookie and a token of another server.
    for (name, password) in [("ana", "wrong"), ("mallory", "ana-demo-password")] {
        let res = plain
            .post(s.at("/console/api/login"))
            .json(&json!({"name": name, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401, "{name}");
    }
    let foreign = frontdesk::server::auth::Signer::new("another-secret").sign(
        &frontdesk::server::auth::SessionClaims {
            kind: "agent_session".into(),
            sid: "s".into(),
            agent: "ana".into(),
            exp: chrono::Utc::now().timestamp() + 3600,
        },
    );
    for cookie in [
        "frontdesk_session=garbage".to_string(),
        format!("frontdesk_session={foreign}"),
    ] {
        let res = plain
            .get(s.at("/api/v1/queues"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401);
    }
    // The queue is untouched by all this.
    let agent = s.login(ANA).await;
    assert_eq!(
        agent.queue("general").await["entries"][0]["conversation_id"],
        id.as_str()
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_tier_typed_by_the_visitor_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    // A token the visitor signed with a guessed secret: refused outright.
    let forged = frontdesk::server::auth::Signer::new("guess").sign(&customer(
        "C1005",
        Some("vip"),
        Some(1e6),
    ));
    let (status, body) = s
        .post_message(serde_json::json!({"user_id": "sneaky", "text": "agent please", "customer_token": forged}))
        .await;
    assert_eq!(status, 401, "{body}");
    s.shutdown().await;
}

/// `/health` names the node and the leases' holders (host names) to the operator's
/// monitoring only: from an address outside `server.metrics_from`, without a metrics key,
/// the status comes without them.
#[tokio::test]
async fn health_keeps_node_names_for_the_monitoring() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::support::server::config(dir.path());
    config.server.metrics_from = vec!["10.9.9.0/24".into()];
    let s = crate::support::server::serve_with(config, crate::support::nlu::KeywordNlu).await;
    let health = s.health().await;
    assert_eq!(health["status"], "ready", "{health}");
    assert!(health.get("node").is_none(), "{health}");
    assert!(health.get("leases").is_none(), "{health}");
    s.shutdown().await;
}
