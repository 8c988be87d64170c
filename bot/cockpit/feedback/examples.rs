//! From agents' marks to labelled messages for the tone heads (`frontdesk train
//! frustration|sentiment|anger --feedback`), pure.
//!
//! [`line`] is one line of `frontdesk feedback export`: a marked conversation, its marks, its
//! verdict, the rules of its escalation and, for the tone rules, the customer messages whose
//! reading fired them (found by the value the rule recorded). No other text of the
//! conversation leaves the store.
//!
//! [`head_examples`] reads those lines conservatively. Only conversations whose agents agree
//! ([`Verdict::Needed`] or [`Verdict::NotNeeded`]) teach, and only through the rules that read
//! one message of the head being trained:
//!
//! | rule (`when`)                      | head        | not needed | needed                 |
//! |------------------------------------|-------------|------------|------------------------|
//! | `message_frustration`, angry fired | frustration | calm       | angry                  |
//! | `message_frustration`, upset fired | frustration | calm       | frustrated (angry when |
//! |                                    |             |            | it read angry higher)  |
//! | `negative_message`                 | sentiment   | neutral    | negative               |
//! | `anger`                            | anger       | other      | anger                  |
//!
//! "Not needed" says no person had to see the conversation, so no reading that sent it to
//! one was right: each firing message teaches calm (never positive: nobody said so).
//! "Needed" teaches upset only when every escalating rule of the conversation read the
//! customer's tone (the rules above, `negative_trend`, the `frustration` score): with a stake,
//! a keyword, a request for a person or a tier beside them, the person may have been needed
//! for that. Rules over several messages or the whole conversation (`negative_trend`, the
//! `frustration` score) label no message themselves: no single message carries their reading.
//! A text that two marks label differently is left out.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{rules_of, verdict, Verdict};
use crate::message::Speaker;
use crate::nlu::training::TextTask;
use crate::policy::{Effect, EscalationReason};
use crate::store::{ConversationRecord, Mark, StoredMessage};

/// One line of `frontdesk feedback export`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackLine {
    pub conversation: String,
    pub created: DateTime<Utc>,
    /// The agents' agreement on its escalation; `None` with wrong-answer marks only.
    pub verdict: Option<Verdict>,
    pub marks: Vec<Mark>,
    /// The rules of the escalation the newest escalation mark judged, once each.
    #[serde(default)]
    pub fired: Vec<FiredRule>,
}

/// A rule of a marked escalation and, for a tone rule, the messages that fired it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiredRule {
    pub rule: String,
    pub when: String,
    pub effect: Effect,
    pub value: Value,
    pub threshold: Value,
    #[serde(default)]
    pub messages: Vec<FiringMessage>,
}

/// A customer message whose reading fired a tone rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiringMessage {
    /// Its index in the conversation.
    pub index: u64,
    pub text: String,
    /// The head's probabilities when it was read, in the head's label order (frustration:
    /// calm, frustrated, angry; sentiment: negative, neutral, positive; anger: other, anger).
    pub scores: Vec<f32>,
}

/// Which reading of a head a tone rule compares with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading {
    /// The frustration head's angry probability.
    Angry,
    /// The frustration head's frustrated + angry.
    Upset,
    /// The sentiment head's negative probability.
    Negative,
    /// The anger head's anger probability.
    Anger,
}

impl Reading {
    /// The reading from a head's probabilities (in its label order).
    pub fn of(self, p: &[f32]) -> f32 {
        let at = |i: usize| p.get(i).copied().unwrap_or(0.0);
        match self {
            Reading::Angry => at(2),
            Reading::Upset => at(1) + at(2),
            Reading::Negative => at(0),
            Reading::Anger => at(1),
        }
    }

    /// The head that gives this reading.
    pub fn head(self) -> TextTask {
        match self {
            Reading::Angry | Reading::Upset => TextTask::Frustration,
            Reading::Negative => TextTask::Sentiment,
            Reading::Anger => TextTask::Anger,
        }
    }

