use super::*;
use chrono::TimeZone;
use serde_json::json;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 10).unwrap()
}

fn checked(value: serde_json::Value) -> Result<Checked, NoticeError> {
    check(&Event::parse(value)?, today(), Utc::now())
}

fn refused(value: serde_json::Value) -> String {
    match checked(value) {
        Err(NoticeError::Invalid(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_delay_names_the_order_the_new_date_and_what_the_shop_allows() {
    let c = checked(json!({
        "type": "order_delayed", "id": "evt-1", "order": "10009", "new_date": "2026-12-24",
        "reason": "storm at the depot", "alternatives": ["wait", "cancel"], "voucher": "SORRY-10"
    }))
    .unwrap();
    assert!(c.text.contains("order 10009"), "{}", c.text);
    assert!(c.text.contains("Thursday 24 December 2026"), "{}", c.text);
    assert!(c.text.contains("storm at the depot"), "{}", c.text);
    assert!(c.text.contains("cancel it"), "{}", c.text);
    assert!(c.text.contains("SORRY-10"), "{}", c.text);
    assert!(c.text.contains("stop notices"), "{}", c.text);
    let context = c.context.unwrap();
    assert_eq!(context.alternatives, vec!["wait", "cancel"]);
    // Only wait, no voucher: neither cancelling nor a code is offered.
    let c = checked(json!({"type": "order_delayed", "order": "10009", "new_date": "2026-12-24"}))
        .unwrap();
    assert!(
        !c.text.contains("cancel") && !c.text.contains("voucher"),
        "{}",
        c.text
    );
}

#[test]
fn bad_events_are_refused_with_what_to_send() {
    let m = refused(json!({"type": "order_lost", "order": "1"}));
    for t in TYPES {
        assert!(m.contains(t), "{m}");
    }
    assert!(refused(json!({"order": "1"})).contains("order_delayed"));
    let m = refused(json!({"type": "order_delayed", "order": "10009", "new_date": "24/12/2026"}));
    assert!(m.contains("YYYY-MM-DD"), "{m}");
    let m = refused(json!({"type": "order_delayed", "order": "10009", "new_date": "2020-01-01"}));
    assert!(m.contains("past"), "{m}");
    let m = refused(json!({"type": "order_delayed", "order": "10009"}));
    assert!(m.contains("new_date"), "{m}");
    let m = refused(
        json!({"type": "order_delayed", "order": "10009", "new_date": "2026-12-24",
        "reason": "x".repeat(201)}),
    );
    assert!(m.contains("reason"), "{m}");
    let m = refused(
        json!({"type": "order_delayed", "order": "10009", "new_date": "2026-12-24",
        "alternatives": ["refund"]}),
    );
    assert!(m.contains("wait"), "{m}");
    let m = refused(
        json!({"type": "order_delayed", "order": "10009", "new_date": "2026-12-24",
        "alternatives": ["voucher"]}),
    );
    assert!(m.contains("voucher"), "{m}");
    let m = refused(json!({"type": "order_shipped", "order": "10009", "extra": 1}));
    assert!(m.contains("extra"), "{m}");
    let m = refused(json!({"type": "order_shipped", "order": "10009",
        "tracking_url": "javascript:alert(1)"}));
    assert!(m.contains("tracking_url"), "{m}");
    let m = refused(json!({"type": "order_shipped", "order": "1 0 0"}));
    assert!(m.contains("`order`"), "{m}");
    let m = refused(json!({"type": "order_shipped", "order": "10009", "id": "a b"}));
    assert!(m.contains("`id`"), "{m}");
    let m = refused(json!({"type": "refund_issued", "order": "10009", "amount": -3}));
    assert!(m.contains("amount"), "{m}");
    let m = refused(json!({"type": "back_in_stock", "product": "Oak desk"}));
    assert!(m.contains("customer"), "{m}");
}

#[test]
fn the_other_events_read_as_a_customer_expects() {
    let c = checked(json!({"type": "order_shipped", "order": "10009",
        "tracking_url": "https://track.example/3S"}))
    .unwrap();
    assert!(c.text.contains("has shipped") && c.text.contains("https://track.example/3S"));
    let c = checked(
        json!({"type": "refund_issued", "order": "10009", "amount": 49.9,
        "currency": "EUR"}),
    )
    .unwrap();
    assert!(c.text.contains("49.90 EUR"), "{}", c.text);
    let c = checked(json!({"type": "back_in_stock", "product": "Oak desk", "customer": "C1025"}))
        .unwrap();
    assert_eq!(c.customer.as_deref(), Some("C1025"));
    assert!(c.context.is_none() && c.text.contains("offers off"));
    assert!(
        Event::parse(json!({"type": "back_in_stock", "product": "x", "customer": "C"}))
            .unwrap()
            .promotional()
    );
}

#[test]
fn quiet_hours_hold_until_their_local_end_across_summer_time() {
    let config = NoticesConfig::default(); // 21:00-08:00 Europe/London
    let utc = |y, mo, d, h, mi| Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap();
    // Winter: London is UTC.
    assert_eq!(
        quiet_until(&config, utc(2026, 12, 10, 22, 30)),
        Some(utc(2026, 12, 11, 8, 0))
    );
    assert_eq!(
        quiet_until(&config, utc(2026, 12, 10, 6, 0)),
        Some(utc(2026, 12, 10, 8, 0))
    );
    assert_eq!(quiet_until(&config, utc(2026, 12, 10, 12, 0)), None);
    // Summer: 08:00 in London is 07:00 UTC; 20:30 UTC is already 21:30 there.
    assert_eq!(
        quiet_until(&config, utc(2026, 7, 1, 20, 30)),
        Some(utc(2026, 7, 2, 7, 0))
    );
    assert_eq!(
        next_quiet_end(&config, utc(2026, 7, 1, 12, 0)),
        Some(utc(2026, 7, 2, 7, 0))
    );
    let none = NoticesConfig {
        quiet_hours: String::new(),
        ..NoticesConfig::default()
    };
    assert_eq!(quiet_until(&none, utc(2026, 12, 10, 23, 0)), None);
    assert_eq!(next_quiet_end(&none, utc(2026, 12, 10, 23, 0)), None);
}
