use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::cockpit::unanswered::{Failure, Group, EXAMPLES};
use crate::nlu::IntentSet;

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + chrono::Duration::minutes(minute)
}

/// The intents folder's out-of-scope answer.
const FOLDER_ANSWER: &str = "Sorry, I only do orders here.";

fn a_group(texts: &[&str]) -> Group {
    Group {
        id: "abc123".into(),
        count: texts.len() + 1,
        examples: texts.iter().take(EXAMPLES).map(|t| t.to_string()).collect(),
        kinds: vec![Failure::OutOfScope],
        last_seen: at(0),
        texts: texts.iter().map(|t| t.to_string()).collect(),
    }
}

fn new_intent<'a>(name: &'a str, group: &'a Group, more: &'a [String]) -> NewIntent<'a> {
    NewIntent {
        name,
        answer: Some("Gift cards: from 10 to 500 EUR, on the Gift cards page."),
        description: None,
        more_examples: more,
        group,
        fallback: FOLDER_ANSWER,
        author: "ana",
        now: at(0),
    }
}

const GIFTS: &[&str] = &[
    "do you sell gift cards",
    "can I buy a gift card",
    "gift voucher #2 for my mum",
    "a \"gift\" card: how much?",
    "gift cards online?",
];

#[test]
fn a_group_becomes_an_intent_file_the_loader_reads_and_never_replaces_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/intents/greet.yaml"),
        dir.path().join("greet.yaml"),
    )
    .unwrap();
    let group = a_group(GIFTS);
    let yaml = intent_yaml(&new_intent("gift_cards", &group, &[])).unwrap();
    let path = write_intent(dir.path(), "gift_cards", &yaml).unwrap();
    assert_eq!(path, dir.path().join("gift_cards.yaml"));
    let set = IntentSet::load_dir(dir.path()).unwrap();
    let intent = set.get("gift_cards").expect("the new intent loads");
    assert_eq!(intent.examples, GIFTS, "the group's messages, as written");
    assert!(intent.response.text.starts_with("Gift cards: from 10"));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 2, "no partial file left behind");

    let again = intent_yaml(&new_intent("greet", &group, &[])).unwrap();
    assert!(matches!(
        write_intent(dir.path(), "greet", &again),
        Err(DraftError::Exists(_))
    ));
    assert!(std::fs::read_to_string(dir.path().join("greet.yaml"))
        .unwrap()
        .contains("name: greet\n"));
    assert!(!std::fs::read_to_string(dir.path().join("greet.yaml"))
        .unwrap()
        .contains("gift"));
}

#[test]
fn names_and_groups_the_loader_would_refuse_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let group = a_group(GIFTS);
    for name in ["Gift Cards", "../gift_cards", "_gift", "", "gift-cards"] {
        assert!(
            matches!(
                intent_yaml(&new_intent(name, &group, &[])),
                Err(DraftError::Invalid(_))
            ),
            "{name}"
        );
    }
    // A name only the loader knows to refuse.
    let yaml = intent_yaml(&new_intent("out_of_scope", &group, &[])).unwrap();
    let refused = write_intent(dir.path(), "out_of_scope", &yaml).unwrap_err();
    assert!(refused.to_string().contains("reserved"), "{refused}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let small = a_group(&GIFTS[..3]);
    let few = intent_yaml(&new_intent("gift_cards", &small, &[])).unwrap_err();
    assert!(few.to_string().contains("at least 5"), "{few}");
    let more = vec![
        "DO YOU SELL  gift cards".to_string(),
        "e-gift card".into(),
        "gift box".into(),
    ];
    let yaml = intent_yaml(&new_intent("gift_cards", &small, &more)).unwrap();
    assert_eq!(
        yaml.matches("\n  - ").count(),
        5,
        "a repeated example once: {yaml}"
    );
}

#[test]
fn without_an_answer_the_intent_says_what_these_customers_were_told() {
    let group = a_group(GIFTS);
    let mut new = new_intent("gift_cards", &group, &[]);
    new.answer = None;
    let yaml = intent_yaml(&new).unwrap();
    assert!(yaml.contains("# TODO: write the answer"), "{yaml}");
    assert!(
        yaml.contains(&format!("text: \"{FOLDER_ANSWER}\"")),
        "{yaml}"
    );
}

#[test]
fn an_article_draft_lands_beside_the_articles_never_over_one() {
    let kb = tempfile::tempdir().unwrap();
    std::fs::write(kb.path().join("gift-cards.md"), "# Gift cards\n\nText.\n").unwrap();
    let group = a_group(GIFTS);
    let path = write_article(kb.path(), "Gift vouchers!", &group, "ana", at(0)).unwrap();
    assert_eq!(path, kb.path().join("drafts").join("gift-vouchers.md"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("<!-- DRAFT"), "{text}");
    assert!(text.contains("\n# Gift vouchers!\n"), "{text}");
    for q in GIFTS {
        assert!(text.contains(&format!("- {q}\n")), "{q}: {text}");
    }
    assert!(matches!(
        write_article(kb.path(), "Gift vouchers", &group, "ana", at(0)),
        Err(DraftError::Exists(_))
    ));
    assert!(matches!(
        write_article(kb.path(), "Gift cards", &group, "ana", at(0)),
        Err(DraftError::Exists(_))
    ));
    assert!(matches!(
        write_article(kb.path(), "!!!", &group, "ana", at(0)),
        Err(DraftError::Invalid(_))
    ));
}
