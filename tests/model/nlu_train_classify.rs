//! A support lead writes a few intents, the NLU trains on them by itself and classifies new
//! messages; `frontdesk nlu` prints the documented fields; the batching service answers
//! many callers. Uses the real encoder (fetched into the cache once).

use std::path::{Path, PathBuf};

use frontdesk::nlu::{Nlu, NluOptions};
use frontdesk::nlu::{NluService, ServiceOptions};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn write_intent(dir: &Path, name: &str, examples: &[&str]) {
    let mut yaml = format!("name: {name}\ndescription: test intent {name}\nexamples:\n");
    for e in examples {
        yaml.push_str(&format!("  - \"{e}\"\n"));
    }
    yaml.push_str(&format!("response:\n  text: \"answer for {name}\"\n"));
    std::fs::write(dir.join(format!("{name}.yaml")), yaml).unwrap();
}

/// A small shop: three intents and some out-of-scope examples; heads folder with the
/// committed sentiment, anger and frustration heads but no intent head yet.
fn small_shop() -> (tempfile::TempDir, NluOptions) {
    let tmp = tempfile::tempdir().unwrap();
    let intents = tmp.path().join("intents");
    let models = tmp.path().join("models");
    std::fs::create_dir_all(&intents).unwrap();
    std::fs::create_dir_all(&models).unwrap();
    write_intent(
        &intents,
        "track_order",
        &[
            "where is my order",
            "track my package please",
            "has my parcel shipped yet",
            "when will order 12345 arrive",
            "whats the status of my delivery",
            "my order hasnt arrived, where is it",
            "can you tell me where my shipment is",
            "tracking number for my purchase?",
        ],
    );
    write_intent(
        &intents,
        "get_refund",
        &[
            "I want my money back",
            "please refund my purchase",
            "how do I get a refund",
            "refund order 5531 now",
            "i returned the item, give me a refund",
            "can I be reimbursed for this",
            "I'd like a refund for the broken blender",
            "return the money to my card",
        ],
    );
    write_intent(
        &intents,
        "greet",
        &[
            "hi",
            "hello",
            "hey there",
            "good morning",
            "hiya",
            "hello, anyone there?",
        ],
    );
    let oos = "description: not our business\nexamples:\n  - what's the weather tomorrow\n  \
               - give me a pasta recipe\n  - who won the football match\n  - tell me a joke\n  \
               - what is the capital of France\n  - recommend a good movie\n  - how tall is \
               mount everest\n  - book me a flight to Rome\nresponse:\n  text: \"Sorry, I can \
               only help with the shop.\"\n";
    std::fs::write(intents.join("_out_of_scope.yaml"), oos).unwrap();
    for head in [
        "sentiment.safetensors",
        "anger.safetensors",
        "frustration.safetensors",
        "stakes.safetensors",
    ] {
        std::fs::copy(repo("models").join(head), models.join(head)).unwrap();
    }
    let opts = NluOptions {
        intents_dir: intents,
        models_dir: models,
        validation_dir: Some(tmp.path().join("no-validation-here")),
        ..Default::default()
    };
    (tmp, opts)
}

fn intent_heads(models: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(models)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("intents-"))
        .collect();
    v.sort();
    v
}

#[test]
fn trains_from_a_new_intents_folder_and_classifies() {
    let (_tmp, opts) = small_shop();
    let nlu = Nlu::load(&opts).unwrap();
    assert_eq!(
        intent_heads(&opts.models_dir).len(),
        1,
        "head stored under models/"
    );

    let out = nlu
        .analyze(&[
            "where's my parcel? ordered it last week, order 778812",
            "I demand a refund for this junk",
            "hello!",
            "what's a good recipe for banana bread",
        ])
        .unwrap();
    let intents: Vec<&str> = out.iter().map(|a| a.intent.as_str()).collect();
    assert_eq!(
        intents,
        ["track_order", "get_refund", "greet", "out_of_scope"],
        "{out:#?}"
    );
    assert!(out[0].intent_confidence > 0.5);
    assert!(out[0].entities.iter().any(|e| e.value.contains("778812")));
    for a in &out {
        let s = a.sentiment_scores;
        assert!((s.negative + s.neutral + s.positive - 1.0).abs() < 1e-4);
        assert!((0.0..=1.0).contains(&a.anger));
    }
    // a furious complaint reads angrier and more negative than a greeting
    assert!(out[1].anger > out[2].anger);
    assert!(out[1].sentiment_scores.negative > out[2].sentiment_scores.negative);
}

#[test]
fn frustration_head_reads_its_labels_and_tells_angry_from_calm() {
    let (_tmp, opts) = small_shop();
    let nlu = Nlu::load(&opts).unwrap();
    let out = nlu
        .analyze(&[
            "can you update my phone number please, it's changed",
            "where is order 12345? it was due yesterday",
            "THIRD time asking. WHERE IS MY REFUND you useless scammers, I'm reporting you",
            "hi, do you ship to Ireland?",
        ])
        .unwrap();
    for a in &out {
        let f = a.frustration;
        assert!(
            (f.calm + f.frustrated + f.angry - 1.0).abs() < 1e-4,
            "{a:?}"
        );
    }
    let (calm, furious, plain) = (out[0].frustration, out[2].frustration, out[3].frustration);
    assert!(calm.calm > 0.5, "a plain request reads calm: {calm:?}");
    assert!(plain.calm > 0.5, "a plain question reads calm: {plain:?}");
    assert!(furious.angry > calm.angry + 0.3, "{furious:?} vs {calm:?}");
    assert!(furious.upset() > 0.5, "{furious:?}");
}

