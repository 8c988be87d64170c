//! The message-level heads (sentiment, anger, frustration): their names, labels and files.
//! How they are trained (data, recipe) is `training/text_head.rs`.

use std::path::{Path, PathBuf};

/// The message-level heads: sentiment and anger (trained from TweetEval files) and
/// frustration (support messages, with tweets and routine requests mixed in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextTask {
    Sentiment,
    Anger,
    Frustration,
}

impl TextTask {
    pub fn name(self) -> &'static str {
        match self {
            TextTask::Sentiment => "sentiment",
            TextTask::Anger => "anger",
            TextTask::Frustration => "frustration",
        }
    }

    /// Labels of the head, in output order.
    pub fn labels(self) -> Vec<String> {
        let l: &[&str] = match self {
            TextTask::Sentiment => &["negative", "neutral", "positive"],
            TextTask::Anger => &["other", "anger"],
            TextTask::Frustration => &["calm", "frustrated", "angry"],
        };
        l.iter().map(|s| s.to_string()).collect()
    }

    /// The committed head's file.
    pub fn head_file(self, models_dir: &Path) -> PathBuf {
        models_dir.join(format!("{}.safetensors", self.name()))
    }
}
