use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::nlu::Analysis;
use crate::policy::{Effect, EscalationReason};

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::minutes(minute)
}

fn analysis(text: &str, intent: &str) -> Analysis {
    Analysis {
        text: text.into(),
        intent: intent.into(),
        intent_confidence: 0.9,
        sentiment: crate::nlu::Sentiment::Neutral,
        sentiment_scores: Default::default(),
        anger: 0.0,
        frustration: Default::default(),
        stakes: Default::default(),
        entities: Vec::new(),
    }
}

fn customer(minute: i64, text: &str, intent: &str) -> StoredMessage {
    StoredMessage {
        from: Speaker::Customer,
        text: text.into(),
        time: at(minute),
        analysis: Some(analysis(text, intent)),
    }
}

fn said(minute: i64, from: Speaker, text: &str) -> StoredMessage {
    StoredMessage {
        from,
        text: text.into(),
        time: at(minute),
        analysis: None,
    }
}

fn kinds(found: &[Unanswered], text: &str) -> Vec<Failure> {
    found
        .iter()
        .find(|u| u.text == text)
        .map(|u| u.kinds.iter().copied().collect())
        .unwrap_or_default()
}

const FOLDER_ANSWER: &str = "Sorry, I only do orders here.";

#[test]
fn out_of_scope_messages_the_help_centre_did_not_answer_are_unanswered() {
    let replies = Replies::new(Some(FOLDER_ANSWER.into()), false);
    let messages = vec![
        customer(0, "do you sell gift cards", OUT_OF_SCOPE),
        said(0, Speaker::Bot, FOLDER_ANSWER),
        customer(1, "how long is a gift card valid", OUT_OF_SCOPE),
        said(
            1,
            Speaker::Bot,
            "From our help centre — Gift cards: valid 3 years.",
        ),
        customer(2, "10234", OUT_OF_SCOPE),
        said(2, Speaker::Bot, "Order 10234 is shipped."),
        customer(3, "when do you open on sunday", OUT_OF_SCOPE),
        said(3, Speaker::Bot, &copy::out_of_scope()),
        customer(4, "where is my order", "track_order"),
        said(4, Speaker::Bot, "Happy to check. What's your order number?"),
    ];
    let found = unanswered_in(&messages, &[], None, &replies, at(0));
    let texts: Vec<&str> = found.iter().map(|u| u.text.as_str()).collect();
    assert_eq!(
        texts,
        ["do you sell gift cards", "when do you open on sunday"]
    );
    assert_eq!(
        kinds(&found, "do you sell gift cards"),
        [Failure::OutOfScope]
    );
    // Only what was written since the window opened.
    let later = unanswered_in(&messages, &[], None, &replies, at(2));
    assert_eq!(later.len(), 1);
}

#[test]
fn declined_by_the_llm_tells_apart_from_its_answers() {
    let replies = Replies::new(None, true);
    let messages = vec![
        customer(0, "can I pay with crypto", OUT_OF_SCOPE),
        said(0, Speaker::Bot, &copy::llm_handoff()),
        customer(1, "do you ship to the moon", OUT_OF_SCOPE),
        said(1, Speaker::Bot, &copy::out_of_scope()),
        customer(2, "is the blue sofa vegan leather", OUT_OF_SCOPE),
        said(
            2,
            Speaker::Bot,
            "Yes: the blue sofa is covered in vegan leather.",
        ),
    ];
    let found = unanswered_in(&messages, &[], None, &replies, at(0));
    assert_eq!(
        kinds(&found, "can I pay with crypto"),
        [Failure::LlmDeclined]
    );
    assert_eq!(
        kinds(&found, "do you ship to the moon"),
        [Failure::OutOfScope, Failure::LlmDeclined],
        "below the gate, or no usable answer: the model did not answer it"
    );
    assert!(
        kinds(&found, "is the blue sofa vegan leather").is_empty(),
        "the model answered it"
    );
}

