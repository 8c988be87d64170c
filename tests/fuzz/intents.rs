//! Intent files (`IntentSet::load_dir`, the only way in: it reads a folder): the shipped
//! `intents/*.yaml` damaged by edits, intent-shaped YAML with fields of arbitrary shapes,
//! and arbitrary text, each written into a scratch folder. A refusal must be an error that
//! names the file (and a line that exists); what loads must meet the documented rules.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use frontdesk::nlu::{IntentError, IntentSet, MIN_EXAMPLES};
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use serde_json::{json, Value};

use crate::harness::{
    any_chars, cases, check, edits, field, fuzz, list, mutate, object, optional, shape, string,
    text, Edit, Shape,
};
use crate::support::repo;

/// The shipped files, (file name, text), `_out_of_scope.yaml` included.
fn shipped() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(repo("intents"))
        .expect("intents/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[derive(Debug, Clone)]
enum Input {
    /// Shipped file `index`, damaged.
    Damaged(usize, Vec<Edit>),
    /// An intent-shaped document.
    Shaped(Value),
    /// `_out_of_scope.yaml` shaped like an intent file.
    OutOfScope(Value),
    /// Any text as an intent file.
    Text(String),
}

fn snake() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => "[a-z][a-z0-9_]{0,15}".prop_map(Value::from),
        1 => Just(json!("out_of_scope")),
        1 => string(),
    ]
    .boxed()
}

fn examples() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => prop::collection::vec(
            prop_oneof![
                6 => "[a-z]{1,8}( [a-z]{1,8}){0,3}".prop_map(Value::from),
                1 => string(),
                1 => Just(json!("where is order #1")),
            ],
            0..12,
        ),
        1 => prop::collection::vec(Just(json!("same example")), 2..7),
    ]
    .prop_map(Value::Array)
    .boxed()
}

fn response() -> Shape {
    let entity = prop_oneof![
        Just(json!("order_number")),
        Just(json!("email")),
        Just(json!("money")),
        Just(json!("date")),
        string()
    ]
    .boxed();
    let slot = shape(vec![
        ("name", field(snake())),
        ("entity", field(entity)),
        ("prompt", field(string())),
    ]);
    shape(vec![
        ("text", field(string())),
        ("slots", optional(list(&slot, 0..3))),
        ("action", optional(snake())),
    ])
}

fn intent() -> BoxedStrategy<Value> {
    object(vec![
        ("name", field(snake())),
        ("description", optional(string())),
        ("examples", field(examples())),
        ("response", field(response())),
    ])
}

fn input(files: usize) -> BoxedStrategy<Input> {
    prop_oneof![
        4 => (0..files, edits()).prop_map(|(i, e)| Input::Damaged(i, e)),
        3 => intent().prop_map(Input::Shaped),
        1 => intent().prop_map(Input::OutOfScope),
        2 => prop_oneof![text(), any_chars(80)].prop_map(Input::Text),
    ]
    .boxed()
}

/// A file name for an intent named `name` (the name when it could be one, so that the
/// checks after the name-equals-file check run too).
fn file_for(name: &Value) -> String {
    match name.as_str() {
        Some(n)
            if !n.is_empty()
                && n.len() < 60
                && n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !n.starts_with('_') =>
        {
            format!("{n}.yaml")
        }
        _ => "fuzz_intent.yaml".into(),
    }
}

/// `value` as block-style YAML, the way people write intent files: simple strings plain
/// (so that ` #` in an example meets the comment check), others double-quoted with JSON's
/// escapes (which YAML's double-quoted style shares).
fn yaml(value: &Value) -> String {
    let mut out = String::new();
    emit(value, 0, &mut out);
    out
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s)
            if s.starts_with(|c: char| c.is_ascii_alphabetic())
                && !s.ends_with(' ')
                && !s.contains(": ")
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || " #?!.,'_".contains(c)) =>
        {
            s.clone()
        }
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        other => other.to_string(),
    }
}

fn is_block(value: &Value) -> bool {
    matches!(value, Value::Array(a) if !a.is_empty())
        || matches!(value, Value::Object(o) if !o.is_empty())
}

