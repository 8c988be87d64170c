//! Orders are private, and changing one needs a yes (the attacks of "safe in front of real
//! customers"): an anonymous visitor learns nothing about an order, not even whether it
//! exists, and cannot cancel a stranger's order; the bot's check (email or postcode) opens
//! one order only, three wrong answers bring a person; a shop-signed customer sees their own
//! orders; a question does not act; an action is restated, needs a yes, and happens once.

use crate::support::desk::{demo_shop, reply, say, say_verified, TestDesk};
use frontdesk::commerce::{
    Caller, Commerce, CommerceError, DemoShop, Order, OrderState, RequestOutcome, ShopCustomer,
};
use frontdesk::desk::Desk;
use frontdesk::message::Status;
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The demo shop, shared with the test, counting the actions the desk asks of it.
#[derive(Clone)]
struct Watched {
    shop: Arc<DemoShop>,
    actions: Arc<AtomicUsize>,
}

impl Commerce for Watched {
    fn order<'a>(
        &'a self,
        number: &'a str,
        caller: &'a Caller,
    ) -> BoxFuture<'a, Result<Option<Order>, CommerceError>> {
        self.shop.order(number, caller)
    }
    fn customer<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ShopCustomer>, CommerceError>> {
        self.shop.customer(id)
    }
    fn verify_order<'a>(
        &'a self,
        number: &'a str,
        answer: &'a str,
    ) -> BoxFuture<'a, Result<bool, CommerceError>> {
        self.shop.verify_order(number, answer)
    }
    fn request_refund<'a>(
        &'a self,
        number: &'a str,
        caller: &'a Caller,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<RequestOutcome>, CommerceError>> {
        self.actions.fetch_add(1, Ordering::SeqCst);
        self.shop.request_refund(number, caller, key)
    }
    fn cancel_order<'a>(
        &'a self,
        number: &'a str,
        caller: &'a Caller,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<RequestOutcome>, CommerceError>> {
        self.actions.fetch_add(1, Ordering::SeqCst);
        self.shop.cancel_order(number, caller, key)
    }
}

