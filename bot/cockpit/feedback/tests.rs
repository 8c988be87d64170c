//! The cockpit's figures from marks, on a small case computed by hand.

use super::*;
use serde_json::{json, Value};

const UPSET: &str = "frustrated message (frustration head)";
const PERSON: &str = "asked for a person";

fn reason(rule: &str, when: &str, value: Value) -> EscalationReason {
    serde_json::from_value(json!({
        "rule": rule, "when": when, "value": value, "threshold": null,
        "effect": "escalate", "priority": 10
    }))
    .unwrap()
}

fn upset(p: f64) -> EscalationReason {
    reason(UPSET, "message_frustration", json!({ "upset": p }))
}

fn person() -> EscalationReason {
    reason(PERSON, "human_request", json!("contact_human_agent"))
}

fn mark(by: &str, kind: MarkKind, escalation: &[EscalationReason]) -> Mark {
    Mark {
        by: by.into(),
        at: Utc::now(),
        mark: kind,
        reason: None,
        escalation: escalation.to_vec(),
        message: None,
        intent: None,
    }
}

fn wrong(by: &str, message: u64, intent: &str) -> Mark {
    Mark {
        message: Some(message),
        intent: Some(intent.into()),
        ..mark(by, MarkKind::WrongAnswer, &[])
    }
}

/// A conversation begun on `day` (2026-11-`day`) with these reasons and marks.
fn conversation(
    id: &str,
    day: u32,
    escalation: &[EscalationReason],
    marks: Vec<Mark>,
) -> ConversationRecord {
    let created = NaiveDate::from_ymd_opt(2026, 11, day)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc();
    let mut r: ConversationRecord = serde_json::from_value(json!({
        "id": id, "customer": "c", "channel": "rest", "channel_user": id, "status": "closed",
        "assigned_agent": null, "queue": "angry", "priority": 0, "message_count": 4,
        "sentiment_trajectory": [], "slots": {}, "pending": null, "offered_human": false,
        "unresolved_turns": 0, "escalation": escalation, "queued_since": null,
        "created": created, "updated": created, "last_customer_at": created,
        "last_agent_at": null
    }))
    .unwrap();
    r.feedback = marks;
    r
}

use MarkKind::{Needed, NotNeeded};

/// Week 2026-W48 (23-29 Nov) and W49: six conversations, computed by hand below.
fn history() -> Vec<ConversationRecord> {
    let a = [upset(0.93), person()];
    vec![
        // W48: both rules fired; ana says needed, ben says not
        conversation(
            "a",
            24,
            &a,
            vec![mark("ana", Needed, &a), mark("ben", NotNeeded, &a)],
        ),
        conversation(
            "b",
            25,
            &[upset(0.55)],
            vec![mark("ana", NotNeeded, &[upset(0.55)])],
        ),
        // W49: the rule fired twice; its highest value (0.99) counts, once
        conversation(
            "c",
            30,
            &[upset(0.91), upset(0.99)],
            vec![mark("ben", Needed, &[upset(0.91), upset(0.99)])],
        ),
        conversation("d", 30, &[person()], vec![]),
        conversation("e", 30, &[person()], vec![mark("lee", Needed, &[person()])]),
        // two agents mark the same answer wrong: one answer
        conversation(
            "f",
            30,
            &[],
            vec![
                wrong("ana", 1, "track_order"),
                wrong("ben", 1, "track_order"),
                wrong("ana", 3, "get_refund"),
            ],
        ),
    ]
}

