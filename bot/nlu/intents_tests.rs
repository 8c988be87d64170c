//! Intent-file validation: every rule gets a broken file and the error it must produce.

use super::*;
use std::fs;

const TRACK: &str = r#"name: track_order
description: Where is my order.
examples:
  - where is my order
  - track order 10234
  - "status of #55120"
  - has my parcel shipped
  - when does my package arrive
response:
  text: "Order {order_number} is {status}."
  slots:
    - name: order_number
      entity: order_number
      prompt: "What's your order number?"
  action: order_status
"#;

const THANKS: &str = r#"name: thanks
examples: [thanks, thank you, cheers, thx, much appreciated]
response:
  text: You're welcome!
"#;

const OOS: &str = r#"description: Not our business.
examples:
  - what's the weather
  - tell me a joke
  - recipe for pancakes
  - who won the match
  - capital of france
response:
  text: "I can only help with orders here."
"#;

fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn load(files: &[(&str, &str)]) -> Result<IntentSet, IntentError> {
    let dir = folder(files);
    IntentSet::load_dir(dir.path())
}

/// Loads a folder that must fail and returns (file name, line, message).
fn error_of(files: &[(&str, &str)]) -> (String, Option<usize>, String) {
    let err = load(files).expect_err("the folder should be rejected");
    let file = err
        .file()
        .and_then(|f| f.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (file, err.line(), err.to_string())
}

#[test]
fn valid_folder_loads_intents_slots_and_out_of_scope() {
    let set = load(&[
        ("track_order.yaml", TRACK),
        ("thanks.yml", THANKS),
        ("_out_of_scope.yaml", OOS),
        ("README.md", "not an intent"),
    ])
    .unwrap();
    assert_eq!(set.names(), vec!["thanks", "track_order"]);
    let track = set.get("track_order").unwrap();
    assert_eq!(track.examples.len(), 5);
    assert_eq!(track.response.slots[0].entity, EntityKind::OrderNumber);
    assert_eq!(track.response.action.as_deref(), Some("order_status"));
    assert!(set.get("thanks").unwrap().response.slots.is_empty());
    assert_eq!(set.out_of_scope_examples().len(), 5);
    let pairs = set.training_pairs();
    assert_eq!(pairs.len(), 10);
    assert!(pairs.contains(&("status of #55120".to_string(), "track_order".to_string())));
    assert!(pairs.iter().all(|(_, intent)| intent != OUT_OF_SCOPE));
}

#[test]
fn unknown_field_is_reported_with_its_line() {
    let broken = TRACK.replace("examples:", "exmaples:");
    let (file, line, message) = error_of(&[("track_order.yaml", &broken)]);
    assert_eq!(file, "track_order.yaml");
    assert_eq!(line, Some(3));
    assert!(message.contains("exmaples"), "{message}");
    assert!(message.contains("track_order.yaml:3: "), "{message}");
}

#[test]
fn unknown_field_inside_response_is_reported() {
    let broken = TRACK.replace("  action: order_status", "  acton: order_status");
    let (_, line, message) = error_of(&[("track_order.yaml", &broken)]);
    assert!(message.contains("acton"), "{message}");
    assert_eq!(line, Some(15));
}

#[test]
fn missing_examples_and_response_and_name_are_errors() {
    let no_examples = "name: thanks\nresponse:\n  text: hi\n";
    let (_, _, message) = error_of(&[("thanks.yaml", no_examples)]);
    assert!(message.contains("missing field `examples`"), "{message}");

    let no_response = "name: thanks\nexamples: [a, b, c, d, e]\n";
    let (_, _, message) = error_of(&[("thanks.yaml", no_response)]);
    assert!(message.contains("missing field `response`"), "{message}");

    let no_name = THANKS.replace("name: thanks\n", "");
    let (_, _, message) = error_of(&[("thanks.yaml", &no_name)]);
    assert!(message.contains("missing field `name`"), "{message}");
}

#[test]
fn name_must_match_file_name() {
    let (file, line, message) = error_of(&[("track.yaml", TRACK)]);
    assert_eq!(file, "track.yaml");
    assert_eq!(line, Some(1));
    assert!(message.contains("rename the file"), "{message}");
}

#[test]
fn duplicate_intent_names_across_files_are_errors() {
    let (_, _, message) = error_of(&[("thanks.yaml", THANKS), ("thanks.yml", THANKS)]);
    assert!(message.contains("already defined in"), "{message}");
}

#[test]
fn too_few_examples_is_an_error() {
    let few = "name: thanks\nexamples:\n  - thanks\n  - thx\nresponse:\n  text: welcome\n";
    let (_, line, message) = error_of(&[("thanks.yaml", few)]);
    assert_eq!(line, Some(2));
    assert!(message.contains("only 2 examples"), "{message}");
}

#[test]
fn duplicate_example_points_at_the_second_copy() {
    let dup = TRACK.replace("  - has my parcel shipped\n", "  - Where is my order\n");
    let (_, line, message) = error_of(&[("track_order.yaml", &dup)]);
    assert_eq!(line, Some(7));
    assert!(message.contains("appears twice"), "{message}");
}

#[test]
fn unknown_slot_entity_lists_the_valid_kinds() {
    let bad = TRACK.replace("entity: order_number", "entity: phone_number");
    let (_, line, message) = error_of(&[("track_order.yaml", &bad)]);
    assert_eq!(line, Some(13));
    assert!(
        message.contains("phone_number") && message.contains("order_number"),
        "{message}"
    );
}

#[test]
fn empty_response_text_is_an_error() {
    let bad = THANKS.replace("text: You're welcome!", "text: \"  \"");
    let (_, line, message) = error_of(&[("thanks.yaml", &bad)]);
    assert_eq!(line, Some(4));
    assert!(message.contains("`text` is empty"), "{message}");
}

#[test]
fn out_of_scope_name_is_reserved() {
    let bad = THANKS.replace("name: thanks", "name: out_of_scope");
    let (_, line, message) = error_of(&[("out_of_scope.yaml", &bad)]);
    assert_eq!(line, Some(1));
    assert!(message.contains("reserved"), "{message}");
}

#[test]
fn out_of_scope_file_rejects_slots_and_unknown_fields() {
    let with_action = format!("{OOS}  action: order_status\n");
    let (file, _, message) = error_of(&[
        ("thanks.yaml", THANKS),
        ("_out_of_scope.yaml", &with_action),
    ]);
    assert_eq!(file, "_out_of_scope.yaml");
    assert!(message.contains("text only"), "{message}");
    let with_name = format!("name: oos\n{OOS}");
    let (_, _, message) = error_of(&[("thanks.yaml", THANKS), ("_out_of_scope.yaml", &with_name)]);
    assert!(message.contains("unknown field `name`"), "{message}");
}

#[test]
fn empty_folder_says_what_to_add() {
    let err = load(&[("notes.txt", "hello")]).unwrap_err();
    assert!(err.to_string().contains("no intent files"), "{err}");
}

#[test]
fn malformed_yaml_reports_the_line() {
    let bad = TRACK.replace("  - track order 10234", "  - track order: [10234");
    let (_, line, _) = error_of(&[("track_order.yaml", &bad)]);
    assert!(matches!(line, Some(5..=6)), "{line:?}");
}

#[test]
fn hash_ignores_file_order_and_formatting() {
    let a = load(&[("track_order.yaml", TRACK), ("thanks.yaml", THANKS)]).unwrap();
    let reformatted = "name:   thanks\nexamples:\n  - thanks\n  - 'thank you'\n  - cheers\n  - \"thx\"\n  - much appreciated   \nresponse: {text: \"You're welcome!\"}\n";
    let b = load(&[("thanks.yaml", reformatted), ("track_order.yaml", TRACK)]).unwrap();
    assert_eq!(a.hash(), b.hash());
    assert_eq!(a.hash().len(), 64);
}

#[test]
fn hash_changes_when_an_example_or_response_changes() {
    let base = load(&[("thanks.yaml", THANKS)]).unwrap().hash();
    let example = THANKS.replace("cheers", "cheers mate");
    let response = THANKS.replace("You're welcome!", "Any time!");
    let with_oos = load(&[("thanks.yaml", THANKS), ("_out_of_scope.yaml", OOS)])
        .unwrap()
        .hash();
    assert_ne!(base, load(&[("thanks.yaml", &example)]).unwrap().hash());
    assert_ne!(base, load(&[("thanks.yaml", &response)]).unwrap().hash());
    assert_ne!(base, with_oos);
}

#[test]
fn unquoted_hash_that_would_cut_an_example_short_is_an_error() {
    let bad = TRACK.replace("  - \"status of #55120\"", "  - status of #55120");
    let (_, line, message) = error_of(&[("track_order.yaml", &bad)]);
    assert_eq!(line, Some(6));
    assert!(message.contains("put the example in quotes"), "{message}");
}
