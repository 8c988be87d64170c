//! How well the escalation rules pick the conversations a person would take: labelled
//! conversations replayed through the full desk (`crate::replay`), scored against what a
//! person would have done. The command around it is `frontdesk eval escalation`
//! (`cli/eval.rs`).
//!
//! Input: replay lines (`{"conversation", "user_id", "text", "profile"?}`) that carry
//! `"expected": "escalate" | "bot"` and optionally `"why"` (a label's category, e.g.
//! "sarcasm", "vip routine"); or plain replay lines with the labels in a separate file of
//! `{"conversation", "expected", "why"?}` lines. A conversation counts as escalated when it
//! ends anywhere but with the bot. Files of labelled single messages (`.tsv`) are read as
//! one-message conversations (`messages.rs`).

mod messages;
pub mod report;
pub use messages::read_message_set;

use crate::message::Status;
use crate::replay::{Outcome, Recorded};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EvaluationError {
    #[error("cannot read labels file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: expected {{\"conversation\", \"expected\": \"escalate\"|\"bot\", \"why\"?}}: {source}")]
    Line {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("conversation {conversation}: {message}")]
    Label {
        conversation: String,
        message: String,
    },
}

/// What a person would have done with a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expected {
    Escalate,
    Bot,
}

impl std::str::FromStr for Expected {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "escalate" => Ok(Expected::Escalate),
            "bot" => Ok(Expected::Bot),
            other => Err(format!(
                "\"expected\" is \"{other}\"; use \"escalate\" or \"bot\""
            )),
        }
    }
}

/// One conversation's label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub conversation: String,
    pub expected: Expected,
    #[serde(default)]
    pub why: Option<String>,
}

/// Reads a labels file (`{"conversation", "expected", "why"?}` per line).
pub fn read_labels(path: &Path) -> Result<Vec<Label>, EvaluationError> {
    let read = |source| EvaluationError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut labels = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(read)?;
        if line.trim().is_empty() {
            continue;
        }
        labels.push(
            serde_json::from_str(&line).map_err(|source| EvaluationError::Line {
                path: path.to_path_buf(),
                line: i + 1,
                source,
            })?,
        );
    }
    Ok(labels)
}

/// The labels carried on the records themselves: every message of a conversation that has
/// `expected` must agree, and every conversation needs one.
pub fn labels_of(records: &[Recorded]) -> Result<Vec<Label>, EvaluationError> {
    let mut labels: Vec<Label> = Vec::new();
    for r in records {
        let Some(expected) = &r.expected else {
            continue;
        };
        let expected: Expected = expected.parse().map_err(|message| EvaluationError::Label {
            conversation: r.conversation.clone(),
            message,
        })?;
        match labels.iter().find(|l| l.conversation == r.conversation) {
            Some(l) if l.expected != expected => {
                return Err(EvaluationError::Label {
                    conversation: r.conversation.clone(),
                    message: "its messages disagree on \"expected\"".into(),
                })
            }
            Some(_) => {}
            None => labels.push(Label {
                conversation: r.conversation.clone(),
                expected,
                why: r.why.clone(),
            }),
        }
    }
    Ok(labels)
}

/// How often a rule fired on conversations rightly and wrongly escalated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleCounts {
    pub true_positives: usize,
    pub false_positives: usize,
}

/// How one label category (`why`) fared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhyScore {
    pub why: String,
    pub expected: Expected,
    pub conversations: usize,
    /// Conversations that ended where the label says.
    pub right: usize,
    /// `right / conversations`: the recall of an `escalate` category, the share kept with
    /// the bot of a `bot` one.
    pub rate: f64,
}

/// A conversation that ended where its label does not say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Miss {
    pub conversation: String,
    pub expected: Expected,
    pub why: Option<String>,
    /// The rules that fired (empty for a missed escalation).
    pub rules: Vec<String>,
    pub texts: Vec<String>,
}

/// The scores of the rules on labelled conversations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationReport {
    pub conversations: usize,
    /// Labelled `escalate`.
    pub should_escalate: usize,
    pub escalated: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Routine conversations (labelled `bot`) that went to a person, and their share.
    pub false_escalations: usize,
    pub false_escalation_rate: f64,
    /// Per fired rule, on rightly and wrongly escalated conversations.
    pub rules: BTreeMap<String, RuleCounts>,
    pub per_why: Vec<WhyScore>,
    /// Missed escalations first, then false ones.
    pub misses: Vec<Miss>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Scores `outcomes` (from `replay::replay` on `records`) against `labels`. Every
