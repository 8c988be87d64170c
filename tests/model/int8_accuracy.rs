//! `weights = "int8"` is worth having only where it holds: its embeddings stay near f32's on
//! sentence-transformers' reference texts and on tweets, and no head loses more than 0.3
//! points on its validation set. These are the floors its load-time check applies too.
use std::path::Path;

use frontdesk::nlu::encoder::int8_guard::{Check, MIN_COSINE, MIN_MEAN_COSINE};
use frontdesk::nlu::encoder::{Encoder, ModelFiles};
use frontdesk::nlu::training::{eval_intents, eval_text, NoProgress, Report, TextTask};
use frontdesk::nlu::{EncoderOptions, NluOptions, WeightFormat};

fn options(weights: WeightFormat) -> NluOptions {
    NluOptions {
        encoder: EncoderOptions {
            weights,
            ..EncoderOptions::default()
        },
        ..NluOptions::default()
    }
}

fn encoder(weights: WeightFormat) -> Encoder {
    let opts = options(weights);
    let files = ModelFiles::resolve(None, &opts.cache_dir).expect("model resolves");
    Encoder::load(&files, &opts.encoder).unwrap()
}

fn shared(path: &str) -> String {
    format!("{}/../shared/{path}", env!("CARGO_MANIFEST_DIR"))
}

#[derive(serde::Deserialize)]
struct Reference {
    text: String,
}

#[test]
fn int8_embeddings_stay_near_f32_on_reference_texts_and_tweets() {
    let int8 = encoder(WeightFormat::Int8);
    assert_eq!(
        int8.weights(),
        WeightFormat::Int8,
        "the load-time check refused int8: {:?}",
        int8.int8_check()
    );
    let check = int8.int8_check().expect("int8 was checked at load");
    assert!(check.holds(), "{check:?}");
    let exact = encoder(WeightFormat::F32);
    let reference: Vec<String> = std::fs::read_to_string(shared("data/minilm/reference.jsonl"))
        .expect("../shared/data/minilm/reference.jsonl is readable")
        .lines()
        .map(|l| serde_json::from_str::<Reference>(l).unwrap().text)
        .collect();
    let tweets: Vec<String> = std::fs::read_to_string(shared("data/tweeteval/sentiment/val.tsv"))
        .expect("../shared/data/tweeteval/sentiment/val.tsv is readable")
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once('\t').map(|(_, t)| t.to_string()))
        .take(500)
        .collect();
    for (name, texts) in [("reference", &reference), ("tweets", &tweets)] {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let got = Check::of(&exact.encode(&refs).unwrap(), &int8.encode(&refs).unwrap());
        eprintln!(
            "int8 against f32, {} {name}: mean cosine {:.5}, lowest {:.5}",
            texts.len(),
            got.mean,
            got.lowest
        );
        assert!(got.mean >= MIN_MEAN_COSINE, "{name}: {got:?}");
        assert!(got.lowest >= MIN_COSINE, "{name}: {got:?}");
    }
}

/// Batches run other kernels than one message does (AMX tiles from 64 rows where the CPU has
/// them): a message's embedding is the same either way, to well within int8's own floor.
#[test]
fn int8_embeds_a_message_alike_alone_and_in_a_batch() {
    let int8 = encoder(WeightFormat::Int8);
    let tweets: Vec<String> = std::fs::read_to_string(shared("data/tweeteval/sentiment/val.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once('\t').map(|(_, t)| t.to_string()))
        .take(96)
        .collect();
    let refs: Vec<&str> = tweets.iter().map(String::as_str).collect();
    let batched = int8.encode(&refs).unwrap();
    let alone: Vec<Vec<f32>> = refs
        .iter()
        .map(|t| int8.encode(&[t]).unwrap().remove(0))
        .collect();
    let got = Check::of(&batched, &alone);
    eprintln!(
        "int8 batched against alone, {} tweets: mean cosine {:.5}, lowest {:.5}",
        refs.len(),
        got.mean,
        got.lowest
    );
    assert!(got.mean >= 0.9995 && got.lowest >= 0.998, "{got:?}");
}

/// Points lost from f16 (the default) to int8, accuracy and macro-F1 each.
fn assert_within_points(head: &str, f16: &Report, int8: &Report) {
    let lost_acc = 100.0 * (f16.accuracy - int8.accuracy);
    let lost_f1 = 100.0 * (f16.macro_f1 - int8.macro_f1);
    eprintln!(
        "{head}: accuracy {:.4} -> {:.4}, macro-F1 {:.4} -> {:.4} ({} examples)",
        f16.accuracy, int8.accuracy, f16.macro_f1, int8.macro_f1, f16.examples
    );
    assert!(
        lost_acc <= 0.3 && lost_f1 <= 0.3,
        "{head} loses {lost_acc:.2} points of accuracy and {lost_f1:.2} of macro-F1 with int8"
    );
}

#[test]
fn no_head_loses_more_than_three_tenths_of_a_point_with_int8() {
    let (f16, int8) = (options(WeightFormat::F16), options(WeightFormat::Int8));
    let sets: [(TextTask, String); 4] = [
        (
            TextTask::Sentiment,
            shared("data/tweeteval/sentiment/val.tsv"),
        ),
        (TextTask::Anger, shared("data/tweeteval/emotion/val.tsv")),
        (TextTask::Frustration, "data/frustration/val.tsv".into()),
        (TextTask::Stakes, "data/stakes/test.tsv".into()),
    ];
    for (task, file) in &sets {
        let path = Path::new(file);
        let a = eval_text(&f16, *task, path, &NoProgress).unwrap();
        let b = eval_text(&int8, *task, path, &NoProgress).unwrap();
        assert_within_points(task.name(), &a, &b);
    }
    let bitext = shared("data/bitext/train.csv");
    let a = eval_intents(&f16, Path::new(&bitext), None, &NoProgress).unwrap();
    let b = eval_intents(&int8, Path::new(&bitext), None, &NoProgress).unwrap();
    assert_within_points("intents (shipped, on bitext)", &a, &b);
}
