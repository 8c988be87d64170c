//! The rules file (`policy::Rules::parse`): the shipped `rules.toml` damaged by edits (lines
//! swapped, dropped or doubled, numbers replaced by odd ones, syntax inserted), rules-shaped
//! TOML with fields of arbitrary kinds and values, and arbitrary text. A refusal must be an
//! error naming the file; what parses must keep the file's promises (every escalating rule
//! has a declared queue, names are unique, SLAs are at least a second).

use std::collections::HashSet;
use std::path::Path;

use frontdesk::policy::{Effect, Rules, RulesError};
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use serde_json::{json, Value};

use crate::harness::{
    any_chars, cases, check, edits, field, fuzz, mutate, object, odd_number, optional, string,
    text, Edit, Field,
};
use crate::support::repo;

const FILE: &str = "fuzz/rules.toml";

const WHEN: &[&str] = &[
    "negative_message",
    "anger",
    "negative_trend",
    "lifetime_value",
    "order_value",
    "tier",
    "human_request",
    "repeated_failure",
    "keywords",
    "frustration",
    "message_frustration",
    "intent",
];

fn probability() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => (0.0f64..=1.0).prop_map(Value::from),
        1 => odd_number(),
    ]
    .boxed()
}

fn words() -> BoxedStrategy<Value> {
    prop::collection::vec(
        prop_oneof![3 => "[a-z]{1,10}".prop_map(Value::from), 1 => string()],
        0..4,
    )
    .prop_map(Value::Array)
    .boxed()
}

fn queue_name() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!("general")),
        Just(json!("angry")),
        Just(json!("priority")),
        string()
    ]
    .boxed()
}

/// The fields each `when` needs, with values of the right kind.
fn condition_fields(when: &'static str) -> Vec<(&'static str, Field)> {
    let count = || (0u64..6).prop_map(Value::from).boxed();
    let window = || (0u64..8).prop_map(Value::from).boxed();
    match when {
        "negative_message" | "frustration" => vec![("at_least", field(probability()))],
        "anger" => vec![
            ("at_least", field(probability())),
            ("negative_at_least", optional(probability())),
        ],
        "negative_trend" => vec![
            ("at_least", field(probability())),
            ("window", field(window())),
        ],
        "lifetime_value" | "order_value" => vec![("at_least", field(odd_number()))],
        "tier" => vec![("tiers", field(words()))],
        "human_request" => vec![("intents", optional(words()))],
        "intent" => vec![("intents", field(words()))],
        "repeated_failure" => vec![("count", field(count()))],
        "keywords" => vec![("words", field(words()))],
        _ => vec![
            ("angry_at_least", optional(probability())),
            ("upset_at_least", optional(probability())),
        ],
    }
}

/// A rule: one whose fields fit its `when` (each still possibly of the wrong kind), or one
/// with any of the fields.
fn rule() -> BoxedStrategy<Value> {
    let common = || {
        let only_for = object(vec![
            ("tiers", optional(words())),
            ("lifetime_value_at_least", optional(odd_number())),
        ]);
        vec![
            (
                "name",
                field(
                    prop_oneof![3 => "[a-z ]{1,12}".prop_map(Value::from), 1 => string()].boxed(),
                ),
            ),
            (
                "effect",
                optional(
                    prop_oneof![Just(json!("escalate")), Just(json!("boost")), string()].boxed(),
                ),
            ),
            ("queue", field(queue_name())),
            ("priority", field(odd_number())),
            ("only_for", optional(only_for)),
        ]
    };
    let fitting = proptest::sample::select(WHEN).prop_flat_map(move |when| {
        let mut fields = common();
        fields.push(("when", field(Just(Value::from(when)).boxed())));
        fields.extend(condition_fields(when));
        object(fields)
    });
    let any_fields = {
        let when = prop_oneof![
            6 => proptest::sample::select(WHEN).prop_map(Value::from),
            1 => string(),
        ]
        .boxed();
        let mut fields = common();
        fields.push(("when", field(when)));
        for name in [
            "at_least",
            "negative_at_least",
            "angry_at_least",
            "upset_at_least",
        ] {
            fields.push((name, optional(probability())));
        }
        for name in ["window", "count"] {
            fields.push((name, optional(odd_number())));
        }
        for name in ["tiers", "intents", "words"] {
            fields.push((name, optional(words())));
        }
        object(fields)
    };
    prop_oneof![2 => fitting, 1 => any_fields].boxed()
}

fn rules_file() -> BoxedStrategy<Value> {
    let queue = object(vec![
        (
            "sla_secs",
            field(prop_oneof![(0u64..1000).prop_map(Value::from), odd_number()].boxed()),
        ),
        ("description", optional(string())),
    ]);
    let queues = prop::collection::vec((queue_name(), queue), 0..4).prop_map(|qs| {
        Value::Object(
            qs.into_iter()
                .map(|(n, q)| (n.as_str().unwrap_or("q").to_string(), q))
                .collect(),
        )
    });
    object(vec![
        ("queues", field(queues.boxed())),
        (
            "rules",
            field(
                prop::collection::vec(rule(), 0..5)
                    .prop_map(Value::Array)
                    .boxed(),
            ),
        ),
    ])
}

/// TOML has no null: drop them (keys and items), so that the document can be written.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|v| !v.is_null())
                .map(without_nulls)
                .collect(),
        ),
        other => other.clone(),
    }
}

#[derive(Debug, Clone)]
enum Input {
    /// The shipped `rules.toml`, damaged.
    Damaged(Vec<Edit>),
    /// A rules-shaped document (as TOML where it can be written as TOML).
    Shaped(Value),
    Text(String),
}

#[test]
fn rules_files() {
    let shipped = std::fs::read_to_string(repo("rules.toml")).expect("rules.toml");
    Rules::parse(&shipped, Path::new(FILE)).expect("the shipped rules.toml parses");
    let input = prop_oneof![
        4 => edits().prop_map(Input::Damaged),
        4 => rules_file().prop_map(Input::Shaped),
        1 => prop_oneof![text(), any_chars(80)].prop_map(Input::Text),
    ];
    fuzz("rules::rules_files", cases(), input, |input, t| {
        let text = match &input {
            Input::Damaged(edits) => mutate(&shipped, edits),
            Input::Shaped(v) => {
                let v = without_nulls(v);
                toml::to_string(&v).unwrap_or_else(|_| v.to_string())
            }
            Input::Text(t) => t.clone(),
        };
        match Rules::parse(&text, Path::new(FILE)) {
            Err(e) => {
                t.note(match &e {
                    RulesError::Parse { .. } => "TOML error",
                    RulesError::Invalid { .. } => "invalid rule",
                    RulesError::Read { .. } => "unreadable",
                });
                let shown = e.to_string();
                check(
                    shown.contains(FILE) && shown.len() > FILE.len() + 12,
                    || format!("error without the file or a message: {shown:?}"),
                )
            }
            Ok(rules) => {
                t.note("loaded");
                for (name, q) in &rules.queues {
                    check(q.sla_secs >= 1, || format!("queue {name} with SLA 0"))?;
                }
                let mut names = HashSet::new();
                for rule in &rules.rules {
                    check(
                        !rule.name.trim().is_empty() && names.insert(&rule.name),
                        || format!("rule name {:?} empty or twice", rule.name),
                    )?;
                    if rule.effect == Effect::Escalate {
                        check(
                            rule.queue
                                .as_ref()
                                .is_some_and(|q| rules.queues.contains_key(q)),
                            || format!("rule {:?} escalates to an undeclared queue", rule.name),
                        )?;
                    }
                }
                Ok(())
            }
        }
    });
}
