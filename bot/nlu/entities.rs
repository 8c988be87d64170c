//! Entities found by rules in messy customer text: order numbers, emails, money amounts and
//! dates. Rules run from the most specific to the least; a span taken by one entity is never
//! reused by another, so a price or a date is never also an order number.
//!
//! Normalised values:
//! - order number: the digits (`#10234`, `order no. 10234`, `ORD-10234` -> `10234`). Bare
//!   numbers of 5 to 8 digits count too, unless they look like a phone number, a postcode,
//!   a tracking or card number, or part of a decimal.
//! - email: lower-cased.
//! - money: amount with two decimals and an ISO code, `12.50 USD`, `12,50 €` -> `12.50 EUR`.
//!   `$`, dollars and bucks are USD; `£`, pounds and quid GBP; `€` and euros EUR.
//! - date: `YYYY-MM-DD`, resolved against today (`tomorrow`, `next monday`, `in 3 days`,
//!   `March 3`, `3rd of march`, `12/03/2026`, `2026-03-12`). Numeric dates are read day
//!   first (12/03/2026 is 12 March) unless the second number cannot be a month. A day and
//!   month without a year take the year that puts the date nearest to today.

use std::sync::LazyLock;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use regex::{Captures, Regex};

use super::analysis::{Entity, EntityKind};

/// Entities in `text`, in the order they appear, dates resolved against today's local date.
pub fn extract(text: &str) -> Vec<Entity> {
    extract_at(text, chrono::Local::now().date_naive())
}

/// Entities in `text`, in the order they appear, dates resolved against `today`.
pub fn extract_at(text: &str, today: NaiveDate) -> Vec<Entity> {
    let mut found = Found::default();
    for m in EMAIL.find_iter(text) {
        found.add(
            EntityKind::Email,
            m.start(),
            m.end(),
            text,
            m.as_str().to_lowercase(),
        );
    }
    money(text, &mut found);
    dates(text, today, &mut found);
    order_numbers(text, &mut found);
    found.entities.sort_by_key(|e| e.start);
    found.entities
}

#[derive(Default)]
struct Found {
    entities: Vec<Entity>,
    /// Spans that are taken without being reported (phone numbers).
    blocked: Vec<(usize, usize)>,
}

impl Found {
    fn is_free(&self, start: usize, end: usize) -> bool {
        let overlaps = |&(s, e): &(usize, usize)| start < e && s < end;
        !self
            .entities
            .iter()
            .map(|e| (e.start, e.end))
            .any(|span| overlaps(&span))
            && !self.blocked.iter().any(overlaps)
    }

    fn add(
        &mut self,
        kind: EntityKind,
        start: usize,
        end: usize,
        text: &str,
        value: String,
    ) -> bool {
        if !self.is_free(start, end) {
            return false;
        }
        self.entities.push(Entity {
            kind,
            text: text[start..end].to_string(),
            value,
            start,
            end,
        });
        true
    }
}

/// Compiles an entity pattern. `\d` means the ASCII digits here: an order number or amount
/// in other scripts' digits ("٣٤٥٦٧", "１２３４５") would reach the shop as a string it
/// cannot know (found by the fuzz targets).
fn re(pattern: &str) -> Regex {
    Regex::new(&pattern.replace(r"\d", "[0-9]")).expect("entity pattern compiles")
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    re(r"[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
});

// ---------------------------------------------------------------- money

/// An amount: 12, 12.50, 12,50, 1,200.50, 1.200,50.
const AMOUNT: &str = r"(?:\d{1,3}(?:[.,]\d{3})+|\d+)(?:[.,]\d{1,2})?";

static MONEY_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)(?P<cur>[$€£¥]|\b(?:usd|eur|gbp|chf|cad|aud|jpy)\b|\bus\$)\s?(?P<amt>{AMOUNT})\b"
    ))
});
static MONEY_AFTER: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)\b(?P<amt>{AMOUNT})\s?(?P<cur>[$€£¥]|(?:usd|eur|euros?|gbp|chf|cad|aud|jpy|dollars?|bucks|pounds?|quid|francs?)\b)"
    ))
});

fn currency_code(symbol: &str) -> &'static str {
    match symbol.to_lowercase().as_str() {
        "€" | "eur" | "euro" | "euros" => "EUR",
        "£" | "gbp" | "pound" | "pounds" | "quid" => "GBP",
        "¥" | "jpy" => "JPY",
        "chf" | "franc" | "francs" => "CHF",
        "cad" => "CAD",
        "aud" => "AUD",
        _ => "USD",
    }
}

/// `1.200,5` -> `1200.50`: the last separator is the decimal point when 1 or 2 digits follow it.
fn normalise_amount(amount: &str) -> String {
    let (whole, cents) = match amount.rfind(['.', ',']) {
        Some(i) if amount.len() - i - 1 <= 2 => (&amount[..i], &amount[i + 1..]),
        _ => (amount, ""),
    };
    let whole: String = whole.chars().filter(char::is_ascii_digit).collect();
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    format!("{whole}.{cents:0<2}")
}

