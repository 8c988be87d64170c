//! The desk with the real NLU (encoder and trained heads from models/): the stories of
//! fast/conversation_desk.rs, this time with what the model actually understands.

use crate::support::desk::*;
use crate::support::server::real_nlu;
use frontdesk::message::Status;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_are_understood_answered_and_escalated() {
    let dir = tempfile::tempdir().unwrap();
    // The binary's one NLU, loaded off the runtime's threads (the model in the cache, the
    // heads in models/).
    let nlu = tokio::task::spawn_blocking(real_nlu).await.unwrap();
    let desk = TestDesk::new().nlu(nlu).open(dir.path());

    // A routine question is answered with the order's real state (to its owner: 10001 is
    // C1001's, signed in with a shop token).
    let turn = say_verified(&desk, "anna", "hi, where is my order 10001?", "C1001").await;
    assert_eq!(turn.status, Status::Bot, "{}", reply(&turn));
    assert!(reply(&turn).contains("on its way"), "{}", reply(&turn));

    // Slot filling: the bot asks for the number, then answers.
    let ask = say_verified(&desk, "marc", "I want to track my package", "C1039").await;
    assert!(reply(&ask).contains("order number"), "{}", reply(&ask));
    let answer = say_verified(&desk, "marc", "it's 10007", "C1039").await;
    assert!(
        reply(&answer).contains("Order 10007 is delayed"),
        "{}",
        reply(&answer)
    );

    // An angry customer goes to the angry queue, with the rule and value recorded.
    let angry = say(
        &desk,
        "jo",
        "This is absolutely ridiculous, I am furious! Worst service ever, nobody answers me!!!",
    )
    .await;
    assert_eq!(angry.status, Status::Queued, "{}", reply(&angry));
    assert_eq!(angry.queue.as_ref().unwrap().name, "angry");
    let c = desk
        .conversation(&angry.conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        c.escalation
            .iter()
            .any(|r| r.when == "anger" || r.when == "negative_message"),
        "{:?}",
        c.escalation
    );
    let analysis = c.messages[0]
        .analysis
        .as_ref()
        .expect("customer messages keep their analysis");
    assert!(analysis.sentiment_scores.negative > 0.5, "{analysis:?}");

    // Asking for a person works without any anger.
    let human = say(&desk, "lee", "can I talk to a human agent please").await;
    assert_eq!(human.status, Status::Queued, "{}", reply(&human));
    assert_eq!(human.queue.as_ref().unwrap().name, "general");
}
