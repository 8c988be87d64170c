//! A customer on the REST channel against a real server with the real NLU: routine
//! answers and slot filling. (Errors for bad input, and the pages and probes, need no
//! model: tests/fast/http.rs.)

use crate::support::server::*;

#[tokio::test]
async fn routine_question_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path()).await;
    // 10001 is C1001's, signed in with a shop token (orders are private: ownership.rs).
    let me = customer("C1001", None, None);
    let turn = s.say_as("rest-1", &me, "where is my order 10001").await;
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
    // 10007 is C1039's.
    let me = customer("C1039", None, None);
    let ask = s.say_as("rest-2", &me, "where is my package").await;
    assert!(replies(&ask).contains("order number"), "{ask}");
    let answer = s.say_as("rest-2", &me, "10007").await;
    assert_eq!(answer["conversation_id"], ask["conversation_id"]);
    assert!(
        replies(&answer).contains("Order 10007 is delayed"),
        "{answer}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn an_anonymous_customer_shows_the_order_is_theirs_first() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path()).await;
    let ask = s.say("rest-3", "where is my order 10001?").await;
    let text = replies(&ask);
    assert!(text.contains("email address or the postcode"), "{text}");
    assert!(
        !text.contains("DHL") && !text.contains("on its way"),
        "{text}"
    );
    let answer = s.say("rest-3", "emma.becker@example.com").await;
    assert!(
        replies(&answer).contains("Order 10001 is on its way"),
        "{answer}"
    );
    s.shutdown().await;
}
