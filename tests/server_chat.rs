//! A customer on the REST channel against a real server: routine answers, slot filling,
//! and clear errors for bad input. Plus the pages and probes a deployment relies on.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn routine_question_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path()).await;
    let turn = s.say("rest-1", "where is my order 10001").await;
    assert_eq!(turn["status"], "bot", "{turn}");
    assert!(turn["queue"].is_null(), "{turn}");
    assert!(turn["conversation_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    let text = replies(&turn);
    assert!(
        text.contains("10001") && text.contains("on its way"),
        "{text}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn track_order_asks_for_the_number_then_answers() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path()).await;
    let ask = s.say("rest-2", "where is my package").await;
    assert!(replies(&ask).contains("order number"), "{ask}");
    let answer = s.say("rest-2", "10007").await;
    assert_eq!(answer["conversation_id"], ask["conversation_id"]);
    assert!(
        replies(&answer).contains("Order 10007 is delayed"),
        "{answer}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn bad_inputs_get_errors_that_say_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path()).await;
    let url = s.at("/api/v1/messages");
    let post_raw = |body: &'static str, content_type: &'static str| {
        let req = s
            .http
            .post(&url)
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
    let s = serve(dir.path()).await;
    let health = s.http.get(s.at("/health")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let health: serde_json::Value = health.json().await.unwrap();
    assert_eq!(health["status"], "ready", "{health}");
    assert_eq!(health["components"]["store"], "ok", "{health}");

    s.say("metrics-1", "where is my order 10001").await;
    let metrics = s
        .http
        .get(s.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
        page.contains(&format!(
            "<script src=\"http://{}/widget.js\"",
            s.server.addr
        )),
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
