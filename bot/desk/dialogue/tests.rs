use super::*;

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
