//! Fitting and evaluating heads: the logic of `frontdesk train` and `frontdesk eval`, with
//! typed results the commands print.
//!
//! - `intent_head.rs`: the intent head and its out-of-scope threshold ([`train_intents`];
//!   also used by [`Nlu::load`](crate::Nlu::load) when intents changed).
//! - `text_head.rs`: training the sentiment, anger, frustration and stakes heads
//!   ([`TextTrainPlan`]); `text_recipe.rs`: their recipes and mixes ([`HeadMix`]).
//! - `feedback.rs`: retraining one of them with agents' feedback, held-out figures before and
//!   after ([`FeedbackRun`]).
//! - `evaluation.rs`: quality on labelled test files ([`eval_intents`], [`eval_text`]; their
//!   answers one by one: [`predict_intents`], [`predict_text`]) and the frustration head at
//!   thresholds ([`frustration_check`]).
//! - `fit.rs`: fitting a head in candle; `calibration.rs`: temperature and prior correction.
//! - `scoring.rs`: F1 / confusion [`Report`]s; `datasets.rs` and `feature_cache.rs`: labelled
//!   files and their cached encoder outputs.

mod adapter;
mod calibration;
mod datasets;
mod evaluation;
mod feature_cache;
mod feedback;
mod finetune;
mod fit;
mod intent_head;
mod scoring;
mod text_head;
mod text_recipe;

pub use crate::heads::TextTask;
pub use adapter::{AdapterOptions, EpochScore};
pub use evaluation::{
    eval_intents, eval_text, frustration_check, predict_intents, predict_text, FrustrationCheck,
    Prediction, Predictions, ThresholdRow,
};
pub use feedback::{ExampleProbabilities, FeedbackRun, FeedbackTraining, PartFigures, Scores};
pub use finetune::{FinetuneEpoch, FinetuneOptions};
pub use fit::{ClassWeights, TrainOptions};
pub(crate) use intent_head::intent_head_for;
pub use intent_head::{train_intents, IntentTraining, ScopeChoice};
pub use scoring::{Confusion, LabelScore, Report};
pub use text_head::{TextTrainPlan, TextTraining};
pub use text_recipe::{HeadMix, BITEXT_NOT_ROUTINE};

/// Progress of long work (encoding thousands of texts), for a progress bar. One task at a
/// time: `start`, any number of `inc`, then `finish`.
pub trait Progress {
    fn start(&self, what: &str, len: u64);
    fn inc(&self, n: u64);
    fn finish(&self);
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _what: &str, _len: u64) {}
    fn inc(&self, _n: u64) {}
    fn finish(&self) {}
}