/// replayed conversation needs a label.
pub fn evaluate(
    records: &[Recorded],
    outcomes: &[Outcome],
    labels: &[Label],
) -> Result<EscalationReport, EvaluationError> {
    let by_name: BTreeMap<&str, &Label> = labels
        .iter()
        .map(|l| (l.conversation.as_str(), l))
        .collect();
    let mut texts: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in records {
        texts
            .entry(r.conversation.as_str())
            .or_default()
            .push(r.text.clone());
    }
    let (mut tp, mut fp, mut fneg) = (0, 0, 0);
    let mut should = 0;
    let mut rules: BTreeMap<String, RuleCounts> = BTreeMap::new();
    let mut whys: BTreeMap<(String, Expected), (usize, usize)> = BTreeMap::new();
    let mut missed = Vec::new();
    let mut false_ones = Vec::new();
    for o in outcomes {
        let label = by_name
            .get(o.conversation.as_str())
            .ok_or_else(|| EvaluationError::Label {
                conversation: o.conversation.clone(),
                message: "has no label (\"expected\")".into(),
            })?;
        let escalated = o.status != Status::Bot;
        let wanted = label.expected == Expected::Escalate;
        should += usize::from(wanted);
        let mut fired: Vec<String> = Vec::new();
        for r in &o.reasons {
            if !fired.contains(&r.rule) {
                fired.push(r.rule.clone());
            }
        }
        if escalated {
            for rule in &fired {
                let c = rules.entry(rule.clone()).or_default();
                if wanted {
                    c.true_positives += 1;
                } else {
                    c.false_positives += 1;
                }
            }
        }
        let right = escalated == wanted;
        match (wanted, escalated) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fneg += 1,
            (false, false) => {}
        }
        let why = label.why.clone().unwrap_or_else(|| "(none)".into());
        let w = whys.entry((why, label.expected)).or_default();
        w.0 += 1;
        w.1 += usize::from(right);
        if !right {
            let miss = Miss {
                conversation: o.conversation.clone(),
                expected: label.expected,
                why: label.why.clone(),
                rules: fired,
                texts: texts.remove(o.conversation.as_str()).unwrap_or_default(),
            };
            if wanted {
                missed.push(miss);
            } else {
                false_ones.push(miss);
            }
        }
    }
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fneg);
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    let mut per_why: Vec<WhyScore> = whys
        .into_iter()
        .map(|((why, expected), (n, right))| WhyScore {
            why,
            expected,
            conversations: n,
            right,
            rate: ratio(right, n),
        })
        .collect();
    per_why.sort_by(|a, b| {
        (a.expected != Expected::Escalate, &a.why).cmp(&(b.expected != Expected::Escalate, &b.why))
    });
    missed.extend(false_ones);
    Ok(EscalationReport {
        conversations: outcomes.len(),
        should_escalate: should,
        escalated: tp + fp,
        true_positives: tp,
        false_positives: fp,
        false_negatives: fneg,
        precision,
        recall,
        f1,
        false_escalations: fp,
        false_escalation_rate: ratio(fp, outcomes.len() - should),
        rules,
        per_why,
        misses: missed,
    })
}

