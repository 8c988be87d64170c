//! Marks to labelled messages: the firing messages are found, and each mark teaches only
//! what the module's table says.

use super::*;
use crate::nlu::{Analysis, FrustrationScores, Sentiment, SentimentScores};
use crate::store::MarkKind;
use serde_json::json;

fn customer(text: &str, calm: f32, frustrated: f32, angry: f32, negative: f32) -> StoredMessage {
    StoredMessage {
        from: Speaker::Customer,
        text: text.into(),
        time: Utc::now(),
        analysis: Some(Analysis {
            text: text.into(),
            intent: "track_order".into(),
            intent_confidence: 0.9,
            sentiment: Sentiment::Neutral,
            sentiment_scores: SentimentScores {
                negative,
                neutral: 1.0 - negative,
                positive: 0.0,
            },
            anger: 0.1,
            frustration: FrustrationScores {
                calm,
                frustrated,
                angry,
            },
            stakes: Default::default(),
            entities: vec![],
        }),
    }
}

fn bot(text: &str) -> StoredMessage {
    StoredMessage {
        from: Speaker::Bot,
        text: text.into(),
        time: Utc::now(),
        analysis: None,
    }
}

fn reason(rule: &str, when: &str, value: Value, threshold: Value) -> EscalationReason {
    serde_json::from_value(json!({
        "rule": rule, "when": when, "value": value, "threshold": threshold,
        "effect": "escalate", "priority": 10
    }))
    .unwrap()
}

fn upset_rule(v: f64) -> EscalationReason {
    reason(
        "frustrated message",
        "message_frustration",
        json!({ "upset": v }),
        json!({ "upset_at_least": 0.9 }),
    )
}

fn record(
    id: &str,
    reasons: Vec<EscalationReason>,
    marks: &[(&str, MarkKind)],
) -> ConversationRecord {
    let now = Utc::now();
    let mut r: ConversationRecord = serde_json::from_value(json!({
        "id": id, "customer": "c", "channel": "rest", "channel_user": id, "status": "closed",
        "assigned_agent": null, "queue": "angry", "priority": 0, "message_count": 4,
        "sentiment_trajectory": [], "slots": {}, "pending": null, "offered_human": false,
        "unresolved_turns": 0, "escalation": reasons, "queued_since": null,
        "created": now, "updated": now, "last_customer_at": now, "last_agent_at": null
    }))
    .unwrap();
    r.feedback = marks
        .iter()
        .map(|(by, kind)| Mark {
            by: by.to_string(),
            at: now,
            mark: *kind,
            reason: None,
            escalation: r.escalation.clone(),
            message: None,
            intent: None,
        })
        .collect();
    r
}

/// Customer messages: a routine one, one read upset 0.93 (frustrated 0.6 + angry 0.33).
fn transcript(text: &str) -> Vec<StoredMessage> {
    vec![
        customer("where is order 12345", 0.9, 0.08, 0.02, 0.1),
        bot("It left our warehouse on Monday."),
        customer(text, 0.07, 0.6, 0.33, 0.8),
    ]
}

#[test]
fn the_message_that_fired_a_tone_rule_is_exported_and_nothing_else() {
    let r = record("a", vec![upset_rule(0.93)], &[("ana", MarkKind::NotNeeded)]);
    let l = line(&r, &transcript("still nothing, third time asking")).unwrap();
    assert_eq!(l.verdict, Some(Verdict::NotNeeded));
    assert_eq!(l.fired.len(), 1);
    let m = &l.fired[0].messages;
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(
        (m[0].index, m[0].text.as_str()),
        (2, "still nothing, third time asking")
    );
    // the line reads back as written
    let back: FeedbackLine = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
    assert_eq!(back, l);
    // no marks: no line
    assert!(line(&record("b", vec![upset_rule(0.93)], &[]), &transcript("x")).is_none());
}

