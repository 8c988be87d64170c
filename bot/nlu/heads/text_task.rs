//! The message-level heads (sentiment, anger, frustration, stakes): their names, labels and
//! files.
//! How they are trained (data, recipe) is `training/text_head.rs`.

use std::path::{Path, PathBuf};

/// The message-level heads: sentiment and anger (trained from TweetEval files) and
/// frustration (support messages, with tweets and routine requests mixed in); stakes (what is
/// at stake in a support message, and whose problem it is: `data/stakes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextTask {
    Sentiment,
    Anger,
    Frustration,
    Stakes,
}

/// The stakes head's labels, in output order: `none` (routine), the six stakes a person must
/// see, the four look-alikes whose negative words are about something other than the shop,
/// a first message about a late parcel with mild impatience (the bot looks it up first), and a
/// complaint about the shop with no stake named (learned from frustrated support messages: what
/// the look-alikes are told apart from).
pub const STAKES_LABELS: [&str; 13] = [
    "none",
    "safety",
    "money",
    "vulnerability",
    "business",
    "legal",
    "privacy",
    "own_life",
    "own_mistake",
    "third_party",
    "solved",
    "late_parcel_mild",
    "complaint",
];

impl TextTask {
    pub fn name(self) -> &'static str {
        match self {
            TextTask::Sentiment => "sentiment",
            TextTask::Anger => "anger",
            TextTask::Frustration => "frustration",
            TextTask::Stakes => "stakes",
        }
    }

    /// Labels of the head, in output order.
    pub fn labels(self) -> Vec<String> {
        let l: &[&str] = match self {
            TextTask::Sentiment => &["negative", "neutral", "positive"],
            TextTask::Anger => &["other", "anger"],
            TextTask::Frustration => &["calm", "frustrated", "angry"],
            TextTask::Stakes => &STAKES_LABELS,
        };
        l.iter().map(|s| s.to_string()).collect()
    }

    /// The committed head's file.
    pub fn head_file(self, models_dir: &Path) -> PathBuf {
        models_dir.join(format!("{}.safetensors", self.name()))
    }
}
