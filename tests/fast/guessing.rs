//! Guessing must not work: each test is one of the attacks of the trust follow-up, made as an
//! attacker would (fresh identities, many addresses, the agent's own tools) against a
//! default desk or server, and must fail.

use crate::support::desk::{default_rules, demo_shop, TestDesk};
use crate::support::desk::{reply, say_verified, AGENT};
use crate::support::server::*;
use frontdesk::commerce::{Caller, Commerce, OrderState};
use frontdesk::desk::{Desk, DeskError, LinkError};
use frontdesk::message::{ChannelKind, Identity, Inbound, Status};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;

fn from(ip: &str, user: &str, text: &str) -> Inbound {
    let mut msg = Inbound::new(ChannelKind::Web, user, text);
    msg.origin = Some(ip.parse().unwrap());
    msg
}

async fn tell(desk: &Desk, msg: Inbound) -> frontdesk::desk::Turn {
    desk.receive(msg).await.expect("the desk answers")
}

/// 10 fresh visitors guess the postcode of order 10009 (3 tries each, the per-conversation
/// limit): after five wrong answers in all the order's checks pause for everyone, even the
/// right postcode opens nothing, the shop emails the owner a sign-in link once, and the
/// signed-in owner is still served.
#[tokio::test]
async fn postcode_guessing_from_fresh_identities_is_stopped_per_order() {
    let dir = tempfile::tempdir().unwrap();
    let shop = Arc::new(demo_shop());
    let desk = TestDesk::new()
        .shared_shop(shop.clone() as Arc<dyn Commerce>)
        .open(dir.path());
    let mut wrong_heard = 0;
    let mut paused_heard = 0;
    for visitor in 0..10 {
        let user = format!("fresh-{visitor}");
        let ip = format!("198.51.100.{visitor}");
        let asked = reply(&tell(&desk, from(&ip, &user, "where is my order 10009?")).await);
        if asked.contains("can't check order 10009") {
            paused_heard += 1;
            continue;
        }
        assert!(asked.contains("email address or the postcode"), "{asked}");
        for guess in 0..3 {
            let text = format!("{:04}-{:03}", 2000 + visitor, guess);
            let said = reply(&tell(&desk, from(&ip, &user, &text)).await);
            assert!(!said.contains("958"), "an amount leaked: {said}");
            if said.contains("doesn't match") {
                wrong_heard += 1;
            } else if said.contains("can't check order 10009") {
                paused_heard += 1;
                break;
            } else {
                break; // the offer of a person after 3 wrong answers
            }
        }
    }
    // Five answers were checked by the shop: the first visitor heard "try again" twice and
    // then the offer of a person (3 per conversation), the second once; the fifth wrong
    // answer paused the order.
    assert_eq!(wrong_heard, 3, "wrong answers told to try again");
    assert!(paused_heard >= 5, "{paused_heard}");
    // Now even the right postcode from a fresh visitor is not checked, and nothing is said
    // about the order; the cancellation that followed in the attack does nothing.
    let user = "lucky-guesser";
    let said = reply(
        &tell(
            &desk,
            from("203.0.113.9", user, "please cancel order 10009"),
        )
        .await,
    );
    assert!(said.contains("can't check order 10009"), "{said}");
    let said = reply(&tell(&desk, from("203.0.113.9", user, "1000-001")).await);
    assert!(
        !said.contains("958") && !said.contains("Cancel order"),
        "{said}"
    );
    tell(&desk, from("203.0.113.9", user, "yes")).await;
    let owner = Caller::customer("C1025");
    let order = shop.order("10009", &owner).await.unwrap().unwrap();
    assert_eq!(order.state, OrderState::Paid);
    assert_eq!(shop.access_links_sent(), vec!["10009".to_string()]);
    // The owner, signed in through the shop, is served as before.
    let told = reply(&say_verified(&desk, "jakub", "where is my order 10009?", "C1025").await);
    assert!(told.contains("10009"), "{told}");
    assert!(!told.contains("can't check"), "{told}");
}