#[test]
fn each_mark_teaches_only_what_the_table_says() {
    let person = reason(
        "asked for a person",
        "human_request",
        json!("contact_human_agent"),
        json!(null),
    );
    let negative = reason(
        "very negative message",
        "negative_message",
        json!(0.8),
        json!(0.75),
    );
    let lines: Vec<FeedbackLine> = [
        // not needed: the upset message is calm for the frustration head
        (
            record("a", vec![upset_rule(0.93)], &[("ana", MarkKind::NotNeeded)]),
            "calm one",
        ),
        // needed, tone alone: frustrated (the head read frustrated above angry)
        (
            record("b", vec![upset_rule(0.93)], &[("ana", MarkKind::Needed)]),
            "upset one",
        ),
        // needed, but a request for a person fired too: teaches nothing
        (
            record(
                "c",
                vec![upset_rule(0.93), person],
                &[("ana", MarkKind::Needed)],
            ),
            "asked for a person too",
        ),
        // the agents disagree: teaches nothing
        (
            record(
                "d",
                vec![upset_rule(0.93)],
                &[("ana", MarkKind::Needed), ("ben", MarkKind::NotNeeded)],
            ),
            "disputed one",
        ),
        // the same words as "a", marked the other way: both dropped
        (
            record("e", vec![upset_rule(0.93)], &[("ben", MarkKind::Needed)]),
            "CALM ONE",
        ),
        // sentiment rule, not needed: neutral for the sentiment head only
        (
            record("f", vec![negative.clone()], &[("ana", MarkKind::NotNeeded)]),
            "grumpy words",
        ),
        // needed, two tone rules of two heads: each head learns its own message
        (
            record(
                "g",
                vec![upset_rule(0.93), negative],
                &[("ana", MarkKind::Needed)],
            ),
            "tone both",
        ),
    ]
    .iter()
    .map(|(r, text)| line(r, &transcript(text)).unwrap())
    .collect();

    let frustration = head_examples(&lines, TextTask::Frustration);
    let got: Vec<(&str, &str)> = frustration
        .iter()
        .map(|e| (e.text.as_str(), e.label))
        .collect();
    assert_eq!(
        got,
        [("tone both", "frustrated"), ("upset one", "frustrated")]
    );
    assert_eq!(frustration[1].threshold, 0.9);
    assert!((frustration[1].read_then - 0.93).abs() < 1e-6);
    // the decision the agents asked for: fire (needed) at upset >= 0.9
    assert!(frustration[1].as_marked(&[0.05, 0.9, 0.05]));
    assert!(!frustration[1].as_marked(&[0.5, 0.3, 0.2]));

    let sentiment = head_examples(&lines, TextTask::Sentiment);
    let got: Vec<(&str, &str)> = sentiment
        .iter()
        .map(|e| (e.text.as_str(), e.label))
        .collect();
    assert_eq!(
        got,
        [("grumpy words", "neutral"), ("tone both", "negative")]
    );
    // not needed: the retrained head should read it below 0.75 negative
    assert!(sentiment[0].as_marked(&[0.6, 0.3, 0.1]));
    assert!(!sentiment[0].as_marked(&[0.8, 0.1, 0.1]));
    assert!(head_examples(&lines, TextTask::Anger).is_empty());

    // without the conflicting "CALM ONE", "calm one" teaches calm
    let kept = head_examples(&lines[..4], TextTask::Frustration);
    assert!(kept
        .iter()
        .any(|e| e.text == "calm one" && e.label == "calm"));
    let file = tsv(&kept);
    assert!(file.starts_with("label\ttext\n"));
    assert!(file.contains("calm\tcalm one\n"), "{file}");
}

#[test]
fn an_angry_reading_needed_teaches_angry() {
    let angry = reason(
        "angry message",
        "message_frustration",
        json!({ "angry": 0.33 }),
        json!({ "angry_at_least": 0.3 }),
    );
    let l = line(
        &record("a", vec![angry], &[("ana", MarkKind::Needed)]),
        &transcript("line one\tand\nline two"),
    )
    .unwrap();
    let e = head_examples(&[l], TextTask::Frustration);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].label, "angry");
    // one line in the file, whatever the customer typed
    assert_eq!(tsv(&e), "label\ttext\nangry\tline one and line two\n");
}
