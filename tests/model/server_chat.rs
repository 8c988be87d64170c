//! A customer on the REST channel against a real server with the real NLU: routine
//! answers and slot filling. (Errors for bad input, and the pages and probes, need no
//! model: tests/fast/http.rs.)

use crate::support::server::*;

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
