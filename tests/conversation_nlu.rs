//! The desk with the real NLU (encoder and trained heads from models/): the stories of
//! conversation_desk.rs, this time with what the model actually understands.

mod conversation_setup;

use conversation_setup::*;
use frontdesk::message::Status;
use frontdesk::nlu::{NluService, ServiceOptions};
use frontdesk::nlu::{Nlu, NluOptions};
use std::sync::Arc;

async fn real_nlu() -> NluService {
    let opts = NluOptions {
        intents_dir: repo("intents"),
        models_dir: repo("models"),
        validation_dir: Some(repo("tests/data")),
        ..NluOptions::default()
    };
    let nlu = tokio::task::spawn_blocking(move || Nlu::load(&opts))
        .await
        .unwrap()
        .expect("the NLU loads (model in the cache, heads in models/)");
    NluService::start(nlu, ServiceOptions::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_are_understood_answered_and_escalated() {
    let dir = tempfile::tempdir().unwrap();
    let desk = desk_in(dir.path(), default_rules(), Arc::new(real_nlu().await));

    // A routine question is answered with the order's real state.
    let turn = say(&desk, "anna", "hi, where is my order 10001?").await;
    assert_eq!(turn.status, Status::Bot, "{}", reply(&turn));
    assert!(reply(&turn).contains("on its way"), "{}", reply(&turn));

    // Slot filling: the bot asks for the number, then answers.
    let ask = say(&desk, "marc", "I want to track my package").await;
    assert!(reply(&ask).contains("order number"), "{}", reply(&ask));
    let answer = say(&desk, "marc", "it's 10007").await;
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
    let c = desk.conversation(&angry.conversation_id).unwrap().unwrap();
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
