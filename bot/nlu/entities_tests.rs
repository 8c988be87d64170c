//! Entity rules on messy customer text.

use super::*;

/// A Monday, so weekday arithmetic is easy to check by hand.
fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

fn found(text: &str) -> Vec<(EntityKind, String)> {
    extract_at(text, today())
        .into_iter()
        .map(|e| (e.kind, e.value))
        .collect()
}

fn values(text: &str, kind: EntityKind) -> Vec<String> {
    extract_at(text, today())
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.value)
        .collect()
}

fn orders(text: &str) -> Vec<String> {
    values(text, EntityKind::OrderNumber)
}

fn money(text: &str) -> Vec<String> {
    values(text, EntityKind::Money)
}

fn dates(text: &str) -> Vec<String> {
    values(text, EntityKind::Date)
}

#[test]
fn order_numbers_in_the_ways_customers_write_them() {
    assert_eq!(orders("where is my order 10234??"), ["10234"]);
    assert_eq!(orders("track #10234 pls"), ["10234"]);
    assert_eq!(orders("Order no. 10234 still not here"), ["10234"]);
    assert_eq!(orders("order number: 55120"), ["55120"]);
    assert_eq!(orders("my order is 48213"), ["48213"]);
    assert_eq!(orders("ORD-10234 is late"), ["10234"]);
    assert_eq!(orders("ord10234"), ["10234"]);
    assert_eq!(orders("cancel purchase 732201349959"), ["732201349959"]);
    assert_eq!(orders("10234"), ["10234"]);
    assert_eq!(orders("it's 10234 I think"), ["10234"]);
    assert_eq!(
        orders("orders 10234 and 55120 both missing"),
        ["10234", "55120"]
    );
}

#[test]
fn order_number_text_and_offsets_point_into_the_message() {
    let text = "hi, ORD-10234 and #55120";
    let entities = extract_at(text, today());
    assert_eq!(entities.len(), 2);
    assert_eq!(entities[0].text, "ORD-10234");
    assert_eq!(&text[entities[0].start..entities[0].end], "ORD-10234");
    assert_eq!(entities[1].text, "#55120");
}

#[test]
fn things_that_are_not_order_numbers() {
    assert!(orders("call me on +49 170 1234567").is_empty());
    assert!(orders("my phone is 0176 12345678").is_empty());
    assert!(orders("(555) 123-4567").is_empty());
    assert!(orders("zip code 10115, Berlin").is_empty());
    assert!(orders("tracking number 12345678").is_empty());
    assert!(orders("I paid $12345").is_empty());
    assert!(orders("it cost 12345.50 EUR").is_empty());
    assert!(orders("1234 is too short").is_empty());
    assert!(orders("123456789 is too long to be bare").is_empty());
    assert!(orders("item SKU-55555").is_empty());
    assert!(orders("can I check invoice #00108?").is_empty());
    assert!(orders("ordered on 2026-03-12").is_empty());
}

#[test]
fn emails_are_lower_cased_and_trailing_punctuation_dropped() {
    assert_eq!(
        values("mail me at John.Doe+shop@Example.COM.", EntityKind::Email),
        ["john.doe+shop@example.com"]
    );
    assert_eq!(
        values("<anna_b@mail.co.uk>, thanks", EntityKind::Email),
        ["anna_b@mail.co.uk"]
    );
    assert!(values("I'm @ home, not an email", EntityKind::Email).is_empty());
}

#[test]
fn email_digits_are_not_order_numbers() {
    assert_eq!(
        found("reach me at user10234@shop.de"),
        [(EntityKind::Email, "user10234@shop.de".to_string())]
    );
}

#[test]
fn money_in_many_notations() {
    assert_eq!(money("I paid $12.50 for it"), ["12.50 USD"]);
    assert_eq!(money("kostet 12,50 € oder so"), ["12.50 EUR"]);
    assert_eq!(money("EUR 30 refund"), ["30.00 EUR"]);
    assert_eq!(money("gimme my 30 bucks back"), ["30.00 USD"]);
    assert_eq!(money("£5 shipping?"), ["5.00 GBP"]);
    assert_eq!(money("a refund of 160 dollars"), ["160.00 USD"]);
    assert_eq!(money("charged 1,200.50 USD"), ["1200.50 USD"]);
    assert_eq!(money("charged 1.200,50€"), ["1200.50 EUR"]);
    assert_eq!(money("about 20 quid"), ["20.00 GBP"]);
    assert_eq!(money("only 99 euros"), ["99.00 EUR"]);
    assert_eq!(money("€0.99 and $3"), ["0.99 EUR", "3.00 USD"]);
}

