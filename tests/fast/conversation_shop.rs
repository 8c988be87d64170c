//! The shop behind the bot: the demo shop's refunds and cancellations (for the order's
//! owner only, once per idempotency key), and the webhook backend against a fake shop
//! service on 127.0.0.1 (answers, unknown orders, a shop that is down or too slow).

use crate::support::desk::{demo_shop, reply, say, say_verified, TestDesk};
use crate::support::repo;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use frontdesk::commerce::{
    Caller, Commerce, CommerceError, DemoShop, OrderState, RequestOutcome, WebhookShop,
};
use frontdesk::desk::Desk;
use frontdesk::message::Status;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

fn demo() -> DemoShop {
    demo_shop()
}

/// A caller the bot's check covered for order `number`.
fn checked(number: &str) -> Caller {
    Caller {
        customer_id: None,
        verified_orders: vec![number.to_string()],
    }
}

#[tokio::test]
async fn demo_shop_has_orders_in_every_state() {
    let shop = demo();
    let mut seen = std::collections::HashSet::new();
    for n in 10001..=10060 {
        let order = shop
            .order(&n.to_string(), &checked(&n.to_string()))
            .await
            .unwrap()
            .expect("orders 10001..10060 exist");
        seen.insert(format!("{:?}", order.state));
        if matches!(order.state, OrderState::Shipped | OrderState::Delayed) {
            let s = order
                .shipment
                .as_ref()
                .expect("shipped orders have a shipment");
            assert!(
                !s.tracking_number.is_empty() && s.eta.is_some(),
                "{order:?}"
            );
        }
    }
    assert_eq!(seen.len(), 7, "{seen:?}");
    assert!(shop
        .order("10061", &checked("10061"))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn demo_shop_shows_and_changes_an_order_only_for_its_owner() {
    let shop = demo();
    // 10009 belongs to C1025 (jakub.walsh@example.com, postcode 1000-001).
    for stranger in [
        Caller::anonymous(),
        Caller::customer("C1001"),
        checked("10008"),
    ] {
        assert!(shop.order("10009", &stranger).await.unwrap().is_none());
        assert!(shop
            .cancel_order("10009", &stranger, "k-stranger")
            .await
            .unwrap()
            .is_none());
    }
    let owner = Caller::customer("C1025");
    assert_eq!(
        shop.order("10009", &owner).await.unwrap().unwrap().state,
        OrderState::Paid,
        "still paid: the strangers changed nothing"
    );
    assert!(shop
        .verify_order("10009", "Jakub.Walsh@Example.com")
        .await
        .unwrap());
    assert!(shop.verify_order("10009", " 1000-001 ").await.unwrap());
    assert!(!shop
        .verify_order("10009", "emma.becker@example.com")
        .await
        .unwrap());
    assert!(!shop.verify_order("10009", "").await.unwrap());
    assert!(!shop
        .verify_order("99999", "jakub.walsh@example.com")
        .await
        .unwrap());
}

#[tokio::test]
async fn refund_request_starts_a_refund_once() {
    let shop = demo();
    // 10005 is delivered.
    let mine = checked("10005");
    match shop
        .request_refund("10005", &mine, "k1")
        .await
        .unwrap()
        .unwrap()
    {
        RequestOutcome::Accepted { order } => assert_eq!(order.state, OrderState::RefundPending),
        other => panic!("{other:?}"),
    }
    // The same key again (a repeated yes) is the first outcome, not a second refund.
    assert!(matches!(
        shop.request_refund("10005", &mine, "k1").await.unwrap(),
        Some(RequestOutcome::Accepted { .. })
    ));
    match shop
        .request_refund("10005", &mine, "k2")
        .await
        .unwrap()
        .unwrap()
    {
        RequestOutcome::Refused { why } => assert!(why.contains("already in progress"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn shipped_order_cannot_be_cancelled_but_a_paid_one_can() {
    let shop = demo();
    assert!(matches!(
        shop.cancel_order("10001", &checked("10001"), "k1")
            .await
            .unwrap(),
        Some(RequestOutcome::Refused { .. })
    ));
    // 10009 is paid, not shipped.
    match shop
        .cancel_order("10009", &checked("10009"), "k2")
        .await
        .unwrap()
        .unwrap()
    {
        RequestOutcome::Accepted { order } => assert_eq!(order.state, OrderState::Cancelled),
        other => panic!("{other:?}"),
    }
}

/// A shop service speaking the webhook protocol from the demo data; `delay` makes it slow,
/// `broken` makes it answer 500.
#[derive(Clone)]
struct FakeShop {
    data: Arc<Value>,
    delay: Duration,
    broken: bool,
}

async fn fake_shop(
    State(shop): State<FakeShop>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    tokio::time::sleep(shop.delay).await;
    if shop.broken {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "database down"})),
        );
    }
    let find = |list: &str, key: &str, want: &Value| {
        shop.data[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| &o[key] == want)
            .cloned()
    };
    match body["action"].as_str() {
        Some("get_order") => match find("orders", "number", &body["order_number"]) {
            Some(o) => (StatusCode::OK, Json(json!({ "order": o }))),
            None => (StatusCode::NOT_FOUND, Json(json!({}))),
        },
        Some("get_customer") => (
            StatusCode::OK,
            Json(json!({ "customer": find("customers", "id", &body["customer_id"]) })),
        ),
        Some("verify_order") => {
            let verified = find("orders", "number", &body["order_number"])
                .and_then(|o| find("customers", "id", &o["customer_id"]))
                .is_some_and(|c| c["email"] == body["answer"]);
            (StatusCode::OK, Json(json!({ "verified": verified })))
        }
        // Refuses, and says back who asked with which key, for the test to see.
        Some("cancel_order") | Some("request_refund") => (
            StatusCode::OK,
            Json(json!({"outcome": "refused", "why": format!(
                "Please call us for this one ({} {}).",
                body["caller"]["customer_id"].as_str().unwrap_or("anonymous"),
                body["idempotency_key"].as_str().unwrap_or("no key"),
            )})),
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unknown action"})),
        ),
    }
}

async fn start_fake(delay: Duration, broken: bool) -> String {
    let data: Value =
        serde_json::from_str(&std::fs::read_to_string(repo("data/demo_shop.json")).unwrap())
            .unwrap();
    let app = Router::new()
        .route("/frontdesk", post(fake_shop))
        .with_state(FakeShop {
            data: Arc::new(data),
            delay,
            broken,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/frontdesk")
}

#[tokio::test]
async fn webhook_shop_answers_orders_customers_and_refusals() {
    let url = start_fake(Duration::ZERO, false).await;
    let shop = WebhookShop::new(&url, Duration::from_secs(2)).unwrap();
    // 10007 belongs to C1039 (finn.khan@example.com).
    let owner = Caller::customer("C1039");
    let order = shop.order("10007", &owner).await.unwrap().unwrap();
    assert_eq!(order.state, OrderState::Delayed);
    assert!(
        shop.order("10007", &Caller::customer("C1001"))
            .await
            .unwrap()
            .is_none(),
        "someone else's order is never shown, even if the shop sends it"
    );
    assert!(
        shop.order("424242", &owner).await.unwrap().is_none(),
        "404 is an unknown order"
    );
    assert!(shop
        .verify_order("10007", "finn.khan@example.com")
        .await
        .unwrap());
    assert!(!shop
        .verify_order("10007", "nope@example.com")
        .await
        .unwrap());
    let c = shop.customer("C1004").await.unwrap().unwrap();
    assert_eq!(c.tier, "vip");
    assert!(shop.customer("nobody").await.unwrap().is_none());
    assert!(matches!(
        shop.request_refund("10001", &owner, "conv:refund_request:10001:3").await.unwrap(),
        Some(RequestOutcome::Refused { why }) if why.contains("C1039 conv:refund_request:10001:3")
    ));
}

#[tokio::test]
async fn slow_shop_times_out_and_broken_shop_is_an_error() {
    let slow = WebhookShop::new(
        &start_fake(Duration::from_secs(3), false).await,
        Duration::from_millis(200),
    )
    .unwrap();
    assert!(matches!(
        slow.order("10001", &checked("10001")).await,
        Err(CommerceError::Timeout(200))
    ));
    let broken = WebhookShop::new(
        &start_fake(Duration::ZERO, true).await,
        Duration::from_secs(2),
    )
    .unwrap();
    let e = broken.order("10001", &checked("10001")).await.unwrap_err();
    assert!(e.to_string().contains("500"), "{e}");
}

fn webhook_desk(dir: &std::path::Path, shop: WebhookShop) -> Desk {
    TestDesk::new().shop(shop).open(dir)
}

#[tokio::test]
async fn bot_answers_from_the_shops_own_service() {
    let dir = tempfile::tempdir().unwrap();
    let url = start_fake(Duration::ZERO, false).await;
    let desk = webhook_desk(
        dir.path(),
        WebhookShop::new(&url, Duration::from_secs(2)).unwrap(),
    );
    // 10008 belongs to C1012, whom the shop vouches for (a signed token).
    let turn = say_verified(&desk, "w", "where is order 10008", "C1012").await;
    assert!(
        reply(&turn).contains("Order 10008 is delayed"),
        "{}",
        reply(&turn)
    );
}

#[tokio::test]
async fn shop_outage_is_told_honestly_with_the_offer_of_a_person() {
    let dir = tempfile::tempdir().unwrap();
    let url = start_fake(Duration::ZERO, true).await;
    let desk = webhook_desk(
        dir.path(),
        WebhookShop::new(&url, Duration::from_secs(2)).unwrap(),
    );
    let turn = say_verified(&desk, "w", "where is order 10008", "C1012").await;
    assert_eq!(turn.status, Status::Bot);
    assert!(
        reply(&turn).contains("can't reach our order system"),
        "{}",
        reply(&turn)
    );
    let turn = say(&desk, "w", "yes").await;
    assert_eq!(
        turn.status,
        Status::Queued,
        "a yes to the offer reaches a person"
    );
}