impl Watched {
    fn new() -> Watched {
        Watched {
            shop: Arc::new(demo_shop()),
            actions: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn desk(&self, dir: &std::path::Path) -> Desk {
        TestDesk::new().shop(self.clone()).open(dir)
    }

    fn actions(&self) -> usize {
        self.actions.load(Ordering::SeqCst)
    }

    /// The order as its owner sees it.
    async fn order(&self, number: &str) -> Order {
        let owner = Caller {
            customer_id: None,
            verified_orders: vec![number.into()],
        };
        self.shop.order(number, &owner).await.unwrap().unwrap()
    }
}

// In the demo shop: 10002 (shipped, PostNL) is C1014's (omar.moreau@example.com, who also
// has 10042); 10009 (paid, 2 items, €958.00) is C1025's (jakub.walsh@example.com,
// postcode 1000-001); 10005 (delivered, €1098.00) is C1013's.

#[tokio::test]
async fn an_anonymous_look_up_reveals_nothing_not_even_whether_the_order_exists() {
    let dir = tempfile::tempdir().unwrap();
    let shop = Watched::new();
    let desk = shop.desk(dir.path());
    let theirs = reply(&say(&desk, "x1", "where is my order 10002?").await);
    let shipment = shop.order("10002").await.shipment.unwrap();
    for secret in [
        shipment.carrier.as_str(),
        shipment.tracking_number.as_str(),
        "on its way",
        "shipped",
        "Friday",
        "Thursday",
    ] {
        assert!(!theirs.contains(secret), "{secret} leaked: {theirs}");
    }
    assert!(theirs.contains("email address or the postcode"), "{theirs}");
    let missing = reply(&say(&desk, "x2", "where is my order 99999?").await);
    assert_eq!(
        theirs.replace("10002", "N"),
        missing.replace("99999", "N"),
        "a missing order gets the very same answer"
    );
    // A shop-signed customer asking about someone else's order learns nothing either:
    // the same answer as for a missing order.
    let other = reply(&say_verified(&desk, "x3", "where is my order 10002?", "C1001").await);
    let none = reply(&say_verified(&desk, "x4", "where is my order 99999?", "C1001").await);
    assert!(
        !other.contains(shipment.tracking_number.as_str()),
        "{other}"
    );
    assert_eq!(other.replace("10002", "N"), none.replace("99999", "N"));
}

#[tokio::test]
async fn a_stranger_cannot_cancel_someone_elses_order() {
    let dir = tempfile::tempdir().unwrap();
    let shop = Watched::new();
    let desk = shop.desk(dir.path());
    let turn = say(&desk, "x1", "please cancel order 10009").await;
    assert!(!reply(&turn).contains("958"), "{}", reply(&turn));
    let turn = say(&desk, "x1", "yes").await;
    assert!(!reply(&turn).contains("cancelled it"), "{}", reply(&turn));
    // Another shop customer, signed in, is a stranger to this order too.
    say_verified(&desk, "x2", "please cancel order 10009", "C1001").await;
    say_verified(&desk, "x2", "yes", "C1001").await;
    assert_eq!(shop.actions(), 0, "the shop was never asked to cancel");
    assert_eq!(shop.order("10009").await.state, OrderState::Paid);
}

#[tokio::test]
async fn a_question_about_cancelling_does_not_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let shop = Watched::new();
    let desk = shop.desk(dir.path());
    let turn = say_verified(&desk, "jakub", "can I still cancel order 10009?", "C1025").await;
    let text = reply(&turn);
    assert!(text.contains("can still be cancelled"), "{text}");
    assert!(
        text.contains("Cancel order 10009, 2 items, €958.00? Reply yes or no."),
        "the action is offered, restated: {text}"
    );
    assert_eq!(shop.actions(), 0);
    let turn = say_verified(&desk, "jakub", "no", "C1025").await;
    assert!(
        reply(&turn).contains("haven't cancelled order 10009"),
        "{}",
        reply(&turn)
    );
    // The offer is gone: a late yes does nothing.
    say_verified(&desk, "jakub", "yes", "C1025").await;
    assert_eq!(shop.actions(), 0);
    assert_eq!(shop.order("10009").await.state, OrderState::Paid);
}

#[tokio::test]
async fn a_cancellation_needs_a_yes_and_happens_once_when_the_yes_is_sent_twice() {
    let dir = tempfile::tempdir().unwrap();
    let shop = Watched::new();
    let desk = shop.desk(dir.path());
    let turn = say_verified(&desk, "jakub", "please cancel order 10009", "C1025").await;
    assert_eq!(
        reply(&turn),
        "Cancel order 10009, 2 items, €958.00? Reply yes or no."
    );
    assert_eq!(shop.actions(), 0, "nothing happens before the yes");
    assert_eq!(shop.order("10009").await.state, OrderState::Paid);
    let turn = say_verified(&desk, "jakub", "yes", "C1025").await;
    assert!(reply(&turn).contains("cancelled it"), "{}", reply(&turn));
    assert_eq!(shop.order("10009").await.state, OrderState::Cancelled);
    let turn = say_verified(&desk, "jakub", "yes", "C1025").await;
    assert!(!reply(&turn).contains("cancelled it"), "{}", reply(&turn));
    assert_eq!(shop.actions(), 1, "one yes, one cancellation");
}

#[tokio::test]
async fn anything_but_yes_drops_the_pending_action() {
    let dir = tempfile::tempdir().unwrap();
    let shop = Watched::new();
    let desk = shop.desk(dir.path());
    let turn = say_verified(&desk, "lea", "I want a refund for order 10005", "C1013").await;
    assert_eq!(
        reply(&turn),
        "Refund order 10005, 2 items, €1098.00? Reply yes or no."
    );
    let turn = say_verified(&desk, "lea", "where is order 10005", "C1013").await;
    let text = reply(&turn);
    assert!(
        text.starts_with("OK, I haven't asked for a refund"),
        "{text}"
    );
    assert!(text.contains("Order 10005 is delivered"), "{text}");
    say_verified(&desk, "lea", "yes", "C1013").await;
    assert_eq!(shop.actions(), 0);
    // Asked again and confirmed, it is done.
    say_verified(&desk, "lea", "I want a refund for order 10005", "C1013").await;
    let turn = say_verified(&desk, "lea", "yes please", "C1013").await;
    assert!(
        reply(&turn).contains("opened a refund request for order 10005"),
        "{}",
        reply(&turn)
    );
    assert_eq!(shop.order("10005").await.state, OrderState::RefundPending);
    assert_eq!(shop.actions(), 1);
}

#[tokio::test]
async fn the_right_email_unlocks_that_one_order_only() {
    let dir = tempfile::tempdir().unwrap();
    let shop = Watched::new();
    let desk = shop.desk(dir.path());
    say(&desk, "x1", "where is my order 10002?").await;
    let turn = say(&desk, "x1", "Omar.Moreau@example.com").await;
    let text = reply(&turn);
    assert!(text.contains("Order 10002 is on its way"), "{text}");
    assert!(text.contains("3SPNL7454034571"), "{text}");
    // The same customer's other order still needs its own check.
    let turn = say(&desk, "x1", "and where is order 10042").await;
    assert!(
        reply(&turn).contains("email address or the postcode"),
        "{}",
        reply(&turn)
    );
    // So does a cancellation of some other order.
    say(&desk, "x1", "cancel order 10009").await;
    say(&desk, "x1", "yes").await;
    assert_eq!(shop.actions(), 0);
}

#[tokio::test]
async fn the_postcode_works_too_and_still_a_cancellation_needs_a_yes() {
    let dir = tempfile::tempdir().unwrap();
    let shop = Watched::new();
    let desk = shop.desk(dir.path());
    say(&desk, "x1", "please cancel order 10009").await;
    let turn = say(&desk, "x1", "1000-001").await;
    assert_eq!(
        reply(&turn),
        "Cancel order 10009, 2 items, €958.00? Reply yes or no."
    );
    assert_eq!(shop.actions(), 0);
    let turn = say(&desk, "x1", "yes").await;
    assert!(reply(&turn).contains("cancelled it"), "{}", reply(&turn));
    assert_eq!(shop.order("10009").await.state, OrderState::Cancelled);
}

#[tokio::test]
async fn three_wrong_answers_bring_the_offer_of_a_person() {
    let dir = tempfile::tempdir().unwrap();
    let shop = Watched::new();
    let desk = shop.desk(dir.path());
    say(&desk, "x1", "where is my order 10002?").await;
    let wrong_email = reply(&say(&desk, "x1", "emma.becker@example.com").await);
    let wrong_postcode = reply(&say(&desk, "x1", "10115").await);
    assert_eq!(wrong_email, wrong_postcode, "never which part was wrong");
    assert!(wrong_email.contains("doesn't match"), "{wrong_email}");
    let turn = say(&desk, "x1", "i really am omar").await;
    assert_eq!(turn.status, Status::Bot);
    assert!(
        reply(&turn).contains("would you like me to put you in touch"),
        "{}",
        reply(&turn)
    );
    // No fourth try, for this order or another.
    let turn = say(&desk, "x1", "where is my order 10042").await;
    assert!(
        reply(&turn).contains("put you in touch"),
        "{}",
        reply(&turn)
    );
    let turn = say(&desk, "x1", "yes").await;
    assert_eq!(turn.status, Status::Queued, "{}", reply(&turn));
}

#[tokio::test]
async fn a_shop_signed_customer_sees_their_own_orders_without_a_check() {
    let dir = tempfile::tempdir().unwrap();
    let shop = Watched::new();
    let desk = shop.desk(dir.path());
    let turn = say_verified(&desk, "omar", "where is my order 10002?", "C1014").await;
    let text = reply(&turn);
    assert!(text.contains("Order 10002 is on its way"), "{text}");
    assert!(text.contains("3SPNL7454034571"), "{text}");
    let turn = say_verified(&desk, "omar", "and order 10042?", "C1014").await;
    assert!(
        reply(&turn).contains("Order 10042 is delivered"),
        "{}",
        reply(&turn)
    );
}

#[tokio::test]
async fn a_no_or_another_order_drops_the_cancellation() {
    let dir = tempfile::tempdir().unwrap();
    let shop = Watched::new();
    let desk = shop.desk(dir.path());
    say_verified(&desk, "jakub", "cancel order 10009", "C1025").await;
    let turn = say_verified(&desk, "jakub", "no, don't cancel it", "C1025").await;
    assert_eq!(reply(&turn), "OK, I haven't cancelled order 10009.");
    say_verified(&desk, "jakub", "cancel order 10009", "C1025").await;
    // 10035 is not Jakub's: said like a missing order, after dropping the first.
    let turn = say_verified(&desk, "jakub", "cancel order 10035 instead", "C1025").await;
    let text = reply(&turn);
    assert!(
        text.starts_with("OK, I haven't cancelled order 10009."),
        "{text}"
    );
    assert!(
        text.contains("couldn't find an order with the number 10035"),
        "{text}"
    );
    say_verified(&desk, "jakub", "yes", "C1025").await;
    assert_eq!(shop.actions(), 0);
    assert_eq!(shop.order("10009").await.state, OrderState::Paid);
    assert_eq!(shop.order("10035").await.state, OrderState::Paid);
}

/// A person from the team types the order and the email the customer gave them, and the
/// shop confirms it: the conversation becomes agent-verified for that order, and after the
/// hand back the bot answers about it (only it). Only the owning agent may; an agent's word
/// without the shop's confirmation proves nothing.
#[tokio::test]
async fn an_agent_verified_customer_sees_their_orders_after_the_hand_back() {
    use crate::support::desk::AGENT;
    use frontdesk::desk::DeskError;
    let dir = tempfile::tempdir().unwrap();
    let shop = Watched::new();
    let desk = shop.desk(dir.path());
    let asked = reply(&say(&desk, "v1", "where is my order 10002?").await);
    assert!(asked.contains("email address or the postcode"), "{asked}");
    let queued = say(&desk, "v1", "I want a person").await;
    assert_eq!(queued.status, Status::Queued, "{}", reply(&queued));
    let id = queued.conversation_id.clone();
    // Not theirs to verify before they own it.
    assert!(matches!(
        desk.verify_customer(AGENT, &id, "10002", "omar.moreau@example.com")
            .await,
        Err(DeskError::Conflict(_) | DeskError::Forbidden(_))
    ));
    desk.claim(AGENT, &id).await.unwrap();
    assert!(matches!(
        desk.verify_customer(AGENT, &id, "10002", "  ").await,
        Err(DeskError::Invalid(_))
    ));
    assert!(matches!(
        desk.verify_customer(AGENT, &id, "10002", "someone@example.com")
            .await,
        Err(DeskError::Invalid(_))
    ));
    desk.verify_customer(AGENT, &id, "10002", "omar.moreau@example.com")
        .await
        .unwrap();
    let record = desk.conversation(&id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::WithAgent);
    // The transcript says what was checked, and by whom.
    let said = desk.conversation(&id).await.unwrap().unwrap().messages;
    assert!(
        said.iter()
            .any(|m| m.text.contains("checked order 10002") && m.text.contains("shop confirmed")),
        "{said:?}"
    );
    desk.hand_back(AGENT, &id).await.unwrap();

    let shipment = shop.order("10002").await.shipment.unwrap();
    let told = reply(&say(&desk, "v1", "where is my order 10002?").await);
    assert!(
        told.contains(shipment.tracking_number.as_str()),
        "an agent-verified customer hears about their own order: {told}"
    );
    // Another customer's order stays closed to them.
    let other = reply(&say(&desk, "v1", "where is my order 10001?").await);
    let tracking_10001 = shop
        .order("10001")
        .await
        .shipment
        .map(|s| s.tracking_number)
        .unwrap_or_default();
    assert!(
        tracking_10001.is_empty() || !other.contains(&tracking_10001),
        "{other}"
    );
}
