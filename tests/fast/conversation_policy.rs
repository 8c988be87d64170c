//! Escalation rules as a support lead writes them: which turns go to which queue, with
//! which priority and recorded reasons, and which rule files are refused and why.

use frontdesk::nlu::{Analysis, Sentiment, SentimentScores};
use frontdesk::policy::{decide, Effect, Rules, Situation};
use std::path::Path;

fn shipped_rules() -> Rules {
    Rules::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules.toml")).unwrap()
}

fn analysis(text: &str, intent: &str, negative: f32, anger: f32) -> Analysis {
    let scores = SentimentScores {
        negative,
        neutral: (1.0 - negative) * 0.8,
        positive: (1.0 - negative) * 0.2,
    };
    Analysis {
        text: text.into(),
        intent: intent.into(),
        intent_confidence: 0.9,
        sentiment: if negative > 0.5 {
            Sentiment::Negative
        } else {
            Sentiment::Neutral
        },
        sentiment_scores: scores,
        anger,
        frustration: Default::default(),
        entities: vec![],
    }
}

fn situation<'a>(a: &'a Analysis, history: &'a [f32]) -> Situation<'a> {
    Situation {
        analysis: a,
        intent: &a.intent,
        negative_history: history,
        tier: None,
        lifetime_value: None,
        order_value: None,
        unresolved_turns: 0,
    }
}

fn parse(text: &str) -> Result<Rules, String> {
    Rules::parse(text, Path::new("test-rules.toml")).map_err(|e| e.to_string())
}

const QUEUES: &str = "[queues.angry]\nsla_secs = 60\n[queues.general]\nsla_secs = 300\n";

#[test]
fn calm_routine_question_stays_with_the_bot() {
    let a = analysis("where is my order", "track_order", 0.1, 0.02);
    assert_eq!(decide(&shipped_rules(), &situation(&a, &[0.1])), None);
}

#[test]
fn angry_message_goes_to_the_angry_queue_with_its_value() {
    let a = analysis(
        "this is a joke, where is my stuff",
        "track_order",
        0.7,
        0.86,
    );
    let e = decide(&shipped_rules(), &situation(&a, &[0.7])).expect("escalates");
    assert_eq!(e.queue, "angry");
    let anger = e
        .reasons
        .iter()
        .find(|r| r.rule == "angry and negative message")
        .unwrap();
    assert_eq!(anger.value.as_f64(), Some(0.86));
    assert_eq!(anger.threshold.as_f64(), Some(0.8));
}

#[test]
fn growing_frustration_over_turns_escalates_though_no_single_message_does() {
    let a = analysis("still nothing", "track_order", 0.75, 0.3);
    let calm_before = [0.1, 0.2, 0.75];
    assert_eq!(decide(&shipped_rules(), &situation(&a, &calm_before)), None);
    let sour = [0.72, 0.8, 0.75];
    let e = decide(&shipped_rules(), &situation(&a, &sour)).expect("escalates");
    assert_eq!(e.reasons[0].rule, "growing frustration");
    assert_eq!(e.reasons[0].when, "negative_trend");
}

#[test]
fn lawyer_keyword_goes_to_priority_even_when_calm() {
    let a = analysis("My Lawyer will hear about this", "complaint", 0.3, 0.1);
    let e = decide(&shipped_rules(), &situation(&a, &[0.3])).unwrap();
    assert_eq!((e.queue.as_str(), e.priority), ("priority", 90));
    assert_eq!(e.reasons[0].value, serde_json::json!("lawyer"));
    // Whole words only: "sued" does not match "sue", "lawyers" does not match "lawyer".
    let b = analysis("pseudo lawyers", "complaint", 0.1, 0.0);
    assert_eq!(decide(&shipped_rules(), &situation(&b, &[0.1])), None);
}

#[test]
fn vip_boost_raises_priority_only_when_escalating() {
    let rules = shipped_rules();
    let calm = analysis("where is my order", "track_order", 0.1, 0.0);
    let mut s = situation(&calm, &[0.1]);
    s.tier = Some("VIP");
    assert_eq!(
        decide(&rules, &s),
        None,
        "a calm VIP question is answered by the bot"
    );
    let angry = analysis("furious!!!", "complaint", 0.95, 0.95);
    let mut s = situation(&angry, &[0.95]);
    s.tier = Some("vip");
    let vip = decide(&rules, &s).unwrap();
    s.tier = Some("standard");
    let standard = decide(&rules, &s).unwrap();
    assert!(vip.priority > standard.priority);
    assert!(vip
        .reasons
        .iter()
        .any(|r| r.rule == "vip customer" && r.effect == Effect::Boost));
}

