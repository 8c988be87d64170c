//! Evaluation reports as one self-contained HTML page a support lead reads at a glance:
//! `frontdesk eval ... --html FILE` (`cli/eval.rs`); a page saved as
//! `<server.data_dir>/reports/NAME.html` is listed and shown in the console
//! (`server/reports.rs`).
//!
//! Two steps, kept apart so each is tested on its own:
//! - `figures.rs`: pure functions from a head's answers ([`Predictions`]) or an
//!   [`EscalationReport`] to the plain, serialisable figures below (scores, the row-normalised
//!   confusion matrix, the confidence histogram, calibration bins and their expected
//!   calibration error, per-rule precision and recall).
//! - `html.rs` (the page, its tables and text) and `svg.rs` (inline SVG charts): figures to
//!   HTML. No script, no stylesheet or font from elsewhere; every text that came from a test
//!   file is escaped, since a test sentence may hold markup.

mod figures;
mod html;
#[cfg(test)]
mod page_tests;
mod svg;
#[cfg(test)]
mod tests;
mod whatif_page;

use serde::Serialize;

use super::EscalationReport;
use crate::nlu::training::Report;

pub use figures::{
    calibration, confidence_histogram, escalation, intents, message_head, reliability, row_shares,
    worst_examples, CALIBRATION_BINS, CONFIDENCE_BINS, WORST_EXAMPLES,
};
pub use html::{classification_page, escalation_page};
pub use svg::escape;
pub use whatif_page::whatif_page;

#[cfg(doc)]
use crate::nlu::training::Predictions;

/// The figures of a classifier's report (the intent head or a message head).
#[derive(Debug, Clone, Serialize)]
pub struct ClassificationFigures {
    /// What was measured, as the command names it: `intents`, `sentiment`, `anger`,
    /// `frustration`, `stakes`.
    pub what: String,
    /// The labelled test file, as given on the command line.
    pub test_file: String,
    /// Accuracy, macro averages, per-label precision / recall / F1 / support and the
    /// confusion matrix (`scores.matrix[truth][predicted]`).
    pub scores: Report,
    /// `row_shares[truth][predicted]`: each row of the confusion matrix divided by its total
    /// (the share of a true label's examples answered as each label; 0 in an empty row).
    pub row_shares: Vec<Vec<f64>>,
    /// Intents: the top probability of each example, right and wrong answers apart.
    pub confidence: Option<ConfidenceHistogram>,
    /// Wrong answers with the highest confidence, most confident first.
    pub worst: Vec<WorstExample>,
    /// Message heads: predicted probabilities against observed frequencies.
    pub calibration: Option<Calibration>,
}

/// How confident the head was on each test example, right and wrong answers apart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfidenceHistogram {
    /// Equal-width bins over [0, 1]; each is [lower, upper), the last one includes 1.
    pub bins: Vec<ConfidenceBin>,
    /// The out-of-scope threshold: a best intent below it is answered `out_of_scope`.
    pub threshold: Option<f32>,
    /// Examples whose top probability is below the threshold.
    pub below_threshold: usize,
}

/// One bar of the confidence histogram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfidenceBin {
    pub lower: f64,
    pub upper: f64,
    /// Examples in the bin answered right.
    pub right: usize,
    /// Examples in the bin answered wrong.
    pub wrong: usize,
}

/// A wrong answer given with high confidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorstExample {
    pub text: String,
    pub truth: String,
    pub predicted: String,
    pub confidence: f32,
}

/// A message head's calibration: do its probabilities mean what they say?
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// The top probability of each example against whether the answer was right; its
    /// `ece` is the head's expected calibration error.
    pub top_label: Reliability,
    /// Each label's probability against how often it is the truth (one-against-the-rest);
    /// a two-label head shows its positive label (the second) only; labels absent from the
    /// test file are left out.
    pub classes: Vec<Reliability>,
}

/// A reliability curve: probabilities binned, each bin's mean probability against the
/// observed frequency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reliability {
    /// The label whose probability is binned (`confidence` for the top probability).
    pub label: String,
    /// Equal-width bins over [0, 1]; each is [lower, upper), the last one includes 1.
    pub bins: Vec<CalibrationBin>,
    pub examples: usize,
    /// Expected calibration error: the sum over bins of `count / examples ×
    /// |observed − mean_predicted|`.
    pub ece: f64,
}

/// One bin of a reliability curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    /// Mean predicted probability of the bin's examples (0 when empty).
    pub mean_predicted: f64,
    /// Share of the bin's examples where the event happened (0 when empty).
    pub observed: f64,
}

/// The figures of one `eval escalation` run.
#[derive(Debug, Clone, Serialize)]
pub struct EscalationFigures {
    /// Which run: "the configured rules", "the local reading alone", "with the LLM judge".
    pub run: String,
    /// The labelled test file, as given on the command line.
    pub test_file: String,
    /// Precision, recall, F1, per `why`, the misses (`evaluation::evaluate`).
    pub report: EscalationReport,
    /// `confusion[truth][outcome]`, index 0 a person, 1 the bot: labelled `escalate` or
    /// `bot` against escalated or kept with the bot.
    pub confusion: [[usize; 2]; 2],
    /// Each rule that fired on an escalated conversation, most firings first.
    pub rules: Vec<RuleFigures>,
}

/// One escalation rule on labelled conversations. A conversation escalated by several
/// rules counts for each of them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleFigures {
    pub rule: String,
    /// Escalated conversations it fired on that a person should have taken.
    pub right: usize,
    /// Escalated conversations it fired on that were routine (labelled `bot`).
    pub wrong: usize,
    /// `right / (right + wrong)`.
    pub precision: f64,
    /// `right / conversations labelled escalate`: the share of needed escalations it made.
    pub recall: f64,
    pub f1: f64,
}
