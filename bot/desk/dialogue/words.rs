//! How the dialogue reads a message's words (a slot's value, a yes, an acknowledgement, a
//! bare order number) and fills an answer's template: pure. Split from `mod.rs`.

use std::collections::BTreeMap;

use crate::nlu::{Analysis, EntityKind};

/// The value this message gives for `slot`: an entity of the slot's kind, or for an order
/// number a bare number of 4 to 12 digits.
pub fn slot_value(analysis: &Analysis, slot: &str) -> Option<String> {
    let kind = match slot {
        "order_number" => EntityKind::OrderNumber,
        "email" => EntityKind::Email,
        "amount" => EntityKind::Money,
        "date" => EntityKind::Date,
        _ => return None,
    };
    if let Some(e) = analysis.entities.iter().find(|e| e.kind == kind) {
        return Some(e.value.clone());
    }
    if kind == EntityKind::OrderNumber {
        return analysis
            .text
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| (4..=12).contains(&w.len()))
            .map(str::to_string);
    }
    None
}

/// "yes", "sure, please", "ok go ahead": a short agreement. An "ok" that closes the
/// conversation ("ok thanks", "ok got it", "ok I'll wait") is no.
pub fn is_affirmative(text: &str) -> bool {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    const YES: &[&str] = &[
        "yes",
        "yeah",
        "yep",
        "yup",
        "sure",
        "ok",
        "okay",
        "please",
        "y",
        "definitely",
        "absolutely",
    ];
    /// Words that, after a mere "ok", close the matter rather than take up the offer.
    const CLOSING: &[&str] = &[
        "thanks",
        "thank",
        "thx",
        "ty",
        "cheers",
        "bye",
        "anyway",
        "nvm",
        "got",
        "fine",
        "cool",
        "wait",
        "later",
        "understood",
        "sorted",
        "nevermind",
        "never",
        // "ok no worries", "ok, no need", "okay no problem": a polite no
        "no",
        "worries",
        "problem",
    ];
    let weak = matches!(words.first(), Some(&"ok") | Some(&"okay"));
    // "ok, I'll send the emails", "ok let me look": the customer's own plan, no yes
    let own_plan = words
        .windows(2)
        .any(|w| matches!(w, ["i", "ll"] | ["i", "will"] | ["let", "me"] | ["i", "m"]));
    !words.is_empty()
        && words.len() <= 6
        && YES.contains(&words[0])
        && !words.contains(&"not")
        && !(weak && (text.contains('?') || own_plan || words.iter().any(|w| CLOSING.contains(w))))
}

/// "ok thanks", "good to know", "fine, I'll wait till thursday then": the customer
/// acknowledges an answer. Out of scope for the intents, but no question the bot failed.
/// The message is one order number and filler words: "order 10014", "and #10040?".
pub fn is_bare_order_number(analysis: &Analysis) -> bool {
    const FILLER: &[&str] = &[
        "order", "and", "also", "no", "number", "nr", "it's", "its", "it", "is", "my", "the",
        "what", "about", "how", "plus", "one", "other", "pls", "please", "too", "then", "ref",
    ];
    let mut numbers = analysis
        .entities
        .iter()
        .filter(|e| e.kind == EntityKind::OrderNumber);
    let (Some(number), None) = (numbers.next(), numbers.next()) else {
        return false;
    };
    let rest = format!(
        "{} {}",
        analysis.text.get(..number.start).unwrap_or_default(),
        analysis.text.get(number.end..).unwrap_or_default()
    )
    .to_lowercase();
    rest.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .all(|w| FILLER.contains(&w))
}

pub fn is_acknowledgement(text: &str) -> bool {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    const OPENERS: &[&str] = &[
        "ok",
        "okay",
        "k",
        "thanks",
        "thank",
        "thx",
        "ty",
        "cheers",
        "great",
        "cool",
        "fine",
        "perfect",
        "lovely",
        "alright",
        "got",
        "good",
        "nice",
        "brilliant",
        "many",
        "noted",
        "understood",
        "ah",
        "oh",
        "right",
        "bye",
        "wonderful",
        "excellent",
        "awesome",
    ];
    !lower.contains('?') && !words.is_empty() && words.len() <= 8 && OPENERS.contains(&words[0])
}

/// Replaces `{name}` with slot or action values; unknown placeholders are dropped.
pub fn render(
    template: &str,
    slots: &BTreeMap<String, String>,
    values: &BTreeMap<String, String>,
) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                if let Some(v) = slots.get(name).or_else(|| values.get(name)) {
                    out.push_str(v);
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    // A dropped placeholder can leave doubled spaces or a space before a full stop.
    let mut cleaned = out.split_whitespace().collect::<Vec<_>>().join(" ");
    while cleaned.contains(" .") {
        cleaned = cleaned.replace(" .", ".");
    }
    cleaned
}
