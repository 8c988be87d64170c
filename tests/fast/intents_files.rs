//! The shipped `intents/` folder loads, covers the 34 intents the product promises with
//! enough examples, and a broken folder is reported with file and line.

use std::path::Path;

use frontdesk::nlu::EntityKind;
use frontdesk::nlu::{IntentSet, RECOMMENDED_EXAMPLES};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/intents");

const EXPECTED: [&str; 35] = [
    "bot_identity",
    "cancel_order",
    "change_order",
    "change_shipping_address",
    "check_cancellation_fee",
    "check_invoice",
    "check_payment_methods",
    "check_refund_policy",
    "complaint",
    "contact_customer_service",
    "contact_human_agent",
    "create_account",
    "delete_account",
    "delivery_options",
    "delivery_period",
    "edit_account",
    "get_invoice",
    "get_refund",
    "goodbye",
    "greet",
    "newsletter_subscription",
    "payment_issue",
    "place_order",
    "product_availability",
    "recover_password",
    "registration_problems",
    "return_item",
    "review",
    "set_up_shipping_address",
    "switch_account",
    "thanks",
    "threat_to_escalate",
    "track_order",
    "track_refund",
    "warranty",
];

fn shipped() -> IntentSet {
    IntentSet::load_dir(Path::new(SHIPPED)).expect("the shipped intents/ folder is valid")
}

#[test]
fn shipped_intents_are_the_thirty_five_promised() {
    assert_eq!(shipped().names(), EXPECTED);
}

#[test]
fn every_shipped_intent_has_enough_examples_and_an_answer() {
    for intent in &shipped().intents {
        assert!(
            intent.examples.len() >= RECOMMENDED_EXAMPLES,
            "{} has only {} examples",
            intent.name,
            intent.examples.len()
        );
        assert!(
            !intent.description.is_empty(),
            "{} has no description",
            intent.name
        );
        assert!(!intent.response.text.trim().is_empty());
    }
}

#[test]
fn order_lookups_ask_for_the_order_number_first() {
    let set = shipped();
    for (name, action) in [
        ("track_order", "order_status"),
        ("track_refund", "refund_status"),
        ("cancel_order", "cancel_order"),
        ("get_refund", "refund_request"),
    ] {
        let response = &set.get(name).unwrap().response;
        assert_eq!(response.action.as_deref(), Some(action), "{name}");
        assert_eq!(response.slots[0].entity, EntityKind::OrderNumber, "{name}");
        assert!(response.text.contains("{order_number}"), "{name}");
    }
}

#[test]
fn shipped_out_of_scope_examples_offer_a_human() {
    let set = shipped();
    let oos = set
        .out_of_scope
        .as_ref()
        .expect("intents/_out_of_scope.yaml is shipped");
    assert!(oos.examples.len() >= 150, "{}", oos.examples.len());
    assert!(oos.response.text.contains("person"));
    let pairs = set.training_pairs();
    assert!(pairs.len() >= 30 * RECOMMENDED_EXAMPLES);
    assert!(!pairs.iter().any(|(text, _)| oos.examples.contains(text)));
}

#[test]
fn hash_of_the_shipped_set_is_stable_and_follows_edits() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(SHIPPED).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let copy = IntentSet::load_dir(dir.path()).unwrap();
    assert_eq!(copy.hash(), shipped().hash());

    let file = dir.path().join("thanks.yaml");
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("  - cheers\n", "  - cheers pal\n");
    std::fs::write(&file, edited).unwrap();
    assert_ne!(
        IntentSet::load_dir(dir.path()).unwrap().hash(),
        shipped().hash()
    );
}

#[test]
fn broken_intents_folder_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("greet.yaml"),
        "name: greet\nexamples: [hi, hello, hey, yo, howdy]\nresponse:\n  text: Hello!\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("track_order.yaml"),
        "name: track_order\nexamples:\n  - where is my order\n  - track 10234\n  - status of my parcel\n  - has it shipped\n  - where's my package\nresponse:\n  text: \"Order {order_number} is {status}.\"\n  slots:\n    - name: order_number\n      entity: order_id\n      prompt: Which order?\n",
    )
    .unwrap();
    let err = IntentSet::load_dir(dir.path()).expect_err("unknown entity kind must be rejected");
    let message = err.to_string();
    assert!(message.contains("track_order.yaml:12:"), "{message}");
    assert!(
        message.contains("order_id") && message.contains("order_number"),
        "{message}"
    );
}
