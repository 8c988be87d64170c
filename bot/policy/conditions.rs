//! When each condition of a rule fires on one turn, and what it observed.

use super::{Condition, Meaning, Situation};
use crate::nlu::Stake;
use serde_json::{json, Value};

/// Whole-word, case-insensitive match of `phrase` (already lower-case) in `text`.
fn contains_phrase(text_lower: &str, phrase: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric();
    let mut from = 0;
    while let Some(pos) = text_lower[from..].find(phrase) {
        let start = from + pos;
        let end = start + phrase.len();
        let before = text_lower[..start].chars().next_back();
        let after = text_lower[end..].chars().next();
        if !before.is_some_and(is_word) && !after.is_some_and(is_word) {
            return true;
        }
        from = start + phrase.len().max(1);
        if from >= text_lower.len() {
            break;
        }
        while !text_lower.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// The observed value when `rule` fires on this turn, or None.
pub(super) fn fires(condition: &Condition, s: &Situation) -> Option<(Value, Value)> {
    match condition {
        Condition::NegativeMessage { .. } if !s.tone_counts() => None,
        // the tweet-trained sentiment head reads a swear word in a routine request as very
        // negative: the support-domain frustration head must hear some upset too
        Condition::NegativeMessage { .. }
            if s.analysis.frustration.upset() < NEGATIVE_NEEDS_UPSET =>
        {
            None
        }
        Condition::NegativeMessage { at_least } => {
            let v = s.analysis.sentiment_scores.negative;
            (v >= *at_least).then(|| (json!(round3(v as f64)), json!(round3(*at_least as f64))))
        }
        Condition::NegativeTrend { window, at_least } => {
            if s.negative_history.len() < *window || s.awaiting_look_up {
                return None;
            }
            let last = &s.negative_history[s.negative_history.len() - window..];
            let mean = last.iter().sum::<f32>() / *window as f32;
            (mean >= *at_least).then(|| {
                (
                    json!(round3(mean as f64)),
                    json!(format!(
                        "mean of last {window} >= {}",
                        round3(*at_least as f64)
                    )),
                )
            })
        }
        Condition::Anger {
            at_least,
            negative_at_least,
        } => {
            let v = s.analysis.anger;
            if negative_at_least.is_some_and(|n| s.analysis.sentiment_scores.negative < n) {
                return None;
            }
            (v >= *at_least).then(|| (json!(round3(v as f64)), json!(round3(*at_least as f64))))
        }
        Condition::Tier { tiers } => {
            let tier = s.tier?.to_lowercase();
            tiers.contains(&tier).then(|| (json!(tier), json!(tiers)))
        }
        Condition::LifetimeValue { at_least } => {
            let v = s.lifetime_value?;
            (v >= *at_least).then(|| (json!(v), json!(at_least)))
        }
        Condition::OrderValue { at_least } => {
            let v = s.order_value?;
            (v >= *at_least).then(|| (json!(v), json!(at_least)))
        }
        Condition::HumanRequest { intents } => intents
            .iter()
            .any(|i| i == s.intent)
            .then(|| (json!(s.intent), json!(intents))),
        Condition::RepeatedFailure { count } => {
            (s.unresolved_turns >= *count).then(|| (json!(s.unresolved_turns), json!(count)))
        }
        Condition::Keywords { words, meaning } => {
            let lower = s.analysis.text.to_lowercase();
            let word = words.iter().find(|w| contains_phrase(&lower, w))?;
            if let Some(m) = meaning.filter(|m| !means(*m, s, &lower, word)) {
                tracing::debug!(word = %word, meaning = ?m, "keyword in another role");
                return None;
            }
            Some((json!(word), json!(words)))
        }
        Condition::Frustration { .. } if s.awaiting_look_up => None,
        Condition::Frustration { at_least } => (s.frustration >= *at_least).then(|| {
            (
                json!(round3(s.frustration as f64)),
                json!(round3(*at_least as f64)),
            )
        }),
        Condition::MessageFrustration {
            angry_at_least,
            upset_at_least,
        } => {
            let f = s.analysis.frustration;
            if let Some(t) = angry_at_least.filter(|t| f.angry >= *t) {
                return Some((
                    json!({ "angry": round3(f.angry as f64) }),
                    json!({ "angry_at_least": round3(t as f64) }),
                ));
            }
            upset_at_least
                .filter(|t| s.tone_counts() && f.upset() >= *t)
                .map(|t| {
                    (
                        json!({ "upset": round3(f.upset() as f64) }),
                        json!({ "upset_at_least": round3(t as f64) }),
                    )
                })
        }
        Condition::Intent { intents } => intents
            .iter()
            .any(|i| i == s.intent)
            .then(|| (json!(s.intent), json!(intents))),
        Condition::Stakes { kinds, at_least } => {
            let read = &s.analysis.stakes;
            let (kind, p) = if kinds.is_empty() {
                read.top()
            } else {
                kinds
                    .iter()
                    .map(|&k| (k, read.of(k)))
                    .fold((kinds[0], f32::MIN), |a, b| if b.1 > a.1 { b } else { a })
            };
            (p >= *at_least).then(|| {
                (
                    json!({ "kind": kind.name(), "confidence": round3(p as f64) }),
                    json!({ "kinds": kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
                            "at_least": round3(*at_least as f64) }),
                )
            })
        }
        Condition::LlmJudge => s.judge.map(|j| {
            (
                json!({ "stakes": j.stakes, "reason": j.reason }),
                json!("a person (LLM judge)"),
            )
        }),
        Condition::LargeOrderProblem {
            value_at_least,
            units_at_least,
        } => {
            let by_value = value_at_least
                .zip(s.order_value)
                .is_some_and(|(min, v)| v >= min);
            let by_units = units_at_least
                .zip(s.order_units)
                .is_some_and(|(min, n)| n >= min);
            if !(by_value || by_units) || !reports_problem(s) {
                return None;
            }
            Some((
                json!({ "kind": Stake::Business.name(), "order_value": s.order_value,
                        "order_units": s.order_units }),
                json!({ "order_value_at_least": value_at_least,
                        "units_at_least": units_at_least }),
            ))
        }
    }
}

/// How upset (frustration head) a message must also sound for `negative_message` to fire.
/// Chosen on the choosing sets (see README.md, "Escalation by stakes"): routine Bitext
/// requests escalated 15 → 10 of 1,046, frustrated support messages recalled the same
/// (0.886), calm ones escalated 9 → 9.
pub const NEGATIVE_NEEDS_UPSET: f32 = 0.5;

/// Intents that report a problem with an order.
const PROBLEM_INTENTS: &[&str] = &["complaint", "return_item", "get_refund", "warranty"];

/// Whether the message reports a problem (a stake, a problem intent, an upset tone), not a
/// routine question about the order.
fn reports_problem(s: &Situation) -> bool {
    let a = s.analysis;
    PROBLEM_INTENTS.contains(&s.intent)
        || a.stakes.at_stake() >= 0.5
        || a.frustration.upset() >= 0.5
}

/// Whether the message uses its keyword in the role `meaning` asks for.
fn means(meaning: Meaning, s: &Situation, lower: &str, word: &str) -> bool {
    let a = s.analysis;
    match meaning {
        // a threat word fires unless the message reads, with confidence, as a routine
        // question or as aimed elsewhere ("is a chargeback the same as a refund?", "my bank
        // is useless"), with no upset, no threat intent and no stake
        Meaning::Threat => {
            let another_role =
                a.stakes.none >= ROUTINE_AT_LEAST || a.stakes.elsewhere() >= ELSEWHERE_AT_LEAST;
            !another_role
                || (a.frustration.upset() >= 0.5 && s.tone_counts())
                || THREAT_INTENTS.contains(&s.intent)
                || a.stakes.at_stake() >= 0.5
        }
        Meaning::Request => !describes_someone(lower, word),
    }
}

/// Whether `word` names someone's job or someone's own person rather than one the customer
/// asks for: "I'm a store manager", "my agent", "as an operator", "our supervisor".
fn describes_someone(lower: &str, word: &str) -> bool {
    let Some(at) = lower.find(word) else {
        return false;
    };
    let before: Vec<&str> = lower[..at]
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .collect();
    let last = |n: usize| before[before.len().saturating_sub(n)..].join(" ");
    // up to one word between ("i'm a store manager", "my line manager")
    (1..=3).any(|n| {
        let tail = last(n);
        SELF_DESCRIBED
            .iter()
            .any(|p| tail == *p || tail.starts_with(&format!("{p} ")))
    })
}

/// What comes before a person word that describes someone rather than asking for them.
const SELF_DESCRIBED: &[&str] = &[
    "i'm a", "i am a", "im a", "i'm an", "i am an", "i'm the", "i am the", "as a", "as an",
    "work as", "my", "our", "his", "her", "their",
];

/// The stakes head's `none` from which a message reads as a routine question.
const ROUTINE_AT_LEAST: f32 = 0.8;
/// The stakes head's look-alikes' share (own life, own mistake, a third party, solved) from
/// which a message reads as aimed elsewhere: the tone rules do not fire on it (the desk's
/// `Situation::aimed_elsewhere`) and a threat word in it is in another role. Chosen on the
/// choosing sets (README.md, "Escalation by stakes").
pub const ELSEWHERE_AT_LEAST: f32 = 0.7;

/// Intents in which a threat word is a threat.
const THREAT_INTENTS: &[&str] = &["threat_to_escalate", "complaint"];
