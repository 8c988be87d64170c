//! From a head's answers or an escalation run to the figures of a report: pure functions,
//! no I/O, every number checked by hand in `tests.rs`.

use super::{
    Calibration, CalibrationBin, ClassificationFigures, ConfidenceBin, ConfidenceHistogram,
    EscalationFigures, Reliability, RuleFigures, WorstExample,
};
use crate::evaluation::EscalationReport;
use crate::nlu::training::{Prediction, Predictions};

/// Bars of the intent report's confidence histogram (width 0.05).
pub const CONFIDENCE_BINS: usize = 20;
/// Bins of a reliability curve (width 0.1).
pub const CALIBRATION_BINS: usize = 10;
/// Rows of the worst-examples table.
pub const WORST_EXAMPLES: usize = 25;

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn harmonic(p: f64, r: f64) -> f64 {
    if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    }
}

/// The bin of `p` among `bins` equal-width bins over [0, 1]: [lower, upper), 1 in the last;
/// values outside [0, 1] (or not a number) land in the nearest end bin.
fn bin_of(p: f64, bins: usize) -> usize {
    let i = (p * bins as f64).floor();
    if i.is_nan() || i < 0.0 {
        0
    } else {
        (i as usize).min(bins - 1)
    }
}

/// The edges of bin `i` of `bins`.
fn edges(i: usize, bins: usize) -> (f64, f64) {
    (i as f64 / bins as f64, (i + 1) as f64 / bins as f64)
}

/// The intent report: scores, confusion shares, the confidence histogram with the
/// out-of-scope threshold and the worst examples.
pub fn intents(test_file: &str, p: &Predictions) -> ClassificationFigures {
    let scores = p.report();
    ClassificationFigures {
        what: "intents".into(),
        test_file: test_file.into(),
        row_shares: row_shares(&scores.matrix),
        scores,
        confidence: Some(confidence_histogram(p, CONFIDENCE_BINS)),
        worst: worst_examples(p, WORST_EXAMPLES),
        calibration: None,
    }
}

/// A message head's report (`what`: sentiment, anger, frustration, stakes): scores,
/// confusion shares, calibration and the worst examples.
pub fn message_head(what: &str, test_file: &str, p: &Predictions) -> ClassificationFigures {
    let scores = p.report();
    ClassificationFigures {
        what: what.into(),
        test_file: test_file.into(),
        row_shares: row_shares(&scores.matrix),
        scores,
        confidence: None,
        worst: worst_examples(p, WORST_EXAMPLES),
        calibration: Some(calibration(p, CALIBRATION_BINS)),
    }
}

/// Each row divided by its total; an empty row stays all zeros.
pub fn row_shares(matrix: &[Vec<usize>]) -> Vec<Vec<f64>> {
    matrix
        .iter()
        .map(|row| {
            let total: usize = row.iter().sum();
            row.iter().map(|&c| ratio(c, total)).collect()
        })
        .collect()
}

/// The top probability of every example in `bins` equal-width bins, right and wrong
/// answers counted apart, with the threshold of `p` and how many fell below it.
pub fn confidence_histogram(p: &Predictions, bins: usize) -> ConfidenceHistogram {
    let bins = bins.max(1);
    let mut out: Vec<ConfidenceBin> = (0..bins)
        .map(|i| {
            let (lower, upper) = edges(i, bins);
            ConfidenceBin {
                lower,
                upper,
                right: 0,
                wrong: 0,
            }
        })
        .collect();
    for e in &p.examples {
        let b = &mut out[bin_of(f64::from(e.confidence), bins)];
        if e.truth == e.predicted {
            b.right += 1;
        } else {
            b.wrong += 1;
        }
    }
    ConfidenceHistogram {
        bins: out,
        threshold: p.threshold,
        below_threshold: p.threshold.map_or(0, |t| {
            p.examples.iter().filter(|e| e.confidence < t).count()
        }),
    }
}

