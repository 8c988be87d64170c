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
        // the support-domain head hears the negativity too (negative_message needs both)
        frustration: if negative >= 0.5 {
            frontdesk::nlu::FrustrationScores {
                calm: 1.0 - negative,
                frustrated: negative,
                angry: 0.0,
            }
        } else {
            Default::default()
        },
        stakes: Default::default(),
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
        frustration: 0.0,
        frustration_reasons: &[],
        order_units: None,
        awaiting_look_up: false,
        judge: None,
        aimed_elsewhere: false,
        acknowledgement: false,
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
    let mut a = analysis(
        "this is a joke, where is my stuff",
        "track_order",
        0.7,
        0.86,
    );
    a.frustration.angry = 0.93;
    a.frustration.calm = 0.05;
    let e = decide(&shipped_rules(), &situation(&a, &[0.7])).expect("escalates");
    assert_eq!(e.queue, "angry");
    let anger = e
        .reasons
        .iter()
        .find(|r| r.rule == "angry message (frustration head)")
        .unwrap();
    assert!(anger.value.to_string().contains("0.93"), "{anger:?}");
    assert!(anger.threshold.to_string().contains("0.9"), "{anger:?}");
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

fn with_frustration(a: &Analysis, calm: f32, frustrated: f32, angry: f32) -> Analysis {
    let mut a = a.clone();
    a.frustration = frontdesk::nlu::FrustrationScores {
        calm,
        frustrated,
        angry,
    };
    a
}

#[test]
fn souring_conversation_escalates_with_its_frustration_reasons() {
    let a = analysis("where is it, third time asking", "track_order", 0.4, 0.1);
    let reasons = vec!["third time asking".to_string(), "all caps".to_string()];
    let mut s = situation(&a, &[0.4]);
    s.frustration = 0.45;
    s.frustration_reasons = &reasons;
    assert_eq!(
        decide(&shipped_rules(), &s),
        None,
        "a first sign stays with the bot"
    );
    s.frustration = 0.72;
    let e = decide(&shipped_rules(), &s).expect("escalates");
    assert_eq!(e.queue, "angry");
    let r = e.reasons.iter().find(|r| r.when == "frustration").unwrap();
    assert_eq!(r.value.as_f64(), Some(0.72));
    assert_eq!(r.details, reasons, "agents see why");
}

#[test]
fn message_frustration_reads_the_head_angry_or_upset() {
    let rules = parse(&format!(
        "{QUEUES}[[rules]]\nname = \"angry head\"\nwhen = \"message_frustration\"\n\
         angry_at_least = 0.8\nqueue = \"angry\"\npriority = 60\n\
         [[rules]]\nname = \"upset head\"\nwhen = \"message_frustration\"\n\
         upset_at_least = 0.7\nqueue = \"general\"\npriority = 30\n"
    ))
    .unwrap();
    let plain = analysis("where is my order", "track_order", 0.1, 0.0);
    assert_eq!(
        decide(&rules, &situation(&plain, &[0.1])),
        None,
        "calm by default"
    );
    let angry = with_frustration(&plain, 0.05, 0.1, 0.85);
    let e = decide(&rules, &situation(&angry, &[0.1])).unwrap();
    assert_eq!(e.queue, "angry");
    assert_eq!(e.reasons[0].value, serde_json::json!({ "angry": 0.85 }));
    let upset = with_frustration(&plain, 0.2, 0.6, 0.2);
    let e = decide(&rules, &situation(&upset, &[0.1])).unwrap();
    assert_eq!(e.queue, "general");
    assert_eq!(e.reasons[0].rule, "upset head");
}

#[test]
fn high_value_customers_go_to_a_person_on_the_first_negative_signal() {
    let rules = shipped_rules();
    let unhappy = analysis(
        "the lamp arrived broken, a bit disappointing",
        "complaint",
        0.65,
        0.2,
    );
    let mut standard = situation(&unhappy, &[0.65]);
    standard.tier = Some("standard");
    standard.lifetime_value = Some(200.0);
    assert_eq!(decide(&rules, &standard), None, "not yet for everyone");
    for (tier, value) in [("gold", 300.0), ("vip", 9000.0), ("standard", 1450.0)] {
        let mut s = situation(&unhappy, &[0.65]);
        s.tier = Some(tier);
        s.lifetime_value = Some(value);
        let e = decide(&rules, &s).unwrap_or_else(|| panic!("{tier} {value} escalates"));
        assert_eq!(e.queue, "angry");
        assert!(e.priority >= 70, "ahead of others: {e:?}");
        let r = &e.reasons[0];
        assert!(r.rule.starts_with("high-value customer"), "{r:?}");
        assert!(
            r.details
                .iter()
                .any(|d| d.starts_with("tier") || d.starts_with("lifetime value")),
            "{r:?}"
        );
    }
    // the first turn the bot cannot resolve
    let lost = analysis("what's the weather on mars", "out_of_scope", 0.1, 0.0);
    let mut s = situation(&lost, &[0.1]);
    s.unresolved_turns = 1;
    assert_eq!(decide(&rules, &s), None);
    s.tier = Some("vip");
    assert_eq!(decide(&rules, &s).unwrap().queue, "general");
}

#[test]
fn calm_high_value_routine_request_stays_with_the_bot() {
    let rules = shipped_rules();
    let calm = analysis("where is order 10004?", "track_order", 0.05, 0.1);
    let mut s = situation(&calm, &[0.05]);
    s.tier = Some("vip");
    s.lifetime_value = Some(20000.0);
    s.order_value = Some(900.0);
    assert_eq!(decide(&rules, &s), None);
}

