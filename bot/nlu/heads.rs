//! The small classifiers on sentence features: the head type and its inference
//! (`head.rs`), its file format (`file.rs`), the feature rows heads read (`features.rs`,
//! with the hand-written `lexicon.rs` cues), the intent decision (`intent.rs`) and which
//! tweet-level heads exist (`text_task.rs`). Fitting and choosing settings is `training/`.

mod adapter;
mod features;
mod file;
mod head;
mod intent;
mod lexicon;
mod text_task;

pub(crate) use adapter::TokenAdapter;
pub(crate) use features::FeatureSpec;
pub(crate) use head::{argmax, softmax, Dense, Head};
pub(crate) use intent::{decide_intent, intent_head_file};
pub use text_task::{TextTask, STAKES_LABELS};

#[cfg(test)]
mod head_tests;