fn emit(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, v) in map {
                out.push_str(&format!("{pad}{}:", scalar(&Value::String(key.clone()))));
                if is_block(v) {
                    out.push('\n');
                    emit(v, indent + 2, out);
                } else {
                    out.push_str(&format!(" {}\n", scalar(v)));
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                if is_block(item) {
                    out.push_str(&format!("{pad}-\n"));
                    emit(item, indent + 2, out);
                } else {
                    out.push_str(&format!("{pad}- {}\n", scalar(item)));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

fn clear(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
}

#[test]
fn intent_files() {
    let shipped = shipped();
    let greet = shipped
        .iter()
        .find(|(n, _)| n == "greet.yaml")
        .expect("intents/greet.yaml")
        .clone();
    let dir = tempfile::tempdir().unwrap();
    fuzz(
        "intents::intent_files",
        cases(),
        input(shipped.len()),
        |input, t| {
            clear(dir.path());
            let mut written: Vec<(PathBuf, String)> = Vec::new();
            let mut write = |name: &str, text: &str| {
                let path = dir.path().join(name);
                std::fs::write(&path, text).unwrap();
                written.push((path, text.to_string()));
            };
            match &input {
                Input::Damaged(i, edits) => {
                    let (name, text) = &shipped[*i];
                    write(name, &mutate(text, edits));
                    if name.starts_with('_') {
                        write(&greet.0, &greet.1);
                    }
                }
                Input::Shaped(v) => write(&file_for(&v["name"]), &yaml(v)),
                Input::OutOfScope(v) => {
                    write("_out_of_scope.yaml", &yaml(v));
                    write(&greet.0, &greet.1);
                }
                Input::Text(t) => write("fuzz_intent.yaml", t),
            }
            match IntentSet::load_dir(dir.path()) {
                Err(e) => {
                    t.note(match &e {
                        IntentError::Invalid { line: Some(_), .. } => "refused at a line",
                        IntentError::Invalid { line: None, .. } => "refused (file)",
                        _ => "refused (folder)",
                    });
                    check_error(&e, &written)
                }
                Ok(set) => {
                    t.note("loaded");
                    check_set(&set)
                }
            }
        },
    );
}

fn check_error(e: &IntentError, written: &[(PathBuf, String)]) -> Result<(), TestCaseError> {
    let shown = e.to_string();
    check(!shown.trim().is_empty(), || format!("empty error: {e:?}"))?;
    if let IntentError::Invalid {
        file,
        line,
        message,
    } = e
    {
        let text = written.iter().find(|(p, _)| p == file).map(|(_, t)| t);
        check(text.is_some(), || {
            format!("error names a file not written: {e:?}")
        })?;
        check(!message.trim().is_empty(), || format!("no message: {e:?}"))?;
        check(shown.starts_with(&file.display().to_string()), || {
            format!("error does not start with the file: {shown}")
        })?;
        if let (Some(line), Some(text)) = (line, text) {
            // YAML counts a lone carriage return as a line break too ("\"\r\r" is three lines)
            let lines = text
                .replace("\r\n", "\n")
                .replace('\r', "\n")
                .lines()
                .count()
                .max(1);
            check(*line >= 1 && *line <= lines + 1, || {
                format!("line {line} of a file of {lines} lines: {shown}")
            })?;
        }
    }
    Ok(())
}

fn check_set(set: &IntentSet) -> Result<(), TestCaseError> {
    check(!set.intents.is_empty(), || "an empty set loaded".into())?;
    for intent in &set.intents {
        check(intent.examples.len() >= MIN_EXAMPLES, || {
            format!("{} has {} examples", intent.name, intent.examples.len())
        })?;
        let mut seen = HashSet::new();
        for example in &intent.examples {
            check(!example.is_empty() && example.trim() == example, || {
                format!("example {example:?} of {}", intent.name)
            })?;
            let key = example
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase();
            check(seen.insert(key), || {
                format!("example {example:?} twice in {}", intent.name)
            })?;
        }
        check(!intent.response.text.trim().is_empty(), || {
            format!("{} answers with empty text", intent.name)
        })?;
        check(
            intent.name != "out_of_scope"
                && intent.name.starts_with(|c: char| c.is_ascii_lowercase()),
            || format!("intent name {:?}", intent.name),
        )?;
    }
    let _ = (
        set.hash(),
        set.training_pairs(),
        set.out_of_scope_examples().len(),
    );
    Ok(())
}