#[test]
fn threats_and_every_way_of_asking_for_a_person_escalate() {
    let rules = shipped_rules();
    // the stakes head reads a legal route in the first two, the frustration head upset in
    // the review threat: the shipped threat words check that the message means a threat
    for (text, intent, legal, upset, queue) in [
        (
            "I'll do a chargeback",
            "payment_issue",
            0.9,
            0.3,
            "priority",
        ),
        (
            "opening a PayPal dispute",
            "payment_issue",
            0.9,
            0.3,
            "care",
        ),
        (
            "one star on trustpilot for you",
            "review",
            0.0,
            0.8,
            "priority",
        ),
        (
            "I'll be telling everyone",
            "threat_to_escalate",
            0.0,
            0.3,
            "priority",
        ),
        (
            "get me your manager",
            "contact_human_agent",
            0.0,
            0.0,
            "general",
        ),
        (
            "I'm taking my business elsewhere",
            "complaint",
            0.0,
            0.3,
            "angry",
        ),
    ] {
        let mut a = analysis(text, intent, 0.3, 0.1);
        a.stakes.legal = legal;
        a.stakes.none = 1.0 - legal;
        a.frustration.frustrated = upset;
        a.frustration.calm = 1.0 - upset;
        let e = decide(&rules, &situation(&a, &[0.3])).unwrap_or_else(|| panic!("{text}"));
        assert_eq!(e.queue, queue, "{text}: {e:?}");
    }
    // the same words in another role stay with the bot
    for (text, intent) in [
        (
            "is a chargeback the same as a refund?",
            "check_refund_policy",
        ),
        ("my bank says your payment page timed out", "payment_issue"),
        (
            "do you sell the board game Dispute?",
            "product_availability",
        ),
        (
            "I'm a store manager, do you offer trade prices?",
            "out_of_scope",
        ),
    ] {
        let a = analysis(text, intent, 0.1, 0.0);
        assert_eq!(decide(&rules, &situation(&a, &[0.1])), None, "{text}");
    }
}

#[test]
fn only_for_and_the_new_conditions_are_checked() {
    let only = |table: &str| {
        parse(&format!(
            "{QUEUES}[[rules]]\nname = \"x\"\nwhen = \"intent\"\nintents = [\"complaint\"]\n\
             only_for = {table}\nqueue = \"angry\"\npriority = 1\n"
        ))
    };
    let rules = only("{ tiers = [\"Gold\"] }").unwrap();
    assert_eq!(
        rules.rules[0].only_for.as_ref().unwrap().tiers,
        vec!["gold".to_string()]
    );
    let e = only("{}").unwrap_err();
    assert!(e.contains("rules[0].only_for"), "{e}");
    let e = only("{ tier = [\"gold\"] }").unwrap_err();
    assert!(e.contains("tier"), "{e}");
    let e = parse(&format!(
        "{QUEUES}[[rules]]\nname = \"x\"\nwhen = \"message_frustration\"\nqueue = \"angry\"\npriority = 1\n"
    ))
    .unwrap_err();
    assert!(e.contains("angry_at_least"), "{e}");
    let e = parse(&format!(
        "{QUEUES}[[rules]]\nname = \"x\"\nwhen = \"frustration\"\nat_least = 1.5\nqueue = \"angry\"\npriority = 1\n"
    ))
    .unwrap_err();
    assert!(e.contains("at_least"), "{e}");
    let e = parse(&format!(
        "{QUEUES}[[rules]]\nname = \"x\"\nwhen = \"intent\"\nqueue = \"angry\"\npriority = 1\n"
    ))
    .unwrap_err();
    assert!(e.contains("intents"), "{e}");
}

#[test]
fn a_very_negative_grumble_about_the_customers_day_is_no_complaint_about_us() {
    let a = analysis(
        "my kids are driving me mad today",
        "out_of_scope",
        0.95,
        0.3,
    );
    let mut s = situation(&a, &[0.95]);
    s.aimed_elsewhere = true;
    assert_eq!(decide(&shipped_rules(), &s), None);
    // the same negativity aimed at the shop is
    let b = analysis("your service is driving me mad", "complaint", 0.95, 0.3);
    let e = decide(&shipped_rules(), &situation(&b, &[0.95])).expect("escalates");
    assert!(
        e.reasons.iter().any(|r| r.rule == "very negative message"),
        "{e:?}"
    );
}

#[test]
fn one_clearly_frustrated_message_reaches_a_person_unless_it_takes_the_answer() {
    let mut a = analysis("this is SO frustrating", "out_of_scope", 0.6, 0.3);
    a.frustration.calm = 0.04;
    a.frustration.frustrated = 0.86;
    a.frustration.angry = 0.1;
    let e = decide(&shipped_rules(), &situation(&a, &[0.6])).expect("escalates");
    assert!(
        e.reasons
            .iter()
            .any(|r| r.rule == "frustrated message (frustration head)"),
        "{e:?}"
    );
    // the head hears the problem's words in "ok, so it's just a bit delayed": no complaint
    let mut s = situation(&a, &[0.6]);
    s.acknowledgement = true;
    assert_eq!(decide(&shipped_rules(), &s), None);
    // a little frustration alone stays with the bot
    a.frustration.calm = 0.3;
    a.frustration.frustrated = 0.65;
    a.frustration.angry = 0.05;
    assert_eq!(decide(&shipped_rules(), &situation(&a, &[0.6])), None);
}