    /// What a tone rule (its `when` and recorded value) read; `None` for other rules.
    fn of_rule(when: &str, value: &Value) -> Option<(Reading, f32)> {
        let num = |v: &Value| v.as_f64().map(|x| x as f32);
        match when {
            "message_frustration" => match (value.get("angry"), value.get("upset")) {
                (Some(v), _) => Some((Reading::Angry, num(v)?)),
                (None, Some(v)) => Some((Reading::Upset, num(v)?)),
                _ => None,
            },
            "negative_message" => Some((Reading::Negative, num(value)?)),
            "anger" => Some((Reading::Anger, num(value)?)),
            _ => None,
        }
    }
}

/// The threshold a tone rule compared its reading with (`{"upset_at_least": 0.9}`, `0.9`).
fn threshold_of(threshold: &Value) -> Option<f32> {
    threshold
        .as_f64()
        .or_else(|| {
            ["angry_at_least", "upset_at_least"]
                .iter()
                .find_map(|k| threshold.get(*k).and_then(Value::as_f64))
        })
        .map(|x| x as f32)
}

/// A customer message's probabilities for the head giving `reading`.
fn scores(m: &StoredMessage, reading: Reading) -> Option<Vec<f32>> {
    let a = m.analysis.as_ref()?;
    Some(match reading.head() {
        TextTask::Frustration => vec![
            a.frustration.calm,
            a.frustration.frustrated,
            a.frustration.angry,
        ],
        TextTask::Sentiment => {
            let s = &a.sentiment_scores;
            vec![s.negative, s.neutral, s.positive]
        }
        _ => vec![1.0 - a.anger, a.anger],
    })
}

/// The export line of a conversation with marks (`None` without); `transcript` is its
/// messages.
pub fn line(record: &ConversationRecord, transcript: &[StoredMessage]) -> Option<FeedbackLine> {
    if record.feedback.is_empty() {
        return None;
    }
    let judged: &[EscalationReason] = record
        .feedback
        .iter()
        .filter(|m| m.mark.is_escalation())
        .max_by_key(|m| m.at)
        .map_or(&[], |m| &m.escalation);
    let fired = rules_of(judged)
        .into_values()
        .map(|(r, _)| FiredRule {
            rule: r.rule.clone(),
            when: r.when.clone(),
            effect: r.effect,
            value: r.value.clone(),
            threshold: r.threshold.clone(),
            messages: firing(judged, &r.rule, transcript),
        })
        .collect();
    Some(FeedbackLine {
        conversation: record.id.0.clone(),
        created: record.created,
        verdict: verdict(record),
        marks: record.feedback.clone(),
        fired,
    })
}

/// The customer messages whose reading is a value rule `rule` recorded (rounded to 3
/// places, as the policy records it): the messages that fired it.
fn firing(
    judged: &[EscalationReason],
    rule: &str,
    transcript: &[StoredMessage],
) -> Vec<FiringMessage> {
    let mut out: Vec<FiringMessage> = Vec::new();
    for reason in judged.iter().filter(|x| x.rule == rule) {
        let Some((reading, value)) = Reading::of_rule(&reason.when, &reason.value) else {
            continue;
        };
        for (i, m) in transcript.iter().enumerate() {
            if m.from != Speaker::Customer || out.iter().any(|f| f.index == i as u64) {
                continue;
            }
            let Some(p) = scores(m, reading) else {
                continue;
            };
            if ((reading.of(&p) * 1000.0).round() - (value * 1000.0).round()).abs() < 0.5 {
                out.push(FiringMessage {
                    index: i as u64,
                    text: m.text.clone(),
                    scores: p,
                });
            }
        }
    }
    out
}

