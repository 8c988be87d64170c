//! Learning from escalations: what agents' marks (`ConversationRecord::feedback`, written by
//! `desk/feedback.rs`) say of each escalation rule, pure. [`report`] counts, per rule, the
//! escalations marked needed and not needed and their precision (needed / marked), per week
//! and per bucket of the value the rule observed (a tone rule's probability: 0.5–0.6, ...,
//! 0.9–1.0, with what a threshold at each bucket's lower edge would have kept), and the bot
//! answers marked wrong per intent. [`verdict`] is the label a marked conversation carries
//! (the what-if replay scores rules against it); [`examples`] turns marks into labelled
//! messages for `frontdesk train ... --feedback`.
//!
//! Every agent's mark counts once (an agent has at most one escalation mark per
//! conversation); a rule counts once per mark however often it fired in the conversation,
//! with the highest value it observed there (the value a higher threshold would still have
//! fired on). Weeks are those the conversations began in (ISO weeks, Monday first).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::policy::EscalationReason;
use crate::store::{ConversationRecord, Mark, MarkKind};

pub mod examples;

/// The farthest back a window may reach, in days.
pub const MAX_SINCE_DAYS: i64 = 3650;

/// The window's length was not understood.
#[derive(Debug, thiserror::Error)]
#[error(
    "`since` = {0:?}: give a number and a unit, e.g. 30d (days), 12h (hours) or 8w (weeks), \
     at most {MAX_SINCE_DAYS} days"
)]
pub struct BadSince(pub String);

/// The start of a window given as `30d`, `12h` or `8w` (ending `now`).
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, BadSince> {
    let bad = || BadSince(text.chars().take(40).collect());
    let t = text.trim();
    let unit = t.chars().last().ok_or_else(bad)?;
    let n: i64 = t[..t.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let hours = match unit {
        'h' => n,
        'd' => n.checked_mul(24).ok_or_else(bad)?,
        'w' => n.checked_mul(24 * 7).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if !(1..=MAX_SINCE_DAYS * 24).contains(&hours) {
        return Err(bad());
    }
    Ok(now - Duration::hours(hours))
}

/// What the agents' escalation marks say of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every agent who marked it: a person had to see it.
    Needed,
    /// Every agent who marked it: nobody needed to.
    NotNeeded,
    /// The agents disagree: left out of the training examples and the replay's labels.
    Disputed,
}

/// The conversation's label from its escalation marks; `None` when nobody marked its
/// escalation (the what-if replay scores a rule change against it: `Needed` should
/// escalate, `NotNeeded` should not, `Disputed` is not counted).
pub fn verdict(record: &ConversationRecord) -> Option<Verdict> {
    verdict_of(&record.feedback)
}

/// [`verdict`] from a conversation's marks.
pub fn verdict_of(marks: &[Mark]) -> Option<Verdict> {
    let kinds: BTreeSet<bool> = marks
        .iter()
        .filter(|m| m.mark.is_escalation())
        .map(|m| m.mark == MarkKind::Needed)
        .collect();
    match (kinds.contains(&true), kinds.contains(&false)) {
        (true, false) => Some(Verdict::Needed),
        (false, true) => Some(Verdict::NotNeeded),
        (true, true) => Some(Verdict::Disputed),
        (false, false) => None,
    }
}

/// Escalation marks counted: how many said needed and not needed, and the precision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Tally {
    pub needed: usize,
    pub not_needed: usize,
    /// needed / (needed + not_needed); `None` with no marks.
    pub precision: Option<f64>,
}

impl Tally {
    fn add(&mut self, needed: bool) {
        match needed {
            true => self.needed += 1,
            false => self.not_needed += 1,
        }
        self.precision = Some(self.needed as f64 / (self.needed + self.not_needed) as f64);
    }
}

/// One ISO week's marks of a rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeekFigures {
    /// `2026-W49`.
    pub week: String,
    /// Its Monday.
    pub starts: NaiveDate,
    #[serde(flatten)]
    pub tally: Tally,
}

/// The marks of a rule whose observed value fell in `[from, to)` (the last bucket holds 1.0).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketFigures {
    pub from: f64,
    pub to: f64,
    #[serde(flatten)]
    pub tally: Tally,
    /// The marks whose value was at least `from`: what the rule would have escalated with
    /// its threshold at `from`.
    pub at_threshold: Tally,
}

/// What agents' marks say of one rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleFigures {
    pub rule: String,
    /// The condition kind (`message_frustration`, `keywords`...).
    pub when: String,
    /// `escalate` or `boost`.
    pub effect: String,
    #[serde(flatten)]
    pub tally: Tally,
    /// Oldest first.
    pub weeks: Vec<WeekFigures>,
    /// Rules that observe a probability only; buckets with marks, lowest first.
    pub buckets: Vec<BucketFigures>,
}

/// Bot answers marked wrong for one intent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentCount {
    pub intent: String,
    pub answers: usize,
}

/// The cockpit's figures from agents' marks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackReport {
    pub since: DateTime<Utc>,
    /// Conversations read (changed since `since`).
    pub conversations: usize,
    /// The read stopped at its bound: older conversations of the window are not counted.
    pub truncated: bool,
    /// Escalation marks counted, and the conversations they mark.
    pub escalation_marks: usize,
    pub marked_conversations: usize,
    /// Most marks first.
    pub rules: Vec<RuleFigures>,
    /// Distinct bot answers marked wrong.
    pub wrong_answers: usize,
    /// Most first.
    pub wrong_answers_per_intent: Vec<IntentCount>,
}