fn money(text: &str, found: &mut Found) {
    for regex in [&*MONEY_BEFORE, &*MONEY_AFTER] {
        for caps in regex.captures_iter(text) {
            let all = caps.get(0).expect("whole match");
            let value = format!(
                "{} {}",
                normalise_amount(&caps["amt"]),
                currency_code(&caps["cur"])
            );
            found.add(EntityKind::Money, all.start(), all.end(), text, value);
        }
    }
}

// ---------------------------------------------------------------- dates

const MONTH: &str = r"(?P<month>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?";
const WEEKDAY: &str = r"(?P<weekday>monday|tuesday|wednesday|thursday|friday|saturday|sunday)";

static ISO_DATE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b"));
static NUMERIC_DATE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?P<a>\d{1,2})[/.-](?P<b>\d{1,2})[/.-](?P<y>\d{4}|\d{2})\b"));
static DAY_MONTH: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)\b(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTH}(?:,?\s+(?P<year>\d{{4}}))?\b"
    ))
});
static MONTH_DAY: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)\b{MONTH}\s+(?:the\s+)?(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<year>\d{{4}})\b)?"
    ))
});
static RELATIVE_DAY: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:(?:the\s+)?day\s+after\s+tomorrow|(?:the\s+)?day\s+before\s+yesterday|today|tonight|tomorrow|tmrw|yesterday)\b",
    )
});
static IN_DAYS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:in\s+(?P<ahead>\d{1,3}|a|one|two|three|four|five|six|seven)\s+(?P<unit1>days?|weeks?)|(?P<ago>\d{1,3}|a|one|two|three|four|five|six|seven)\s+(?P<unit2>days?|weeks?)\s+ago)\b",
    )
});
static WEEKDAY_DATE: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)\b(?:(?P<which>next|last|this|coming|on)\s+)?{WEEKDAY}\b"
    ))
});

fn month_number(name: &str) -> u32 {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let key = name.to_lowercase();
    MONTHS
        .iter()
        .position(|m| key.starts_with(m))
        .map_or(0, |i| i as u32 + 1)
}

fn small_number(word: &str) -> i64 {
    match word.to_lowercase().as_str() {
        "a" | "one" => 1,
        "two" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        digits => digits.parse().unwrap_or(0),
    }
}

/// A day and month with no year: the year that puts it nearest to today.
fn nearest_year(today: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
    [today.year() - 1, today.year(), today.year() + 1]
        .into_iter()
        .filter_map(|year| NaiveDate::from_ymd_opt(year, month, day))
        .min_by_key(|date| (*date - today).num_days().abs())
}

fn with_year(year: Option<&str>, today: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
    match year.and_then(|y| y.parse::<i32>().ok()) {
        Some(year) => NaiveDate::from_ymd_opt(year, month, day),
        None => nearest_year(today, month, day),
    }
}

fn dates(text: &str, today: NaiveDate, found: &mut Found) {
    let mut add = |caps: &Captures, date: Option<NaiveDate>| {
        if let Some(date) = date {
            let all = caps.get(0).expect("whole match");
            found.add(
                EntityKind::Date,
                all.start(),
                all.end(),
                text,
                date.format("%Y-%m-%d").to_string(),
            );
        }
    };
    let num = |caps: &Captures, name: &str| {
        caps.name(name)
            .and_then(|m| m.as_str().parse::<u32>().ok())
            .unwrap_or(0)
    };
    for caps in ISO_DATE.captures_iter(text) {
        add(
            &caps,
            NaiveDate::from_ymd_opt(num(&caps, "y") as i32, num(&caps, "m"), num(&caps, "d")),
        );
    }
    for caps in NUMERIC_DATE.captures_iter(text) {
        let (a, b) = (num(&caps, "a"), num(&caps, "b"));
        let year = num(&caps, "y") as i32;
        let year = if year < 100 { 2000 + year } else { year };
        // Day first, as most of the world writes it; month first only when b cannot be a month.
        let (day, month) = if b > 12 { (b, a) } else { (a, b) };
        add(&caps, NaiveDate::from_ymd_opt(year, month, day));
    }
    for regex in [&*DAY_MONTH, &*MONTH_DAY] {
        for caps in regex.captures_iter(text) {
            let month = month_number(&caps["month"]);
            let year = caps.name("year").map(|m| m.as_str());
            add(&caps, with_year(year, today, month, num(&caps, "day")));
        }
    }
    for caps in RELATIVE_DAY.captures_iter(text) {
        let word = caps[0].to_lowercase();
        let offset = if word.contains("after") {
            2
        } else if word.contains("before") {
            -2
        } else if word.starts_with("tom") || word == "tmrw" {
            1
        } else if word == "yesterday" {
            -1
        } else {
            0
        };
        add(&caps, Some(today + Duration::days(offset)));
    }
    for caps in IN_DAYS.captures_iter(text) {
        let (count, unit, sign) = match (caps.name("ahead"), caps.name("ago")) {
            (Some(n), _) => (n.as_str(), &caps["unit1"], 1),
            (_, Some(n)) => (n.as_str(), &caps["unit2"], -1),
            _ => continue,
        };
        let days = small_number(count) * if unit.starts_with("week") { 7 } else { 1 };
        add(&caps, Some(today + Duration::days(sign * days)));
    }
    for caps in WEEKDAY_DATE.captures_iter(text) {
        // `(?i)` also matches Unicode case-fold look-alikes chrono does not read (`ſunday`,
        // with the long s): no date then, rather than a panic.
        let Ok(weekday) = caps["weekday"].to_lowercase().parse::<Weekday>() else {
            continue;
        };
        let which = caps.name("which").map(|m| m.as_str().to_lowercase());
        add(
            &caps,
            Some(resolve_weekday(today, weekday, which.as_deref())),
        );
    }
}

