//! Entity extraction (`nlu::entities`) and link commands (`desk::parse_link_command`) on
//! arbitrary Unicode and on phrases of the words their rules look for. Every entity's span
//! must lie on character boundaries and be the text it reports; spans never overlap and
//! come in order; dates are real dates; a link command is only ever `/link` or
//! `/link@bot` as the first word, its code the second word.

use chrono::NaiveDate;
use frontdesk::desk::{parse_link_command, LinkCommand};
use frontdesk::nlu::entities::{extract, extract_at};
use frontdesk::nlu::EntityKind;
use proptest::prelude::*;

use crate::harness::{any_chars, cases, check, fuzz, phrase, text};

fn customer_text() -> BoxedStrategy<String> {
    prop_oneof![3 => phrase(), 2 => text(), 1 => any_chars(60)].boxed()
}

/// Dates to resolve relative expressions against, from 1900 to 2200.
fn today() -> BoxedStrategy<NaiveDate> {
    (0i64..(300 * 366))
        .prop_map(|d| NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Duration::days(d))
        .boxed()
}

#[test]
fn entities() {
    fuzz(
        "entities::extract",
        cases(),
        (customer_text(), today(), any::<bool>()),
        |(text, today, now), t| {
            let found = if now {
                extract(&text)
            } else {
                extract_at(&text, today)
            };
            for e in &found {
                t.note(match e.kind {
                    EntityKind::OrderNumber => "order numbers",
                    EntityKind::Email => "emails",
                    EntityKind::Money => "money",
                    EntityKind::Date => "dates",
                });
            }
            let mut last_end = 0;
            for e in &found {
                check(e.start < e.end && e.end <= text.len(), || {
                    format!("span {}..{} in {} bytes: {e:?}", e.start, e.end, text.len())
                })?;
                check(
                    text.is_char_boundary(e.start) && text.is_char_boundary(e.end),
                    || format!("span not on char boundaries: {e:?}"),
                )?;
                check(text[e.start..e.end] == e.text, || {
                    format!("span text {:?} != {:?}", &text[e.start..e.end], e.text)
                })?;
                check(e.start >= last_end, || {
                    format!("overlapping or unordered: {found:?}")
                })?;
                last_end = e.end;
                match e.kind {
                    EntityKind::Date => check(
                        NaiveDate::parse_from_str(&e.value, "%Y-%m-%d").is_ok(),
                        || format!("date value {:?}", e.value),
                    )?,
                    EntityKind::Email => check(
                        e.value.contains('@') && e.value == e.value.to_lowercase(),
                        || format!("email value {:?}", e.value),
                    )?,
                    EntityKind::OrderNumber => check(
                        !e.value.is_empty() && e.value.chars().all(char::is_numeric),
                        || format!("order number value {:?}", e.value),
                    )?,
                    EntityKind::Money => check(
                        e.value
                            .split_once(' ')
                            .is_some_and(|(amount, code)| amount.contains('.') && code.len() == 3),
                        || format!("money value {:?}", e.value),
                    )?,
                }
            }
            Ok(())
        },
    );
}

#[test]
fn link_commands() {
    let text = prop_oneof![
        2 => customer_text(),
        2 => (customer_text(), customer_text()).prop_map(|(a, b)| format!("/link{a} {b}")),
        1 => (customer_text()).prop_map(|a| format!("  /link@bot\t{a}")),
    ];
    fuzz("entities::link_commands", cases(), text, |text, t| {
        let mut words = text.split_whitespace();
        let first = words.next().unwrap_or("");
        let is_link = first == "/link" || first.starts_with("/link@");
        let got = parse_link_command(&text);
        let want = match (is_link, words.next()) {
            (false, _) => None,
            (true, None) => Some(LinkCommand::Start),
            // A code typed in pieces ("K7QX 3MZD") is read as one.
            (true, Some(code)) => Some(LinkCommand::Redeem(
                std::iter::once(code).chain(words).collect::<String>(),
            )),
        };
        check(got == want, || {
            format!("{text:?}: got {got:?}, expected {want:?}")
        })?;
        t.note(match &got {
            None => "not a command",
            Some(LinkCommand::Start) => "/link",
            Some(LinkCommand::Redeem(_)) => "/link CODE",
        });
        if let Some(LinkCommand::Redeem(code)) = &got {
            check(
                !code.is_empty() && !code.chars().any(char::is_whitespace),
                || format!("code {code:?}"),
            )?;
        }
        Ok(())
    });
}

/// Inputs these targets found that once panicked, run on every build whatever the seed.
#[test]
fn known_findings() {
    let monday = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    // `(?i)` matched the long s of `ſunday` as `s`, and chrono cannot parse the lower-cased
    // match: `expect("weekday names parse")` panicked (bot/nlu/entities.rs).
    for text in [
        "ſunday ",
        "see you tueſday",
        "next wedneſday!",
        "ſaturday or thurſday",
    ] {
        let found = extract_at(text, monday);
        assert!(
            found.iter().all(|e| e.kind != EntityKind::Date),
            "{text:?}: {found:?}"
        );
    }
    assert_eq!(extract_at("next sunday", monday)[0].value, "2026-03-08");
}
