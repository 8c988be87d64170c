use super::*;
use crate::nlu::EntityKind;

#[test]
fn render_fills_slots_and_values() {
    let slots = BTreeMap::from([("order_number".to_string(), "10001".to_string())]);
    let values = BTreeMap::from([
        ("status".to_string(), "on its way".to_string()),
        ("detail".to_string(), "It left on Monday.".to_string()),
    ]);
    assert_eq!(
        render(
            "Order {order_number} is {status}. {detail}",
            &slots,
            &values
        ),
        "Order 10001 is on its way. It left on Monday."
    );
}

#[test]
fn render_drops_unknown_placeholders_cleanly() {
    let none = BTreeMap::new();
    assert_eq!(render("Done {detail}.", &none, &none), "Done.");
}

#[test]
fn short_agreement_is_affirmative() {
    assert!(is_affirmative("yes please"));
    assert!(is_affirmative("Sure!"));
    assert!(!is_affirmative("no thanks"));
    assert!(is_affirmative("ok go ahead"));
    assert!(!is_affirmative("ok cool, thanks"));
    assert!(!is_affirmative("ok got it"));
    assert!(!is_affirmative("ok, I'll wait. Thanks."));
    assert!(!is_affirmative("ok, and is the return free?"));
    assert!(!is_affirmative("ok no worries"));
    // the customer's own next step, not a yes to the offer of a person
    assert!(!is_affirmative("ok, I'll send the emails"));
    assert!(!is_affirmative("okay let me look"));
    assert!(is_affirmative("ok please do"));
    assert!(!is_affirmative("okay, no need"));
}

#[test]
fn questions_about_an_action_are_told_from_requests() {
    assert!(is_question("can I still cancel order 10009?"));
    assert!(is_question("Is it possible to get a refund for 10005"));
    assert!(is_question("could you cancel 10009?"));
    assert!(!is_question("please cancel order 10009"));
    assert!(!is_question("I want a refund for 10005"));
    assert!(!is_question("cancel 10009 now!"));
}

#[test]
fn acknowledgements_are_not_questions() {
    assert!(is_acknowledgement("ok, good to know"));
    assert!(is_acknowledgement("Many thanks, nothing else for now."));
    assert!(is_acknowledgement("fine, I'll wait till thursday then"));
    assert!(!is_acknowledgement("ok but where is my parcel?"));
    assert!(!is_acknowledgement("the courier lost it"));
    assert!(!is_affirmative(
        "yes I do not want that at all, just tell me"
    ));
}

fn with_number(text: &str) -> Analysis {
    let mut entities = Vec::new();
    if let Some(start) = text.find(|c: char| c.is_ascii_digit()) {
        let end = start
            + text[start..]
                .chars()
                .take_while(char::is_ascii_digit)
                .count();
        entities.push(crate::nlu::Entity {
            kind: EntityKind::OrderNumber,
            text: text[start..end].into(),
            value: text[start..end].into(),
            start,
            end,
        });
    }
    Analysis {
        text: text.into(),
        intent: OUT_OF_SCOPE.into(),
        intent_confidence: 0.5,
        sentiment: crate::nlu::Sentiment::Neutral,
        sentiment_scores: crate::nlu::SentimentScores {
            negative: 0.0,
            neutral: 1.0,
            positive: 0.0,
        },
        anger: 0.0,
        frustration: Default::default(),
        stakes: Default::default(),
        entities,
    }
}

#[test]
fn a_bare_order_number_asks_after_the_order() {
    for text in [
        "order 10014",
        "and 10040",
        "#10040?",
        "what about 10041",
        "10042 pls",
    ] {
        assert!(is_bare_order_number(&with_number(text)), "{text}");
    }
    for text in [
        "cancel 10014",
        "10014 arrived broken",
        "my email is wrong on 10014",
        "no number here",
    ] {
        assert!(!is_bare_order_number(&with_number(text)), "{text}");
    }
}
