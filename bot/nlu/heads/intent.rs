//! The intent decision at serve time, and where the intent head of an intent set is kept.

use std::path::{Path, PathBuf};

use super::{argmax, Head};
use crate::OUT_OF_SCOPE;

/// The intent decision: the best label unless it is the out-of-scope class or its
/// confidence is below the threshold. Returns (intent, confidence).
pub(crate) fn decide_intent<'a>(head: &'a Head, probs: &[f32]) -> (&'a str, f32) {
    let (best, p) = argmax(probs);
    let label = head.labels()[best].as_str();
    if label == OUT_OF_SCOPE || p < head.threshold.unwrap_or(0.0) {
        (OUT_OF_SCOPE, p)
    } else {
        (label, p)
    }
}

/// File of the intent head for an intent-set hash: `models/intents-<hash12>.safetensors`.
pub(crate) fn intent_head_file(models_dir: &Path, hash: &str) -> PathBuf {
    models_dir.join(format!(
        "intents-{}.safetensors",
        &hash[..12.min(hash.len())]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::TrainOptions;

    fn toy_head() -> Head {
        let xs = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![-1.0, -1.0]];
        let labels = vec!["track_order".into(), "greet".into(), OUT_OF_SCOPE.into()];
        Head::fit(&xs, &[0, 1, 2], &labels, "toy", &TrainOptions::default()).unwrap()
    }

    #[test]
    fn confident_intent_passes_the_threshold() {
        let mut head = toy_head();
        head.threshold = Some(0.5);
        assert_eq!(decide_intent(&head, &[0.8, 0.1, 0.1]), ("track_order", 0.8));
    }

    #[test]
    fn unsure_intent_becomes_out_of_scope() {
        let mut head = toy_head();
        head.threshold = Some(0.5);
        assert_eq!(decide_intent(&head, &[0.45, 0.35, 0.2]).0, OUT_OF_SCOPE);
        head.threshold = Some(0.4);
        assert_eq!(decide_intent(&head, &[0.45, 0.35, 0.2]).0, "track_order");
    }

    #[test]
    fn out_of_scope_class_wins_whatever_the_threshold() {
        let mut head = toy_head();
        head.threshold = None;
        assert_eq!(decide_intent(&head, &[0.1, 0.1, 0.8]), (OUT_OF_SCOPE, 0.8));
    }
}
