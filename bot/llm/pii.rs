//! Personal data masked before text leaves the machine: emails, card numbers (Luhn-checked),
//! phone numbers and street addresses become placeholders like `[email 1]`. The same value
//! gets the same placeholder in every text masked with one [`Masking`], and the placeholders
//! can be put back locally ([`Masking::unmask`]) in the reply a customer sees.

use regex::Regex;
use std::sync::OnceLock;

/// The kinds of personal data that are masked, in the order they are looked for (cards
/// before phones: a card number also looks like a long phone number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PiiKind {
    Email,
    Card,
    Phone,
    Address,
}

impl PiiKind {
    pub fn label(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Card => "card",
            PiiKind::Phone => "phone",
            PiiKind::Address => "address",
        }
    }
}

struct Patterns {
    email: Regex,
    card: Regex,
    phone: Regex,
    address: Regex,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| Patterns {
        email: Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b").expect("email"),
        // 13 to 19 digits, optionally grouped by spaces or hyphens.
        card: Regex::new(r"\b\d(?:[ -]?\d){12,18}\b").expect("card"),
        // 7 to 15 digits with the usual separators, optionally international.
        phone: Regex::new(r"(?:\+|\b)\d(?:[ ./-]?\(?\d\)?){6,14}\b").expect("phone"),
        // A house number, one to three capitalised words and a street word ("221B Baker
        // Street"), or a German street name with its number ("Hauptstraße 12").
        address: Regex::new(
            r"\b\d{1,5}[A-Za-z]?\s+(?:[A-ZÄÖÜ][a-zäöüß'.-]*\s+){1,3}(?:Street|Avenue|Road|Lane|Boulevard|Drive|Way|Court|Place|St|Ave|Rd|Ln|Blvd|Dr|Ct|Pl)\b\.?|\b[A-ZÄÖÜ][a-zäöüß-]*(?:straße|strasse|str\.|weg|gasse|allee|platz)\s+\d{1,5}[a-z]?\b",
        )
        .expect("address"),
    })
}

/// Whether `digits` (digits only) passes the Luhn check of card numbers.
pub fn luhn_valid(digits: &str) -> bool {
    if digits.len() < 13 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// `2026-11-19` or `19.11.2026`: digits that look like a phone number but are a date.
fn is_date(text: &str) -> bool {
    static DATE: OnceLock<Regex> = OnceLock::new();
    DATE.get_or_init(|| {
        Regex::new(r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})$")
            .expect("date")
    })
    .is_match(text)
}

/// The placeholders given so far, shared by the texts of one request.
#[derive(Debug, Default, Clone)]
pub struct Masking {
    /// (placeholder, original), in the order they were given.
    found: Vec<(String, String)>,
}

impl Masking {
    pub fn new() -> Self {
        Masking::default()
    }

    /// `text` with every piece of personal data replaced by its placeholder.
    pub fn mask(&mut self, text: &str) -> String {
        let p = patterns();
        let mut out = self.replace(text, PiiKind::Email, &p.email, |_| true);
        out = self.replace(&out, PiiKind::Card, &p.card, |m| {
            luhn_valid(&m.chars().filter(char::is_ascii_digit).collect::<String>())
        });
        out = self.replace(&out, PiiKind::Phone, &p.phone, |m| {
            m.chars().filter(char::is_ascii_digit).count() >= 7 && !is_date(m)
        });
        self.replace(&out, PiiKind::Address, &p.address, |_| true)
    }

    /// `text` with the placeholders of this masking put back (for the reply shown locally).
    pub fn unmask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (placeholder, original) in &self.found {
            out = out.replace(placeholder.as_str(), original);
        }
        out
    }

    /// How many values were masked.
    pub fn len(&self) -> usize {
        self.found.len()
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    fn replace(
        &mut self,
        text: &str,
        kind: PiiKind,
        pattern: &Regex,
        accept: impl Fn(&str) -> bool,
    ) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for m in pattern.find_iter(text) {
            // An address match may end on the separator after the street word: keep it.
            let value = m
                .as_str()
                .trim_end_matches([' ', ',', '.', ';', '\n', '\t']);
            if !accept(value) {
                continue;
            }
            out.push_str(&text[last..m.start()]);
            out.push_str(&self.placeholder(kind, value));
            last = m.start() + value.len();
        }
        out.push_str(&text[last..]);
        out
    }

    fn placeholder(&mut self, kind: PiiKind, value: &str) -> String {
        if let Some((placeholder, _)) = self.found.iter().find(|(_, v)| v == value) {
            return placeholder.clone();
        }
        let n = self
            .found
            .iter()
            .filter(|(p, _)| p.starts_with(&format!("[{} ", kind.label())))
            .count()
            + 1;
        let placeholder = format!("[{} {n}]", kind.label());
        self.found.push((placeholder.clone(), value.to_string()));
        placeholder
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(text: &str) -> String {
        Masking::new().mask(text)
    }

    #[test]
    fn emails_become_numbered_placeholders() {
        assert_eq!(
            mask("write to emma.becker@example.com or liam@shop.example"),
            "write to [email 1] or [email 2]"
        );
    }

    #[test]
    fn a_valid_card_number_is_masked_and_an_invalid_one_is_not() {
        assert_eq!(mask("card 4111 1111 1111 1111 ok"), "card [card 1] ok");
        assert_eq!(mask("card 4111-1111-1111-1111"), "card [card 1]");
        // Fails the Luhn check: a long reference, not a card; still too long for a phone.
        assert!(luhn_valid("4111111111111111"));
        assert!(!luhn_valid("4111111111111112"));
    }

    #[test]
    fn phone_numbers_are_masked_but_order_numbers_are_not() {
        assert_eq!(
            mask("call me on +49 30 1234567 about order 10001"),
            "call me on [phone 1] about order 10001"
        );
        assert_eq!(mask("call 030 1234567"), "call [phone 1]");
        assert_eq!(
            mask("your order 10001 is on its way"),
            "your order 10001 is on its way"
        );
        assert_eq!(
            mask("order 10001 placed on 2026-11-19"),
            "order 10001 placed on 2026-11-19"
        );
    }

    #[test]
    fn street_addresses_are_masked() {
        assert_eq!(
            mask("send it to 221B Baker Street, London"),
            "send it to [address 1], London"
        );
        assert_eq!(
            mask("ich wohne in der Hauptstraße 12, Berlin"),
            "ich wohne in der [address 1], Berlin"
        );
    }

    #[test]
    fn the_same_value_gets_the_same_placeholder_across_texts() {
        let mut masking = Masking::new();
        let a = masking.mask("I am a@b.example");
        let b = masking.mask("again: a@b.example, and c@d.example");
        assert_eq!(a, "I am [email 1]");
        assert_eq!(b, "again: [email 1], and [email 2]");
        assert_eq!(masking.len(), 2);
    }

    #[test]
    fn unmask_puts_the_originals_back_locally() {
        let mut masking = Masking::new();
        let masked = masking.mask("mail a@b.example, phone +44 20 7946 0958");
        assert!(!masked.contains("a@b.example"));
        let reply = "We wrote to [email 1] and will call [phone 1].";
        assert_eq!(
            masking.unmask(reply),
            "We wrote to a@b.example and will call +44 20 7946 0958."
        );
    }

    #[test]
    fn text_without_personal_data_is_unchanged() {
        let text = "Where is my order 10001? It was 189.00 EUR.";
        assert_eq!(mask(text), text);
    }
}