impl EscalationReport {
    /// The report as tables, for a person.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} conversations ({} should go to a person): escalated {}\n\
             precision {:.3}  recall {:.3}  F1 {:.3}  (tp {}, fp {}, fn {})\n\
             false escalations of routine conversations: {} of {} ({:.1}%)\n",
            self.conversations,
            self.should_escalate,
            self.escalated,
            self.precision,
            self.recall,
            self.f1,
            self.true_positives,
            self.false_positives,
            self.false_negatives,
            self.false_escalations,
            self.conversations - self.should_escalate,
            100.0 * self.false_escalation_rate,
        );
        out.push_str("\nrules fired on escalated conversations (right / wrong):\n");
        let w = self.rules.keys().map(|k| k.len()).max().unwrap_or(4);
        for (rule, c) in &self.rules {
            out.push_str(&format!(
                "  {rule:w$}  {:>4} / {:<4}\n",
                c.true_positives, c.false_positives
            ));
        }
        out.push_str("\nper label (escalate: recall; bot: kept with the bot):\n");
        let w = self.per_why.iter().map(|s| s.why.len()).max().unwrap_or(4);
        for s in &self.per_why {
            let kind = match s.expected {
                Expected::Escalate => "escalate",
                Expected::Bot => "bot",
            };
            out.push_str(&format!(
                "  {kind:8}  {:w$}  {:>3}/{:<3}  {:.2}\n",
                s.why, s.right, s.conversations, s.rate
            ));
        }
        if !self.misses.is_empty() {
            out.push_str("\nmisses:\n");
        }
        for m in &self.misses {
            let kind = match m.expected {
                Expected::Escalate => "missed",
                Expected::Bot => "false escalation",
            };
            out.push_str(&format!(
                "  {} [{}] {}{}\n      {}\n",
                m.conversation,
                kind,
                m.why.as_deref().unwrap_or("-"),
                if m.rules.is_empty() {
                    String::new()
                } else {
                    format!(" (rules: {})", m.rules.join(", "))
                },
                m.texts.join(" | "),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Effect, EscalationReason};

    fn record(conversation: &str, text: &str, expected: &str, why: &str) -> Recorded {
        serde_json::from_value(serde_json::json!({
            "conversation": conversation, "user_id": "u", "text": text,
            "expected": expected, "why": why,
        }))
        .unwrap()
    }

    fn outcome(conversation: &str, rule: Option<&str>) -> Outcome {
        Outcome {
            conversation: conversation.into(),
            status: if rule.is_some() {
                Status::Queued
            } else {
                Status::Bot
            },
            queue: rule.map(|_| "general".into()),
            reasons: rule
                .map(|r| {
                    vec![EscalationReason {
                        rule: r.into(),
                        when: "keywords".into(),
                        value: serde_json::json!("x"),
                        threshold: serde_json::json!("x"),
                        effect: Effect::Escalate,
                        priority: 1,
                        details: vec![],
                    }]
                })
                .unwrap_or_default(),
            replies: vec![],
        }
    }

    #[test]
    fn scores_precision_recall_rules_and_misses() {
        let records = vec![
            record("a", "lawyer!", "escalate", "legal"),
            record("a", "now", "escalate", "legal"),
            record("b", "where is it", "bot", "tracking"),
            record("c", "manager please", "escalate", "person"),
            record("d", "sue you", "escalate", "legal"),
        ];
        let labels = labels_of(&records).unwrap();
        assert_eq!(labels.len(), 4);
        let outcomes = vec![
            outcome("a", Some("legal")),
            outcome("b", Some("legal")),
            outcome("c", None),
            outcome("d", Some("legal")),
        ];
        let r = evaluate(&records, &outcomes, &labels).unwrap();
        assert_eq!(
            (r.true_positives, r.false_positives, r.false_negatives),
            (2, 1, 1)
        );
        assert!((r.precision - 2.0 / 3.0).abs() < 1e-9);
        assert!((r.recall - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(r.false_escalations, 1);
        assert_eq!(r.false_escalation_rate, 1.0);
        assert_eq!(
            r.rules["legal"],
            RuleCounts {
                true_positives: 2,
                false_positives: 1
            }
        );
        let legal = r.per_why.iter().find(|w| w.why == "legal").unwrap();
        assert_eq!((legal.right, legal.conversations), (2, 2));
        assert_eq!(r.misses[0].conversation, "c");
        assert_eq!(r.misses[0].texts, vec!["manager please".to_string()]);
        assert_eq!(r.misses[1].conversation, "b");
        assert!(r.render().contains("precision 0.667"));
    }

    #[test]
    fn disagreeing_or_missing_labels_are_errors() {
        let records = vec![
            record("a", "x", "escalate", "w"),
            record("a", "y", "bot", "w"),
        ];
        assert!(labels_of(&records).is_err());
        let records = vec![record("a", "x", "escalate", "w")];
        let err = evaluate(
            &records,
            &[outcome("zzz", None)],
            &labels_of(&records).unwrap(),
        );
        assert!(err.is_err());
    }
}