/// A customer with many orders is no bigger target: wrong checks count per shop customer
/// across their orders too.
#[tokio::test]
async fn guesses_spread_over_one_customers_orders_are_counted_together() {
    let dir = tempfile::tempdir().unwrap();
    let shop = Arc::new(demo_shop());
    let desk = TestDesk::new()
        .shared_shop(shop.clone() as Arc<dyn Commerce>)
        .open(dir.path());
    // C1014 (omar.moreau@example.com) placed 10002 and 10042.
    let mut checked = 0;
    for i in 0..12 {
        let order = if i % 2 == 0 { "10002" } else { "10042" };
        let user = format!("spread-{i}");
        tell(
            &desk,
            from(
                "198.51.100.50",
                &user,
                &format!("where is my order {order}?"),
            ),
        )
        .await;
        let said = reply(&tell(&desk, from("198.51.100.50", &user, "9999 ZZ")).await);
        if said.contains("doesn't match") {
            checked += 1;
        }
    }
    // Ten wrong checks of C1014's orders pause them all (5 per order would allow 10 more).
    assert!(
        checked <= 9,
        "{checked} wrong checks were told to try again"
    );
    let user = "spread-last";
    let said = reply(
        &tell(
            &desk,
            from("198.51.100.51", user, "where is my order 10042?"),
        )
        .await,
    );
    assert!(said.contains("can't check order 10042"), "{said}");
}