#[test]
fn explicit_request_and_repeated_failure_escalate_and_order_value_boosts() {
    let rules = shipped_rules();
    let a = analysis("refund order 10007", "get_refund", 0.2, 0.0);
    let mut s = situation(&a, &[0.2]);
    s.order_value = Some(1298.0);
    assert_eq!(
        decide(&rules, &s),
        None,
        "an expensive order alone stays with the bot"
    );

    let h = analysis("let me talk to someone", "contact_human_agent", 0.2, 0.0);
    let plain = decide(&rules, &situation(&h, &[0.2])).unwrap();
    assert_eq!(plain.queue, "general");
    let mut s = situation(&h, &[0.2]);
    s.order_value = Some(1298.0);
    let valuable = decide(&rules, &s).unwrap();
    assert_eq!(valuable.queue, "general");
    assert!(
        valuable.priority > plain.priority,
        "the expensive order goes first"
    );
    assert!(valuable
        .reasons
        .iter()
        .any(|r| r.rule == "high-value order"));

    let o = analysis("tell me a joke", "out_of_scope", 0.1, 0.0);
    let mut s = situation(&o, &[0.1]);
    s.unresolved_turns = 2;
    assert_eq!(decide(&rules, &s), None);
    s.unresolved_turns = 3;
    let e = decide(&rules, &s).unwrap();
    assert_eq!(e.reasons[0].rule, "bot could not help");
}

#[test]
fn rule_naming_an_undeclared_queue_is_refused() {
    let e = parse(&format!(
        "{QUEUES}[[rules]]\nname = \"x\"\nwhen = \"anger\"\nat_least = 0.8\nqueue = \"furious\"\npriority = 1\n"
    ))
    .unwrap_err();
    assert!(e.contains("rules[0].queue") && e.contains("furious"), "{e}");
}

#[test]
fn probability_out_of_range_is_refused_with_its_key() {
    let e = parse(&format!(
        "{QUEUES}[[rules]]\nname = \"x\"\nwhen = \"negative_message\"\nat_least = 1.5\nqueue = \"angry\"\npriority = 1\n"
    ))
    .unwrap_err();
    assert!(
        e.contains("rules[0].at_least") && e.contains("between 0 and 1"),
        "{e}"
    );
}

#[test]
fn missing_and_misplaced_fields_are_refused() {
    let missing = parse(&format!(
        "{QUEUES}[[rules]]\nname = \"x\"\nwhen = \"negative_trend\"\nat_least = 0.5\nqueue = \"angry\"\npriority = 1\n"
    ))
    .unwrap_err();
    assert!(
        missing.contains("rules[0].window") && missing.contains("required"),
        "{missing}"
    );
    let misplaced = parse(&format!(
        "{QUEUES}[[rules]]\nname = \"x\"\nwhen = \"tier\"\ntiers = [\"vip\"]\nwords = [\"a\"]\nqueue = \"angry\"\npriority = 1\n"
    ))
    .unwrap_err();
    assert!(misplaced.contains("rules[0].words"), "{misplaced}");
    let unknown = parse(&format!(
        "{QUEUES}[[rules]]\nname = \"x\"\nwhen = \"moon_phase\"\nqueue = \"angry\"\npriority = 1\n"
    ))
    .unwrap_err();
    assert!(
        unknown.contains("rules[0].when") && unknown.contains("moon_phase"),
        "{unknown}"
    );
    let typo = parse(&format!(
        "{QUEUES}[[rules]]\nname = \"x\"\nwhen = \"anger\"\nat_lest = 0.5\nqueue = \"angry\"\npriority = 1\n"
    ))
    .unwrap_err();
    assert!(typo.contains("at_lest"), "{typo}");
}

#[test]
fn shipped_rules_file_is_valid() {
    let rules = shipped_rules();
    assert!(rules.queues.contains_key("angry"));
    assert!(rules.rules.len() >= 8);
}

#[test]
fn high_anger_score_on_a_calm_request_stays_with_the_bot() {
    // The anger head has no neutral class: a plain cancellation can score 0.9 on anger.
    let a = analysis("I want to cancel order 10009", "cancel_order", 0.3, 0.9);
    assert_eq!(decide(&shipped_rules(), &situation(&a, &[0.3])), None);
    let e = parse(&format!(
        "{QUEUES}[[rules]]\nname = \"x\"\nwhen = \"anger\"\nat_least = 0.8\nnegative_at_least = 2\nqueue = \"angry\"\npriority = 1\n"
    ))
    .unwrap_err();
    assert!(e.contains("rules[0].negative_at_least"), "{e}");
}