/// `next`/`coming`: strictly after today; `last`: strictly before; `this`, `on` or nothing:
/// today or the next one.
fn resolve_weekday(today: NaiveDate, weekday: Weekday, which: Option<&str>) -> NaiveDate {
    let ahead = (weekday.num_days_from_monday() as i64
        - today.weekday().num_days_from_monday() as i64)
        .rem_euclid(7);
    match which {
        Some("next") | Some("coming") => today + Duration::days(if ahead == 0 { 7 } else { ahead }),
        Some("last") => today - Duration::days(if ahead == 0 { 7 } else { 7 - ahead }),
        _ => today + Duration::days(ahead),
    }
}

// ---------------------------------------------------------------- order numbers

static ORDER_WITH_KEYWORD: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:orders?|purchases?|order-?id|ref(?:erence)?)(?:\s*(?:no\.?|nr\.?|num(?:ber)?|id|is|was|ref))*\s*[:#]?\s*(?P<digits>\d{4,15})\b",
    )
});
static ORDER_CODE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)(?:\bord[-_ ]?|#\s?)(?P<digits>\d{4,15})\b"));
static BARE_NUMBER: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d{5,8}\b"));
/// Phone-like: several groups of digits (8 or more digits in all), optional +country code.
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,5}(?:[\s.-]\d{2,8}){1,4}\b")
});
/// Words that make the number after them something other than an order number.
static NOT_ORDER_CONTEXT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:zip|zipcode|postcode|post\s+code|postal\s+code|plz|phone|tel|telephone|mobile|cell|call|fax|whatsapp|tracking|card|iban|pin|cvv|code|account|customer|invoice|bill|sku|item|article|ticket|room|apartment|apt|street|flat)\b[^\d]{0,20}$",
    )
});

fn order_numbers(text: &str, found: &mut Found) {
    // `ORD-10234` and `#10234` first, so that their span covers the marker.
    for caps in ORDER_CODE.captures_iter(text) {
        let all = caps.get(0).expect("whole match");
        // `invoice #00108`, `ticket #55120`: a number, but not an order's.
        if all.as_str().starts_with('#') && NOT_ORDER_CONTEXT.is_match(&text[..all.start()]) {
            continue;
        }
        found.add(
            EntityKind::OrderNumber,
            all.start(),
            all.end(),
            text,
            caps["digits"].to_string(),
        );
    }
    for caps in ORDER_WITH_KEYWORD.captures_iter(text) {
        let digits = caps.name("digits").expect("digits group");
        found.add(
            EntityKind::OrderNumber,
            digits.start(),
            digits.end(),
            text,
            digits.as_str().to_string(),
        );
    }
    for m in PHONE.find_iter(text) {
        let digits = m.as_str().chars().filter(char::is_ascii_digit).count();
        if digits >= 8 && found.is_free(m.start(), m.end()) {
            found.blocked.push((m.start(), m.end()));
        }
    }
    for m in BARE_NUMBER.find_iter(text) {
        let before = &text[..m.start()];
        let after = &text[m.end()..];
        // Part of a decimal, a date, a range or a longer code: `12345.67`, `-12345`, `+4912345`.
        if glued(after.chars()) || glued(before.chars().rev()) || before.ends_with(['+', '-', '/'])
        {
            continue;
        }
        if NOT_ORDER_CONTEXT.is_match(before) {
            continue;
        }
        found.add(
            EntityKind::OrderNumber,
            m.start(),
            m.end(),
            text,
            m.as_str().to_string(),
        );
    }
}

/// Whether the characters next to a number continue it (`.67`, `/03`, `-12`).
fn glued(mut chars: impl Iterator<Item = char>) -> bool {
    matches!((chars.next(), chars.next()), (Some('.' | ',' | '/' | ':' | '-'), Some(c)) if c.is_ascii_digit())
}

#[cfg(test)]
#[path = "entities_tests.rs"]
mod tests;