#[test]
fn precision_per_rule_week_and_threshold_as_computed_by_hand() {
    let since = Utc::now() - Duration::days(90);
    let r = report(&history(), since, false);
    assert_eq!(
        (r.conversations, r.escalation_marks, r.marked_conversations),
        (6, 5, 4)
    );

    // the upset rule: needed a(ana), c(ben); not needed a(ben), b(ana): 2 / 4
    let up = r.rules.iter().find(|x| x.rule == UPSET).unwrap();
    assert_eq!((up.tally.needed, up.tally.not_needed), (2, 2));
    assert_eq!(up.tally.precision, Some(0.5));
    assert_eq!(up.when, "message_frustration");
    assert_eq!(up.effect, "escalate");
    // W48: a(ana) needed, a(ben) and b not needed: 1/3; W49: c needed: 1/1
    let weeks: Vec<(&str, usize, usize)> = up
        .weeks
        .iter()
        .map(|w| (w.week.as_str(), w.tally.needed, w.tally.not_needed))
        .collect();
    assert_eq!(weeks, [("2026-W48", 1, 2), ("2026-W49", 1, 0)]);
    assert_eq!(
        up.weeks[0].starts,
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    );
    // 0.55 → 0.5–0.6: 0/1; 0.93, 0.93, 0.99 → 0.9–1.0: 2 needed, 1 not
    let b: Vec<(f64, usize, usize)> = up
        .buckets
        .iter()
        .map(|b| (b.from, b.tally.needed, b.tally.not_needed))
        .collect();
    assert_eq!(b, [(0.5, 0, 1), (0.9, 2, 1)]);
    // a threshold at 0.5 keeps all four (2/4); at 0.9 it keeps 2 of 3
    assert_eq!(up.buckets[0].at_threshold.precision, Some(0.5));
    let at_09 = up.buckets[1].at_threshold;
    assert_eq!((at_09.needed, at_09.not_needed), (2, 1));
    assert!((at_09.precision.unwrap() - 2.0 / 3.0).abs() < 1e-9);

    // the person rule: a(ana), e(lee) needed, a(ben) not: 2/3; no value to bucket
    let p = r.rules.iter().find(|x| x.rule == PERSON).unwrap();
    assert_eq!((p.tally.needed, p.tally.not_needed), (2, 1));
    assert!(p.buckets.is_empty());
    // most marks first
    assert_eq!(r.rules[0].rule, UPSET);

    // wrong answers: track_order's answer once (two agents), get_refund's once
    assert_eq!(r.wrong_answers, 2);
    let per: Vec<(&str, usize)> = r
        .wrong_answers_per_intent
        .iter()
        .map(|c| (c.intent.as_str(), c.answers))
        .collect();
    assert_eq!(per, [("get_refund", 1), ("track_order", 1)]);
}

#[test]
fn a_changed_mark_moves_the_precision() {
    let since = Utc::now() - Duration::days(90);
    let mut h = history();
    let before = report(&h, since, false);
    // ben changes his mind on "a": his mark replaced, the rules' precision goes up
    h[0].feedback[1].mark = Needed;
    let after = report(&h, since, false);
    let p = |r: &FeedbackReport, rule: &str| {
        r.rules
            .iter()
            .find(|x| x.rule == rule)
            .unwrap()
            .tally
            .precision
            .unwrap()
    };
    assert_eq!(p(&before, UPSET), 0.5);
    assert_eq!(p(&after, UPSET), 0.75);
    assert_eq!(p(&after, PERSON), 1.0);
}

#[test]
fn a_conversation_is_labelled_by_its_agents_agreement() {
    let h = history();
    assert_eq!(verdict(&h[0]), Some(Verdict::Disputed));
    assert_eq!(verdict(&h[1]), Some(Verdict::NotNeeded));
    assert_eq!(verdict(&h[2]), Some(Verdict::Needed));
    assert_eq!(verdict(&h[3]), None);
    // wrong answers say nothing of the escalation
    assert_eq!(verdict(&h[5]), None);
}

#[test]
fn only_probabilities_are_bucketed() {
    assert_eq!(observed_probability(&upset(0.93)), Some(0.93));
    let stakes = reason(
        "safety",
        "stakes",
        json!({"kind": "safety", "confidence": 0.7}),
    );
    assert_eq!(observed_probability(&stakes), Some(0.7));
    assert_eq!(
        observed_probability(&reason("n", "negative_message", json!(0.95))),
        Some(0.95)
    );
    assert_eq!(observed_probability(&person()), None);
    assert_eq!(
        observed_probability(&reason("ltv", "lifetime_value", json!(0.5))),
        None
    );
}

#[test]
fn windows_are_days_hours_or_weeks() {
    let now = Utc::now();
    assert_eq!(parse_since("30d", now).unwrap(), now - Duration::days(30));
    assert_eq!(parse_since("12h", now).unwrap(), now - Duration::hours(12));
    assert_eq!(parse_since(" 2w ", now).unwrap(), now - Duration::days(14));
    for bad in ["", "d", "30", "0d", "-3d", "30x", "99999999d", "3é"] {
        assert!(parse_since(bad, now).is_err(), "{bad}");
    }
}