#[test]
fn a_frustration_head_with_other_labels_is_refused() {
    // Loading the committed head (above) checks its labels are calm, frustrated, angry in
    // that order; a head with other labels in its place is refused, naming the head.
    let (_tmp, opts) = small_shop();
    std::fs::copy(
        opts.models_dir.join("anger.safetensors"),
        opts.models_dir.join("frustration.safetensors"),
    )
    .unwrap();
    let e = Nlu::load(&opts)
        .err()
        .expect("a head with wrong labels")
        .to_string();
    assert!(e.contains("frustration"), "{e}");
    assert!(e.contains("calm"), "{e}");
}

#[test]
fn changed_intents_are_retrained_and_the_last_heads_kept_for_a_rollback() {
    let (_tmp, opts) = small_shop();
    drop(Nlu::load(&opts).unwrap());
    let before = intent_heads(&opts.models_dir);
    write_intent(
        &opts.intents_dir,
        "cancel_order",
        &[
            "cancel my order",
            "I don't want order 4421 anymore, cancel it",
            "please stop my purchase",
            "can I cancel what I ordered yesterday",
            "cancel the order I just placed",
            "call off my order please",
        ],
    );
    let nlu = Nlu::load(&opts).unwrap();
    let after = intent_heads(&opts.models_dir);
    assert_eq!(before.len(), 1);
    assert_eq!(after.len(), 2, "the new head and the one before: {after:?}");
    assert!(after.contains(&before[0]));
    let a = nlu.analyze(&["please cancel my order 4421"]).unwrap();
    assert_eq!(a[0].intent, "cancel_order");
}

#[test]
fn nlu_command_prints_one_documented_object_per_line_in_order() {
    let (_tmp, opts) = small_shop();
    let nlu = Nlu::load(&opts).unwrap();
    let input = "hello\nwhere is my order 12345?\n\nI want my money back!!\n";
    let mut out = Vec::new();
    let n = nlu.analyze_lines(input.as_bytes(), &mut out, 2).unwrap();
    assert_eq!(n, 4);
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let texts: Vec<&str> = lines.iter().map(|v| v["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        [
            "hello",
            "where is my order 12345?",
            "",
            "I want my money back!!"
        ]
    );
    for v in &lines {
        for key in [
            "text",
            "intent",
            "intent_confidence",
            "sentiment",
            "anger",
            "frustration",
            "entities",
        ] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        for key in ["calm", "frustrated", "angry"] {
            assert!(v["frustration"][key].is_f64(), "frustration.{key} in {v}");
        }
        for key in ["negative", "neutral", "positive"] {
            assert!(
                v["sentiment_scores"][key].is_f64(),
                "sentiment_scores.{key} in {v}"
            );
        }
        assert!(["negative", "neutral", "positive"].contains(&v["sentiment"].as_str().unwrap()));
        assert!(v["entities"].is_array());
    }
    assert_eq!(lines[1]["intent"], "track_order");
    assert_eq!(lines[1]["entities"][0]["kind"], "order_number");
}

#[test]
fn service_answers_many_callers_each_with_their_own_message() {
    let (_tmp, opts) = small_shop();
    let service = NluService::start(
        Nlu::load(&opts).unwrap(),
        ServiceOptions {
            max_batch: 4,
            queue_capacity: 2,
        },
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let texts: Vec<String> = (0..12)
        .map(|i| {
            if i % 2 == 0 {
                format!("where is order {}", 1000 + i)
            } else {
                "hello there".to_string()
            }
        })
        .collect();
    let answers = rt.block_on(async {
        let calls = texts.iter().map(|t| {
            let s = service.clone();
            let t = t.clone();
            tokio::spawn(async move { s.analyze(t).await })
        });
        futures::future::join_all(calls).await
    });
    for (text, answer) in texts.iter().zip(answers) {
        let a = answer.unwrap().unwrap();
        assert_eq!(&a.text, text);
        let want = if text.starts_with("where") {
            "track_order"
        } else {
            "greet"
        };
        assert_eq!(a.intent, want, "{text}");
    }
}

#[test]
fn handles_and_links_do_not_change_what_a_message_is_read_as() {
    let (_tmp, opts) = small_shop();
    let nlu = Nlu::load(&opts).unwrap();
    let out = nlu
        .analyze(&[
            "my parcel never came and nobody answers, order 778812",
            "@AcmeSupport @AcmeHelp my parcel never came and nobody answers, order 778812 https://t.co/x7Yq2",
            "<@!123456789> my parcel never came and nobody answers, order 778812",
        ])
        .unwrap();
    for a in &out[1..] {
        // read exactly as the plain message
        assert_eq!(a.intent, out[0].intent, "{a:?}");
        assert_eq!(a.intent_confidence, out[0].intent_confidence);
        assert_eq!(a.frustration, out[0].frustration, "{a:?} vs {:?}", out[0]);
        assert_eq!(a.sentiment_scores, out[0].sentiment_scores);
        assert_eq!(a.anger, out[0].anger);
        // and still what the customer wrote, its order number found where they wrote it
        assert!(a.text.contains("my parcel never came"));
        let e = a
            .entities
            .iter()
            .find(|e| e.value == "778812")
            .expect("order number");
        assert_eq!(&a.text[e.start..e.end], e.text);
    }
}