/// A /link scan from 100 fresh identities on one address: the address's budget stops it long
/// before any 40-bit code could be hit, the victim's code is not used up, and it still links
/// from the victim's own other app.
#[tokio::test]
async fn a_link_code_scan_from_fresh_identities_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let desk = TestDesk::new().open(dir.path());
    let victim = Identity::new(ChannelKind::Telegram, "555");
    let phone = Identity::new(ChannelKind::Discord, "777");
    desk.receive(Inbound::new(ChannelKind::Telegram, "555", "hello"))
        .await
        .unwrap();
    let code = desk.issue_link_code(&victim).await.unwrap();
    assert_eq!(code.len(), 9, "{code}");
    let attacker: IpAddr = "198.51.100.66".parse().unwrap();
    let (mut unknown, mut refused) = (0, 0);
    for i in 0..100 {
        let me = Identity::new(ChannelKind::Web, &format!("scan-{i}"));
        for _ in 0..3 {
            let guess = frontdesk::desk::new_code();
            match desk.redeem_link_code(&guess, &me, Some(attacker)).await {
                Err(LinkError::Unknown) => unknown += 1,
                Err(LinkError::AddressLockedOut) => refused += 1,
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(unknown, frontdesk::desk::LINK_FAILURES_PER_ADDRESS);
    assert_eq!(refused, 300 - unknown);
    // The right code from the attacker's address is refused too, and not used up.
    let me = Identity::new(ChannelKind::Web, "scan-right");
    assert!(matches!(
        desk.redeem_link_code(&code, &me, Some(attacker)).await,
        Err(LinkError::AddressLockedOut)
    ));
    // The victim's phone (a platform chat: no address) links with it, typed loosely.
    desk.receive(Inbound::new(ChannelKind::Discord, "777", "hi"))
        .await
        .unwrap();
    let typed = code.to_lowercase().replace('-', " ");
    assert_eq!(
        desk.redeem_link_code(&typed, &phone, None).await.unwrap(),
        victim
    );
}

/// Wrong codes from everyone together are budgeted too: a guesser with many addresses and
/// identities pauses linking rather than scanning on.
#[tokio::test]
async fn link_guesses_from_many_addresses_meet_the_overall_budget() {
    let dir = tempfile::tempdir().unwrap();
    let desk = TestDesk::new().open(dir.path());
    let overall = frontdesk::desk::LINK_FAILURES_OVERALL;
    let mut answered = 0;
    for i in 0..overall + 20 {
        let me = Identity::new(ChannelKind::Web, &format!("many-{i}"));
        let ip: IpAddr = format!("10.{}.{}.1", i / 250, i % 250).parse().unwrap();
        match desk.redeem_link_code("AAAA-AAAA", &me, Some(ip)).await {
            Err(LinkError::Unknown) => answered += 1,
            Err(LinkError::Paused) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(answered, overall);
}

/// Linking files a new chat under the customer for history, but it does not let that chat
/// speak for the customer's shop account: it proves it again first.
#[tokio::test]
async fn a_linked_chat_proves_the_shop_account_again() {
    let dir = tempfile::tempdir().unwrap();
    let desk = TestDesk::new().open(dir.path());
    say_verified(&desk, "jakub", "hello", "C1025").await;
    let signed_in = Identity::new(ChannelKind::Rest, "jakub");
    let code = desk.issue_link_code(&signed_in).await.unwrap();
    let other = Identity::new(ChannelKind::Telegram, "901");
    desk.receive(Inbound::new(ChannelKind::Telegram, "901", "hi"))
        .await
        .unwrap();
    desk.redeem_link_code(&code, &other, None).await.unwrap();
    let turn = tell(
        &desk,
        Inbound::new(ChannelKind::Telegram, "901", "where is my order 10009?"),
    )
    .await;
    let said = reply(&turn);
    assert!(said.contains("email address or the postcode"), "{said}");
    assert!(!said.contains("958"), "{said}");
}

/// Anonymous strangers from one address cannot fill a queue: a few are queued, the rest
/// stay with the bot and are told how to get through; a customer the shop vouches for is
/// queued even past the queue's size; silent anonymous chats leave the queue after a while.
#[tokio::test]
async fn a_queue_flood_from_one_address_leaves_room_for_known_customers() {
    let dir = tempfile::tempdir().unwrap();
    let mut rules = default_rules();
    for queue in rules.queues.values_mut() {
        queue.max_waiting = 5;
    }
    let desk = TestDesk::new().rules(rules).open(dir.path());
    let mut queued = 0;
    for i in 0..8 {
        let turn = tell(
            &desk,
            from(
                "198.51.100.7",
                &format!("flood-{i}"),
                "I want to talk to a human agent",
            ),
        )
        .await;
        if turn.status == Status::Queued {
            queued += 1;
        } else {
            assert!(
                reply(&turn).contains("several chats from your network"),
                "{}",
                reply(&turn)
            );
        }
    }
    assert_eq!(queued, frontdesk::desk::queue::ANONYMOUS_PER_ADDRESS);
    // Strangers from other addresses fill the queue to its size; then it is full for them.
    for i in 0..3 {
        let ip = format!("198.51.100.{}", 20 + i);
        tell(
            &desk,
            from(
                &ip,
                &format!("other-{i}"),
                "I want to talk to a human agent",
            ),
        )
        .await;
    }
    let full = tell(
        &desk,
        from("198.51.100.30", "late", "I want to talk to a human agent"),
    )
    .await;
    assert_eq!(full.status, Status::Bot);
    // A signed-in customer is never refused for capacity.
    let known = say_verified(&desk, "jakub", "I want to talk to a human agent", "C1025").await;
    assert_eq!(known.status, Status::Queued, "{}", reply(&known));
    // Half an hour of silence later the anonymous chats are out of the queue; jakub stays.
    let later = chrono::Utc::now() + chrono::Duration::minutes(31);
    let gone = desk
        .expire_anonymous_queued(frontdesk::desk::queue::ANONYMOUS_QUEUE_TTL, later)
        .await
        .unwrap();
    assert_eq!(gone.len(), 5, "{gone:?}");
    let waiting: usize = desk
        .queues()
        .await
        .unwrap()
        .iter()
        .map(|q| q.entries.len())
        .sum();
    assert_eq!(waiting, 1);
    let known = desk
        .conversation(&known.conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(known.status, Status::Queued);
}

/// An agent's word is not proof: verifying a customer needs what the shop confirms (the
/// order's email or postcode, typed by the agent), and both outcomes are audited.
#[tokio::test]
async fn an_agent_cannot_act_as_a_customer_without_the_shops_confirmation() {
    let dir = tempfile::tempdir().unwrap();
    let shop = Arc::new(demo_shop());
    let (desk, store) = TestDesk::new()
        .shared_shop(shop.clone() as Arc<dyn Commerce>)
        .open_with_store(dir.path());
    let queued = tell(
        &desk,
        Inbound::new(ChannelKind::Rest, "stranger", "I want a person"),
    )
    .await;
    let id = queued.conversation_id.clone();
    desk.claim(AGENT, &id).await.unwrap();
    for proof in ["C1025", "jakub", "1000-002"] {
        assert!(matches!(
            desk.verify_customer(AGENT, &id, "10009", proof).await,
            Err(DeskError::Invalid(_))
        ));
    }
    desk.hand_back(AGENT, &id).await.unwrap();
    tell(
        &desk,
        Inbound::new(ChannelKind::Rest, "stranger", "cancel order 10009"),
    )
    .await;
    tell(&desk, Inbound::new(ChannelKind::Rest, "stranger", "yes")).await;
    let owner = Caller::customer("C1025");
    assert_eq!(
        shop.order("10009", &owner).await.unwrap().unwrap().state,
        OrderState::Paid
    );
    let audit = store.audit_lines().await.unwrap();
    assert_eq!(audit.len(), 3, "{audit:?}");
    assert!(audit
        .iter()
        .all(|l| l.actor == "agent:ana" && l.action.contains("refused")));
}

/// The identities a shop customer presented a token from each have a record; erase by the
/// shop's id finds them all, the stored outcomes of their messages too (a repeated message
/// id gets no stored answer back), and the audit names who erased.
#[tokio::test]
async fn erase_by_shop_id_leaves_nothing_findable() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let claims = customer("C1025", None, None);
    let token = s.server.keys.customer.sign(&claims);
    for user in ["jakub-laptop", "jakub-phone"] {
        let (status, turn) = s
            .post_message(json!({"user_id": user, "text": "where is my order 10009?",
                "customer_token": token, "message_id": format!("m-{user}")}))
            .await;
        assert_eq!(status, 200, "{turn}");
        assert!(replies(&turn).contains("10009"), "{turn}");
    }
    let admin_key = s.api_key(frontdesk::server::auth::Scope::Admin).await;
    let res = s
        .http
        .delete(s.at("/api/v1/customers/C1025"))
        .bearer_auth(&admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let erased: Value = res.json().await.unwrap();
    assert_eq!(erased["conversations"], 2, "{erased}");
    let dump = crate::support::server::dump(s.server.store.as_ref()).await;
    for needle in ["jakub-laptop", "jakub-phone", "m-jakub", "C1025", "Jakub"] {
        let found: Vec<_> = dump
            .iter()
            .filter(|(_, k, v)| k.contains(needle) || v.contains(needle))
            .collect();
        assert!(found.is_empty(), "{needle} still in {found:?}");
    }
    // The same message id again is a new message, not a replay of the stored answer.
    let (_, turn) = s
        .post_message(
            json!({"user_id": "jakub-phone", "text": "where is my order 10009?",
            "message_id": "m-jakub-phone"}),
        )
        .await;
    assert!(
        replies(&turn).contains("email address or the postcode"),
        "{turn}"
    );
    let line = s.server.store.audit_lines().await.unwrap().pop().unwrap();
    assert_eq!(line.action, "erase");
    assert!(line.actor.starts_with("key:"), "{line:?}");
    s.shutdown().await;
}
