//! Every number of a report against small cases computed by hand, and the pages that show
//! them: the numbers are on the page, hostile test text is shown as text, the SVG is
//! well-formed.

use std::collections::BTreeMap;

use super::*;
use crate::evaluation::{EscalationReport, Expected, Miss, RuleCounts, WhyScore};
use crate::nlu::training::{Prediction, Predictions};

pub(super) const HOSTILE: &str = "<script>alert('x')</script> & \"more\"";

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

fn example(text: &str, truth: usize, predicted: usize, confidence: f32) -> Prediction {
    Prediction {
        text: text.into(),
        truth,
        predicted,
        confidence,
        probabilities: Vec::new(),
    }
}

/// Ten intent answers on three labels (threshold 0.5):
/// billing: right 0.95, right 0.85, refund 0.75, out of scope 0.45;
/// refund: right 0.92, right 0.65, billing 0.55;
/// out of scope: right 0.35, right 0.25, refund 0.62 (the hostile text).
pub(super) fn ten_intents() -> Predictions {
    Predictions {
        labels: vec!["billing".into(), "refund".into(), "out_of_scope".into()],
        examples: vec![
            example("b1", 0, 0, 0.95),
            example("b2", 0, 0, 0.85),
            example("b3", 0, 1, 0.75),
            example("b4", 0, 2, 0.45),
            example("r1", 1, 1, 0.92),
            example("r2", 1, 1, 0.65),
            example("r3", 1, 0, 0.55),
            example("o1", 2, 2, 0.35),
            example("o2", 2, 2, 0.25),
            example(HOSTILE, 2, 1, 0.62),
        ],
        threshold: Some(0.5),
    }
}

#[test]
fn intent_scores_and_confusion_match_the_hand_count() {
    let f = intents("in.csv", &ten_intents());
    let s = &f.scores;
    assert_eq!(s.matrix, vec![vec![2, 1, 1], vec![1, 2, 0], vec![0, 1, 2]]);
    assert!(close(s.accuracy, 0.6));
    let (billing, refund, oos) = (&s.per_label[0], &s.per_label[1], &s.per_label[2]);
    assert!(close(billing.precision, 2.0 / 3.0) && close(billing.recall, 0.5));
    assert!(close(billing.f1, 4.0 / 7.0) && billing.support == 4);
    assert!(close(refund.precision, 0.5) && close(refund.recall, 2.0 / 3.0));
    assert!(close(refund.f1, 4.0 / 7.0) && refund.support == 3);
    assert!(close(oos.precision, 2.0 / 3.0) && close(oos.recall, 2.0 / 3.0));
    assert!(close(s.macro_precision, 11.0 / 18.0) && close(s.macro_recall, 11.0 / 18.0));
    assert!(close(s.macro_f1, 38.0 / 63.0));
    let shares = &f.row_shares;
    assert!(close(shares[0][1], 0.25) && close(shares[1][1], 2.0 / 3.0));
    assert!(close(shares[2][0], 0.0));
    assert_eq!(
        row_shares(&[vec![0, 0]]),
        vec![vec![0.0, 0.0]],
        "an empty row"
    );
}

#[test]
fn confidence_histogram_counts_right_and_wrong_per_bin_and_below_the_threshold() {
    let h = confidence_histogram(&ten_intents(), 10);
    let counts: Vec<(usize, usize)> = h.bins.iter().map(|b| (b.right, b.wrong)).collect();
    assert_eq!(
        counts,
        [
            (0, 0),
            (0, 0),
            (1, 0),
            (1, 0),
            (0, 1),
            (0, 1),
            (1, 1),
            (0, 1),
            (1, 0),
            (2, 0)
        ]
    );
    assert!(close(h.bins[6].lower, 0.6) && close(h.bins[6].upper, 0.7));
    assert_eq!(h.threshold, Some(0.5));
    assert_eq!(h.below_threshold, 3);
    // a confidence of exactly 1 belongs to the last bin
    let mut p = ten_intents();
    p.examples[0].confidence = 1.0;
    assert_eq!(confidence_histogram(&p, 10).bins[9].right, 2);
}