#[test]
fn a_conversation_escalated_for_repeated_failure_keeps_its_failing_run() {
    let reason = EscalationReason {
        rule: "bot could not help".into(),
        when: REPEATED_FAILURE.into(),
        value: json!(2),
        threshold: json!(2),
        effect: Effect::Escalate,
        priority: 20,
        details: Vec::new(),
    };
    let messages = vec![
        customer(0, "hi", "greet"),
        said(0, Speaker::Bot, "Hello!"),
        customer(1, "my voucher code fails", "payment_issue"),
        said(1, Speaker::Bot, "Sorry about that."),
        customer(2, "the code SPRING fails at checkout", "payment_issue"),
        said(2, Speaker::Bot, &copy::queued(1)),
        customer(3, "hello??", OUT_OF_SCOPE),
        said(3, Speaker::Bot, &copy::still_waiting(1)),
        said(4, Speaker::Agent("ana".into()), "Hi, Ana here."),
        customer(5, "thanks Ana", "thanks"),
    ];
    let replies = Replies::new(None, false);
    let found = unanswered_in(&messages, &[reason], Some(at(2)), &replies, at(0));
    let texts: Vec<&str> = found.iter().map(|u| u.text.as_str()).collect();
    assert_eq!(
        texts,
        ["my voucher code fails", "the code SPRING fails at checkout"]
    );
    assert!(found
        .iter()
        .all(|u| u.kinds == BTreeSet::from([Failure::RepeatedFailure])));
    assert!(unanswered_in(&messages, &[], None, &replies, at(0)).is_empty());
}

#[test]
fn the_help_centre_reply_is_recognised_by_its_opening() {
    let hit = crate::kb::Hit {
        article: "gift-cards".into(),
        title: "Gift cards".into(),
        url: "u".into(),
        section: String::new(),
        passage: "p".into(),
        score: 1.0,
    };
    assert!(hit.answer_text().starts_with(HELP_CENTRE_REPLY));
}

/// Three tight groups far apart (axes 0, 1, 2; spread on axes 3, 4) and one stray message.
fn fixture() -> (Vec<Unanswered>, HashMap<String, Vec<f32>>) {
    let v = |axis: usize, spread: &[(usize, f32)]| {
        let mut v = vec![0f32; 6];
        v[axis] = 1.0;
        for &(a, x) in spread {
            v[a] = x;
        }
        v
    };
    let rows: Vec<(&str, Vec<f32>, i64, Failure)> = vec![
        ("Do you sell gift cards?", v(0, &[]), 1, Failure::OutOfScope),
        (
            "do you  sell GIFT cards?",
            v(0, &[]),
            9,
            Failure::OutOfScope,
        ),
        (
            "gift card for my mum",
            v(0, &[(3, 0.3)]),
            2,
            Failure::OutOfScope,
        ),
        (
            "a gift voucher please",
            v(0, &[(3, -0.3)]),
            3,
            Failure::LlmDeclined,
        ),
        (
            "can I buy a gift card",
            v(0, &[(4, 0.3)]),
            4,
            Failure::OutOfScope,
        ),
        ("when do you open", v(1, &[]), 5, Failure::OutOfScope),
        (
            "opening hours on sunday",
            v(1, &[(3, 0.3)]),
            6,
            Failure::OutOfScope,
        ),
        (
            "are you open at 8",
            v(1, &[(4, -0.3)]),
            12,
            Failure::RepeatedFailure,
        ),
        ("how many loyalty points", v(2, &[]), 7, Failure::OutOfScope),
        (
            "my points balance",
            v(2, &[(4, 0.3)]),
            8,
            Failure::OutOfScope,
        ),
        ("write me a poem", v(5, &[]), 10, Failure::OutOfScope),
    ];
    let mut vectors = HashMap::new();
    let messages = rows
        .into_iter()
        .map(|(text, vector, minute, kind)| {
            let wording = text.split_whitespace().collect::<Vec<_>>().join(" ");
            vectors.insert(wording, vector);
            Unanswered {
                text: text.into(),
                time: at(minute),
                kinds: BTreeSet::from([kind]),
            }
        })
        .collect();
    (messages, vectors)
}