/// One labelled message for a head, with what it stands for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadExample {
    pub text: String,
    /// The head's label it teaches (`calm`, `neutral`, `other`, `angry`...).
    pub label: &'static str,
    pub conversation: String,
    pub rule: String,
    pub verdict: Verdict,
    /// What the rule read, and the threshold it fired at: the decision the retrained head
    /// should change (not needed: below it; needed: at or above it).
    pub reading: Reading,
    pub threshold: f32,
    /// The reading when the message was first read.
    pub read_then: f32,
}

impl HeadExample {
    /// Whether the rule fires on a head's probabilities `p` for this message.
    pub fn fires(&self, p: &[f32]) -> bool {
        self.reading.of(p) >= self.threshold
    }

    /// Whether probabilities `p` give the decision the agents asked for.
    pub fn as_marked(&self, p: &[f32]) -> bool {
        self.fires(p) == (self.verdict == Verdict::Needed)
    }
}

/// The labelled messages `lines` give head `task` (see the module's table); one per text.
pub fn head_examples(lines: &[FeedbackLine], task: TextTask) -> Vec<HeadExample> {
    let mut by_text: BTreeMap<String, Option<HeadExample>> = BTreeMap::new();
    for line in lines {
        let Some(verdict) = line.verdict.filter(|v| *v != Verdict::Disputed) else {
            continue;
        };
        let escalating: Vec<&FiredRule> = line
            .fired
            .iter()
            .filter(|r| r.effect == Effect::Escalate)
            .collect();
        let only_tone = escalating
            .iter()
            .all(|r| TONE_RULES.contains(&r.when.as_str()));
        for rule in &line.fired {
            let Some((reading, _)) = Reading::of_rule(&rule.when, &rule.value) else {
                continue;
            };
            let Some(threshold) = threshold_of(&rule.threshold) else {
                continue;
            };
            if reading.head() != task || (verdict == Verdict::Needed && !only_tone) {
                continue;
            }
            for m in rule.messages.iter().filter(|m| !m.text.trim().is_empty()) {
                let label = label(reading, verdict, &m.scores);
                let example = HeadExample {
                    text: m.text.clone(),
                    label,
                    conversation: line.conversation.clone(),
                    rule: rule.rule.clone(),
                    verdict,
                    reading,
                    threshold,
                    read_then: reading.of(&m.scores),
                };
                let key = m.text.trim().to_lowercase();
                match by_text.get(&key) {
                    None => {
                        by_text.insert(key, Some(example));
                    }
                    // the same words labelled both ways: neither is kept
                    Some(Some(old)) if old.label != label => {
                        by_text.insert(key, None);
                    }
                    Some(_) => {}
                }
            }
        }
    }
    by_text.into_values().flatten().collect()
}

/// The conditions that read the customer's tone (one message's, or the conversation's).
const TONE_RULES: &[&str] = &[
    "message_frustration",
    "negative_message",
    "anger",
    "negative_trend",
    "frustration",
];

/// The label a message that fired a `reading` rule gets from `verdict`.
fn label(reading: Reading, verdict: Verdict, scores: &[f32]) -> &'static str {
    let needed = verdict == Verdict::Needed;
    match (reading, needed) {
        (Reading::Angry | Reading::Upset, false) => "calm",
        (Reading::Angry, true) => "angry",
        (Reading::Upset, true) => match scores.get(2) > scores.get(1) {
            true => "angry",
            false => "frustrated",
        },
        (Reading::Negative, false) => "neutral",
        (Reading::Negative, true) => "negative",
        (Reading::Anger, false) => "other",
        (Reading::Anger, true) => "anger",
    }
}

/// `examples` as the trainer reads a data file: `label<TAB>text` lines under a header, each
/// text on one line.
pub fn tsv(examples: &[HeadExample]) -> String {
    let mut out = String::from("label\ttext\n");
    for e in examples {
        let text: String = e
            .text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        out.push_str(&format!("{}\t{}\n", e.label, text.trim()));
    }
    out
}

#[cfg(test)]
#[path = "examples_tests.rs"]
mod tests;