/// The conditions whose observed value is a probability (0..1), bucketed.
const PROBABILITY_KINDS: &[&str] = &[
    "negative_message",
    "negative_trend",
    "anger",
    "frustration",
    "message_frustration",
    "stakes",
];

/// The probability a tone or stakes rule observed (`{"upset": 0.93}` reads 0.93); `None` for
/// other conditions (a keyword, a tier, an amount).
pub fn observed_probability(reason: &EscalationReason) -> Option<f64> {
    if !PROBABILITY_KINDS.contains(&reason.when.as_str()) {
        return None;
    }
    let v = &reason.value;
    let p = v.as_f64().or_else(|| {
        ["angry", "upset", "confidence"]
            .iter()
            .find_map(|k| v.get(*k).and_then(|x| x.as_f64()))
    })?;
    (0.0..=1.0).contains(&p).then_some(p)
}

/// Per rule of one mark: (its reason as first seen, the highest probability it observed).
fn rules_of(reasons: &[EscalationReason]) -> BTreeMap<&str, (&EscalationReason, Option<f64>)> {
    let mut out: BTreeMap<&str, (&EscalationReason, Option<f64>)> = BTreeMap::new();
    for r in reasons {
        let p = observed_probability(r);
        let e = out.entry(r.rule.as_str()).or_insert((r, p));
        e.1 = match (e.1, p) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    out
}

#[derive(Default)]
struct RuleAcc {
    when: String,
    effect: String,
    tally: Tally,
    weeks: BTreeMap<(i32, u32), (NaiveDate, Tally)>,
    /// (observed value, needed) of each mark with a value.
    values: Vec<(f64, bool)>,
}

/// The figures of the marks on `records` (conversations changed since `since`; `truncated`
/// when the read stopped at its bound).
pub fn report(
    records: &[ConversationRecord],
    since: DateTime<Utc>,
    truncated: bool,
) -> FeedbackReport {
    let mut rules: BTreeMap<String, RuleAcc> = BTreeMap::new();
    let (mut marks, mut marked) = (0, 0);
    let mut wrong: BTreeMap<String, BTreeSet<(String, u64)>> = BTreeMap::new();
    for record in records {
        let date = record.created.date_naive();
        let iso = date.iso_week();
        let monday = date - Duration::days(date.weekday().num_days_from_monday() as i64);
        let mut counted = false;
        for mark in &record.feedback {
            if mark.mark == MarkKind::WrongAnswer {
                let intent = mark.intent.clone().unwrap_or_else(|| "unknown".into());
                let answer = (record.id.0.clone(), mark.message.unwrap_or(u64::MAX));
                wrong.entry(intent).or_default().insert(answer);
                continue;
            }
            let needed = mark.mark == MarkKind::Needed;
            marks += 1;
            counted = true;
            for (rule, (reason, value)) in rules_of(&mark.escalation) {
                let acc = rules.entry(rule.to_string()).or_insert_with(|| RuleAcc {
                    when: reason.when.clone(),
                    effect: serde_json::to_value(reason.effect)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default(),
                    ..RuleAcc::default()
                });
                acc.tally.add(needed);
                let week = acc
                    .weeks
                    .entry((iso.year(), iso.week()))
                    .or_insert((monday, Tally::default()));
                week.1.add(needed);
                if let Some(v) = value {
                    acc.values.push((v, needed));
                }
            }
        }
        marked += usize::from(counted);
    }
    let mut rules: Vec<RuleFigures> = rules
        .into_iter()
        .map(|(rule, acc)| RuleFigures {
            rule,
            when: acc.when,
            effect: acc.effect,
            tally: acc.tally,
            weeks: acc
                .weeks
                .into_iter()
                .map(|((year, week), (starts, tally))| WeekFigures {
                    week: format!("{year}-W{week:02}"),
                    starts,
                    tally,
                })
                .collect(),
            buckets: buckets(&acc.values),
        })
        .collect();
    rules.sort_by(|a, b| {
        let n = |r: &RuleFigures| r.tally.needed + r.tally.not_needed;
        n(b).cmp(&n(a)).then_with(|| a.rule.cmp(&b.rule))
    });
    let mut per_intent: Vec<IntentCount> = wrong
        .into_iter()
        .map(|(intent, answers)| IntentCount {
            intent,
            answers: answers.len(),
        })
        .collect();
    per_intent.sort_by(|a, b| {
        b.answers
            .cmp(&a.answers)
            .then_with(|| a.intent.cmp(&b.intent))
    });
    FeedbackReport {
        since,
        conversations: records.len(),
        truncated,
        escalation_marks: marks,
        marked_conversations: marked,
        rules,
        wrong_answers: per_intent.iter().map(|c| c.answers).sum(),
        wrong_answers_per_intent: per_intent,
    }
}

/// Tenths of 0..1 that hold a mark, lowest first, each with what a threshold at its lower
/// edge would have kept.
fn buckets(values: &[(f64, bool)]) -> Vec<BucketFigures> {
    let tenth = |v: f64| ((v * 10.0).floor() as usize).min(9);
    let mut per: BTreeMap<usize, Tally> = BTreeMap::new();
    for &(v, needed) in values {
        per.entry(tenth(v)).or_default().add(needed);
    }
    per.into_iter()
        .map(|(i, tally)| {
            let from = i as f64 / 10.0;
            let mut at_threshold = Tally::default();
            for &(_, needed) in values.iter().filter(|(v, _)| tenth(*v) >= i) {
                at_threshold.add(needed);
            }
            BucketFigures {
                from,
                to: (i + 1) as f64 / 10.0,
                tally,
                at_threshold,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