#[test]
fn worst_examples_are_the_most_confident_wrong_answers() {
    let worst = worst_examples(&ten_intents(), 3);
    let got: Vec<(&str, &str, &str, f32)> = worst
        .iter()
        .map(|w| {
            (
                w.text.as_str(),
                w.truth.as_str(),
                w.predicted.as_str(),
                w.confidence,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("b3", "billing", "refund", 0.75),
            (HOSTILE, "out_of_scope", "refund", 0.62),
            ("r3", "refund", "billing", 0.55),
        ]
    );
}

/// Six sentiment answers with their probabilities (negative, neutral, positive).
pub(super) fn six_sentiments() -> Predictions {
    let rows: [(usize, [f32; 3]); 6] = [
        (0, [0.85, 0.10, 0.05]),
        (0, [0.15, 0.80, 0.05]),
        (1, [0.05, 0.65, 0.30]),
        (2, [0.05, 0.35, 0.60]),
        (2, [0.45, 0.15, 0.40]),
        (1, [0.15, 0.82, 0.03]),
    ];
    let examples = rows
        .iter()
        .enumerate()
        .map(|(i, (truth, p))| {
            let (best, &conf) = p
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap();
            Prediction {
                text: format!("s{i}"),
                truth: *truth,
                predicted: best,
                confidence: conf,
                probabilities: p.to_vec(),
            }
        })
        .collect();
    Predictions {
        labels: vec!["negative".into(), "neutral".into(), "positive".into()],
        examples,
        threshold: None,
    }
}

#[test]
fn calibration_bins_and_expected_calibration_error_match_the_hand_count() {
    let c = calibration(&six_sentiments(), 10);
    // top probability: bin 4 {0.45 wrong}, bin 6 {0.65, 0.60 right}, bin 8 {0.85 right,
    // 0.80 wrong, 0.82 right}
    let top = &c.top_label;
    assert_eq!(top.examples, 6);
    let counts: Vec<usize> = top.bins.iter().map(|b| b.count).collect();
    assert_eq!(counts, [0, 0, 0, 0, 1, 0, 2, 0, 3, 0]);
    assert!(close(top.bins[8].mean_predicted, 2.47 / 3.0));
    assert!(close(top.bins[8].observed, 2.0 / 3.0));
    assert!(close(top.bins[6].mean_predicted, 0.625) && close(top.bins[6].observed, 1.0));
    assert!(close(top.bins[4].observed, 0.0));
    // 3/6 × |2/3 − 0.8233| + 2/6 × |1 − 0.625| + 1/6 × |0 − 0.45|
    assert!(close(top.ece, 0.278_333_333), "{}", top.ece);

    assert_eq!(c.classes.len(), 3, "each label of a three-label head");
    let negative = &c.classes[0];
    assert_eq!(negative.label, "negative");
    let counts: Vec<usize> = negative.bins.iter().map(|b| b.count).collect();
    assert_eq!(counts, [2, 2, 0, 0, 1, 0, 0, 0, 1, 0]);
    assert!(close(negative.bins[1].observed, 0.5) && close(negative.bins[0].observed, 0.0));
    // (2 × 0.05 + 2 × 0.35 + 0.45 + 0.15) / 6
    assert!(close(negative.ece, 1.4 / 6.0), "{}", negative.ece);
}

#[test]
fn a_two_label_head_is_calibrated_on_its_positive_label() {
    let p = Predictions {
        labels: vec!["other".into(), "anger".into()],
        examples: vec![
            Prediction {
                text: "a".into(),
                truth: 1,
                predicted: 1,
                confidence: 0.75,
                probabilities: vec![0.25, 0.75],
            },
            Prediction {
                text: "b".into(),
                truth: 0,
                predicted: 1,
                confidence: 0.75,
                probabilities: vec![0.25, 0.75],
            },
        ],
        threshold: None,
    };
    let c = calibration(&p, 10);
    assert_eq!(c.classes.len(), 1);
    assert_eq!(c.classes[0].label, "anger");
    assert_eq!(c.classes[0].bins[7].count, 2);
    assert!(close(c.classes[0].bins[7].observed, 0.5));
    assert!(close(c.classes[0].ece, 0.25));
}

pub(super) fn escalation_report() -> EscalationReport {
    let counts = |tp, fp| RuleCounts {
        true_positives: tp,
        false_positives: fp,
    };
    EscalationReport {
        conversations: 10,
        should_escalate: 4,
        escalated: 5,
        true_positives: 3,
        false_positives: 2,
        false_negatives: 1,
        precision: 0.6,
        recall: 0.75,
        f1: 2.0 / 3.0,
        false_escalations: 2,
        false_escalation_rate: 2.0 / 6.0,
        rules: BTreeMap::from([
            ("legal".to_string(), counts(2, 0)),
            ("angry".to_string(), counts(1, 2)),
            ("vip".to_string(), counts(1, 0)),
        ]),
        per_why: vec![WhyScore {
            why: "<b>sarcasm</b>".into(),
            expected: Expected::Escalate,
            conversations: 2,
            right: 1,
            rate: 0.5,
        }],
        misses: vec![Miss {
            conversation: "c9".into(),
            expected: Expected::Escalate,
            why: Some("<b>sarcasm</b>".into()),
            rules: vec![],
            texts: vec![HOSTILE.into()],
        }],
    }
}

#[test]
fn each_rule_gets_precision_recall_and_f1() {
    let f = escalation("the configured rules", "t.jsonl", &escalation_report());
    assert_eq!(f.confusion, [[3, 1], [2, 4]]);
    let got: Vec<(&str, usize, usize)> = f
        .rules
        .iter()
        .map(|r| (r.rule.as_str(), r.right, r.wrong))
        .collect();
    assert_eq!(
        got,
        [("angry", 1, 2), ("legal", 2, 0), ("vip", 1, 0)],
        "most firings first"
    );
    let (angry, legal, vip) = (&f.rules[0], &f.rules[1], &f.rules[2]);
    assert!(close(angry.precision, 1.0 / 3.0) && close(angry.recall, 0.25));
    assert!(close(angry.f1, 2.0 / 7.0));
    assert!(close(legal.precision, 1.0) && close(legal.recall, 0.5));
    assert!(close(legal.f1, 2.0 / 3.0));
    assert!(close(vip.f1, 0.4));
}
