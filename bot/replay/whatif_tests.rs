//! The what-if comparison on fixtures with known differences.
use super::*;
use crate::policy::{Effect, EscalationReason};

fn outcome(id: &str, queue: Option<&str>, rule: &str) -> Outcome {
    Outcome {
        conversation: id.into(),
        status: if queue.is_some() {
            Status::Queued
        } else {
            Status::Bot
        },
        queue: queue.map(String::from),
        reasons: queue
            .map(|_| {
                vec![EscalationReason {
                    rule: rule.into(),
                    when: "intent".into(),
                    value: serde_json::json!("cancel_order"),
                    threshold: serde_json::Value::Null,
                    effect: Effect::Escalate,
                    priority: 1,
                    details: vec![],
                }]
            })
            .unwrap_or_default(),
        replies: vec![],
    }
}

fn said(id: &str, text: &str) -> Recorded {
    Recorded {
        conversation: id.into(),
        user_id: "u".into(),
        text: text.into(),
        profile: None,
        expected: None,
        why: None,
    }
}

/// Four conversations: one newly escalated, one no longer, one moved queue, one the same.
#[test]
fn the_differences_the_counts_the_load_and_the_labels_are_the_known_ones() {
    let records = vec![
        said("a", "cancel my order"),
        said("a", "now please"),
        said("b", "this is ridiculous"),
        said("c", "I was charged twice"),
        said("d", "where is my parcel"),
    ];
    let before = vec![
        outcome("a", None, ""),
        outcome("b", Some("complaints"), "angry"),
        outcome("c", Some("general"), "money"),
        outcome("d", None, ""),
    ];
    let after = vec![
        outcome("a", Some("general"), "cancellations to a person"),
        outcome("b", None, ""),
        outcome("c", Some("billing"), "money"),
        outcome("d", None, ""),
    ];
    let hours = HashMap::from([
        ("a".to_string(), 9),
        ("b".to_string(), 9),
        ("c".to_string(), 22),
    ]);
    // a: a person was needed; b: the bot could have gone on; d: the bot was right.
    let labels = HashMap::from([
        ("a".to_string(), true),
        ("b".to_string(), false),
        ("d".to_string(), false),
    ]);
    let w = compare(&records, &before, &after, &hours, &labels);
    assert_eq!(
        (w.conversations, w.escalated_before, w.escalated_after),
        (4, 2, 2)
    );
    let changes: Vec<(&str, &str)> = w
        .changed
        .iter()
        .map(|c| (c.conversation.as_str(), c.change))
        .collect();
    assert_eq!(
        changes,
        [
            ("a", "newly_escalated"),
            ("b", "no_longer_escalated"),
            ("c", "other_queue")
        ]
    );
    assert_eq!(w.changed[0].first_message, "cancel my order");
    assert_eq!(w.changed[0].after_rules, ["cancellations to a person"]);
    assert_eq!(w.changed[0].label, Some(true));
    assert_eq!(w.load_before["complaints"][9], 1);
    assert_eq!(w.load_before["general"][22], 1);
    assert_eq!(w.load_after["general"][9], 1);
    assert_eq!(w.load_after["billing"][22], 1);
    assert!(!w.load_after.contains_key("complaints"));
    assert_eq!(
        w.labels_before,
        LabelScore {
            labelled: 3,
            right: 1,
            false_escalations: 1,
            missed: 1
        }
    );
    assert_eq!(
        w.labels_after,
        LabelScore {
            labelled: 3,
            right: 3,
            false_escalations: 0,
            missed: 0
        }
    );
    assert_eq!(
        w.queue_totals(),
        [
            ("billing".to_string(), 0, 1),
            ("complaints".to_string(), 1, 0),
            ("general".to_string(), 1, 1)
        ]
    );
    let text = w.render();
    assert!(text.contains("escalated 2 before, 2 after (+0)"), "{text}");
    assert!(text.contains("right 1 -> 3"), "{text}");
}