/// The `n` wrong answers with the highest confidence, most confident first (ties in file
/// order).
pub fn worst_examples(p: &Predictions, n: usize) -> Vec<WorstExample> {
    let mut wrong: Vec<&Prediction> = p
        .examples
        .iter()
        .filter(|e| e.truth != e.predicted)
        .collect();
    wrong.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let label = |i: usize| p.labels.get(i).cloned().unwrap_or_else(|| i.to_string());
    wrong
        .into_iter()
        .take(n)
        .map(|e| WorstExample {
            text: e.text.clone(),
            truth: label(e.truth),
            predicted: label(e.predicted),
            confidence: e.confidence,
        })
        .collect()
}

/// A reliability curve of `(probability, happened)` pairs in `bins` equal-width bins,
/// with its expected calibration error.
pub fn reliability(
    label: &str,
    pairs: impl IntoIterator<Item = (f64, bool)>,
    bins: usize,
) -> Reliability {
    let n = bins.max(1);
    // (count, sum of probabilities, events)
    let mut sums = vec![(0usize, 0.0f64, 0usize); n];
    for (prob, happened) in pairs {
        let s = &mut sums[bin_of(prob, n)];
        s.0 += 1;
        s.1 += prob;
        s.2 += usize::from(happened);
    }
    let examples: usize = sums.iter().map(|s| s.0).sum();
    let bins: Vec<CalibrationBin> = sums
        .iter()
        .enumerate()
        .map(|(i, &(count, sum, events))| {
            let (lower, upper) = edges(i, n);
            CalibrationBin {
                lower,
                upper,
                count,
                mean_predicted: if count == 0 { 0.0 } else { sum / count as f64 },
                observed: ratio(events, count),
            }
        })
        .collect();
    let ece = bins
        .iter()
        .map(|b| ratio(b.count, examples) * (b.observed - b.mean_predicted).abs())
        .sum();
    Reliability {
        label: label.into(),
        bins,
        examples,
        ece,
    }
}

/// A message head's calibration: the top probability against right answers, and each
/// label's probability against that label being the truth.
pub fn calibration(p: &Predictions, bins: usize) -> Calibration {
    let top_label = reliability(
        "confidence",
        p.examples
            .iter()
            .map(|e| (f64::from(e.confidence), e.truth == e.predicted)),
        bins,
    );
    let k = p.labels.len();
    // a two-label head's first label is "the rest": its curve mirrors the second's
    let first = usize::from(k == 2);
    let classes = (first..k)
        .filter(|&c| p.examples.iter().any(|e| e.truth == c))
        .map(|c| {
            let pairs = p.examples.iter().filter_map(move |e| {
                e.probabilities
                    .get(c)
                    .map(|&q| (f64::from(q), e.truth == c))
            });
            reliability(&p.labels[c], pairs, bins)
        })
        .collect();
    Calibration { top_label, classes }
}

/// One `eval escalation` run's figures: the 2×2 confusion and each rule's precision,
/// recall and F1.
pub fn escalation(run: &str, test_file: &str, report: &EscalationReport) -> EscalationFigures {
    let (tp, fp, fneg) = (
        report.true_positives,
        report.false_positives,
        report.false_negatives,
    );
    let routine = report.conversations.saturating_sub(report.should_escalate);
    let confusion = [[tp, fneg], [fp, routine.saturating_sub(fp)]];
    let mut rules: Vec<RuleFigures> = report
        .rules
        .iter()
        .map(|(rule, c)| {
            let precision = ratio(c.true_positives, c.true_positives + c.false_positives);
            let recall = ratio(c.true_positives, report.should_escalate);
            RuleFigures {
                rule: rule.clone(),
                right: c.true_positives,
                wrong: c.false_positives,
                precision,
                recall,
                f1: harmonic(precision, recall),
            }
        })
        .collect();
    rules.sort_by(|a, b| {
        (b.right + b.wrong)
            .cmp(&(a.right + a.wrong))
            .then_with(|| a.rule.cmp(&b.rule))
    });
    EscalationFigures {
        run: run.into(),
        test_file: test_file.into(),
        report: report.clone(),
        confusion,
        rules,
    }
}
