//! The intents reload with the real NLU: a new intent dropped into the intents folder is
//! trained in the background while customers keep being answered by the head in force,
//! and is answered once its head is ready (the seconds it took are printed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use frontdesk::nlu::{Nlu, NluOptions, NluService, ServiceOptions};

use crate::support::server::{config, serve_with};
use crate::support::traffic::Steady;
use crate::support::{eventually, repo};

const GIFT_CARDS: &str = r#"name: gift_cards
description: The customer asks about buying or using a gift card.
examples:
  - do you sell gift cards
  - can I buy a gift card
  - I want to give a gift voucher to my sister
  - how do I use my gift card
  - is there a digital gift card I can email
  - gift card for a birthday present
  - can I pay with a gift voucher
  - what values do your gift cards come in
  - my gift card code does not work at checkout
  - do gift cards expire
  - buy a voucher for a friend
  - where can I get a store gift card
response:
  text: "Gift cards come in any amount from 10 to 200 and are sent by email within minutes."
"#;

fn copy_folder(from: &std::path::Path, to: &std::path::Path, ext: &str) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == ext) {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_intent_is_answered_after_its_head_is_trained_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let (intents, models) = (dir.path().join("intents"), dir.path().join("models"));
    copy_folder(&repo("intents"), &intents, "yaml");
    copy_folder(&repo("models"), &models, "safetensors");
    // An NLU of its own: the tier's shared one must keep the shipped intents.
    let opts = NluOptions {
        intents_dir: intents.clone(),
        models_dir: models.clone(),
        validation_dir: Some(repo("tests/data")),
        ..NluOptions::default()
    };
    let nlu = tokio::task::spawn_blocking(move || Nlu::load(&opts))
        .await
        .unwrap()
        .expect("the NLU loads (model in the cache)");
    let mut cfg = config(dir.path());
    cfg.engine.intents_dir = Some(intents.clone());
    let s = Arc::new(serve_with(cfg, NluService::start(nlu, ServiceOptions::default())).await);
    let question = "could I buy a gift card for my dad's birthday?";
    let before = s.say("gift-before", question).await;
    assert!(
        !before["replies"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Gift cards come"),
        "{before}"
    );

    // Customers write all along: none of their messages may fail while the head trains.
    let traffic = Steady::start(
        s.clone(),
        "where is my order 12345",
        Duration::from_millis(50),
    );
    std::fs::write(intents.join("gift_cards.yaml"), GIFT_CARDS).unwrap();
    let written = Instant::now();
    let mut n = 0;
    eventually("the new intent to be answered", || {
        n += 1;
        let s = s.clone();
        async move {
            let turn = s.say(&format!("gift-after-{n}"), question).await;
            turn["replies"][0]["text"]
                .as_str()
                .is_some_and(|t| t.contains("Gift cards come"))
                .then_some(())
        }
    })
    .await;
    let took = written.elapsed().as_secs_f64();
    let during = traffic.stop().await;
    println!("new intent answered {took:.1} s after its file was written; {during} messages answered meanwhile, none failed");
    assert!(during > 0);
    let health = s.health().await;
    assert_eq!(
        health["components"]["config"]["intents"]["version"], 2,
        "{health}"
    );
}