#[test]
fn plain_numbers_are_not_money() {
    assert!(money("I want 3 items").is_empty());
    assert!(money("order 10234").is_empty());
}

#[test]
fn relative_dates_resolve_against_today() {
    assert_eq!(dates("it should come tomorrow"), ["2026-11-24"]);
    assert_eq!(dates("ordered yesterday"), ["2026-11-22"]);
    assert_eq!(dates("today!"), ["2026-11-23"]);
    assert_eq!(dates("the day after tomorrow"), ["2026-11-25"]);
    assert_eq!(dates("in 3 days"), ["2026-11-26"]);
    assert_eq!(dates("two weeks ago"), ["2026-11-09"]);
}

#[test]
fn weekdays_resolve_forwards_or_backwards() {
    // today is Monday 2026-11-23
    assert_eq!(dates("next monday"), ["2026-11-30"]);
    assert_eq!(dates("next Friday"), ["2026-11-27"]);
    assert_eq!(dates("last friday"), ["2026-11-20"]);
    assert_eq!(dates("on wednesday"), ["2026-11-25"]);
    assert_eq!(dates("can it come Saturday"), ["2026-11-28"]);
}

#[test]
fn calendar_dates_in_several_formats() {
    assert_eq!(dates("delivered 12/03/2026"), ["2026-03-12"]);
    assert_eq!(dates("on 03/25/2026"), ["2026-03-25"]);
    assert_eq!(dates("on 2026-03-12"), ["2026-03-12"]);
    assert_eq!(dates("on 5.1.26"), ["2026-01-05"]);
    assert_eq!(dates("March 3, 2027"), ["2027-03-03"]);
    assert_eq!(dates("3rd of march 2026"), ["2026-03-03"]);
    assert_eq!(dates("by the 1st of Dec"), ["2026-12-01"]);
}

#[test]
fn day_and_month_without_year_take_the_nearest_year() {
    // Today is 2026-11-23: January and March are nearer next year, October this year.
    assert_eq!(dates("arrives Jan 4th"), ["2027-01-04"]);
    assert_eq!(dates("due March 3"), ["2027-03-03"]);
    assert_eq!(dates("3rd of march"), ["2027-03-03"]);
    assert_eq!(dates("ordered on October 3"), ["2026-10-03"]);
    assert_eq!(dates("ordered 30 Sept"), ["2026-09-30"]);
}

#[test]
fn impossible_dates_are_dropped() {
    assert!(dates("31/02/2026").is_empty());
    assert!(dates("2026-13-01").is_empty());
}

#[test]
fn mixed_message_keeps_every_entity_once_in_order() {
    let text = "Hi!! order #10234 (paid €49,99 on 12/03/2026) never came, mail: ANA@shop.io, call 0171 2345678";
    let got = found(text);
    assert_eq!(
        got,
        vec![
            (EntityKind::OrderNumber, "10234".to_string()),
            (EntityKind::Money, "49.99 EUR".to_string()),
            (EntityKind::Date, "2026-03-12".to_string()),
            (EntityKind::Email, "ana@shop.io".to_string()),
        ]
    );
    let entities = extract_at(text, today());
    for pair in entities.windows(2) {
        assert!(pair[0].end <= pair[1].start, "overlap: {pair:?}");
    }
}

#[test]
fn non_latin_and_empty_text_do_not_panic() {
    assert!(extract_at("", today()).is_empty());
    assert_eq!(orders("мой заказ 10234, спасибо 😊"), ["10234"]);
    assert!(extract_at("日本語のメッセージ", today()).is_empty());
}

/// Only ASCII digits make numbers: other scripts' digits would reach the shop as order
/// numbers it cannot know (a fuzz finding).
#[test]
fn numbers_are_ascii_digits_only() {
    assert!(orders("order ٣٤٥٦٧").is_empty());
    assert!(orders("#１２３４５").is_empty());
    assert_eq!(orders("order 34567"), ["34567"]);
}