/// The embedding step as a lookup of known vectors.
fn grouped(messages: &[Unanswered], vectors: &HashMap<String, Vec<f32>>) -> Vec<Group> {
    let items = distinct(messages);
    let v: Vec<Vec<f32>> = items.iter().map(|d| vectors[&d.text].clone()).collect();
    group(&items, &v, SIMILAR)
}

#[test]
fn three_known_groups_come_out_largest_first_with_counts_and_central_examples() {
    let (messages, vectors) = fixture();
    let groups = grouped(&messages, &vectors);
    let counts: Vec<usize> = groups.iter().map(|g| g.count).collect();
    assert_eq!(counts, [5, 3, 2, 1], "{groups:#?}");
    let gifts = &groups[0];
    // The near-duplicate counts in the count but shows once; its newest wording, folded.
    assert_eq!(gifts.examples.len(), 4);
    assert_eq!(
        gifts.examples[0], "do you sell GIFT cards?",
        "most central first"
    );
    assert_eq!(gifts.examples[1], "can I buy a gift card");
    assert_eq!(gifts.kinds, [Failure::OutOfScope, Failure::LlmDeclined]);
    assert_eq!(gifts.last_seen, at(9));
    let hours: BTreeSet<&str> = groups[1].texts.iter().map(String::as_str).collect();
    assert_eq!(
        hours,
        BTreeSet::from([
            "when do you open",
            "opening hours on sunday",
            "are you open at 8"
        ])
    );
    assert_eq!(
        groups[1].kinds,
        [Failure::OutOfScope, Failure::RepeatedFailure]
    );
    assert_eq!(groups[2].texts.len(), 2);
    assert_eq!(groups[3].examples, ["write me a poem"]);
}

#[test]
fn the_same_messages_in_another_order_give_the_same_groups_and_ids() {
    let (mut messages, vectors) = fixture();
    let first = grouped(&messages, &vectors);
    messages.reverse();
    let again = grouped(&messages, &vectors);
    assert_eq!(first, again);
    let ids: BTreeSet<&str> = first.iter().map(|g| g.id.as_str()).collect();
    assert_eq!(ids.len(), first.len(), "one id per group");
    // One more message in a group is another group: another id.
    messages.push(Unanswered {
        text: "gift card".into(),
        time: at(20),
        kinds: BTreeSet::from([Failure::OutOfScope]),
    });
    let mut vectors = vectors;
    vectors.insert("gift card".into(), vec![1.0, 0.0, 0.0, 0.1, 0.0, 0.0]);
    let grown = grouped(&messages, &vectors);
    assert_eq!(grown[0].count, 6);
    assert_ne!(grown[0].id, first[0].id);
    assert_eq!(grown[1].id, first[1].id);
}

#[test]
fn nothing_unanswered_is_no_group() {
    assert!(group(&[], &[], SIMILAR).is_empty());
}

/// The bound's worst case: [`MAX_MESSAGES`] different texts of 384 values on 40 subjects.
/// `cargo test --release -p frontdesk --lib grouping_the_most_messages -- --ignored --nocapture`
#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn grouping_the_most_messages_read() {
    let mut seed = 7u64;
    let mut noise = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    let subjects: Vec<Vec<f32>> = (0..40)
        .map(|_| (0..384).map(|_| noise()).collect())
        .collect();
    let items: Vec<Distinct> = (0..MAX_MESSAGES)
        .map(|i| Distinct {
            key: format!("text {i:05}"),
            text: format!("text {i:05}"),
            count: 1,
            last_seen: at(0),
            kinds: BTreeSet::from([Failure::OutOfScope]),
        })
        .collect();
    let vectors: Vec<Vec<f32>> = (0..MAX_MESSAGES)
        .map(|i| subjects[i % 40].iter().map(|x| x + 1.2 * noise()).collect())
        .collect();
    let started = std::time::Instant::now();
    let groups = group(&items, &vectors, SIMILAR);
    println!(
        "{} texts grouped into {} groups in {:.2} s",
        items.len(),
        groups.len(),
        started.elapsed().as_secs_f64()
    );
}
