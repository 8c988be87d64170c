//! The intent head: trained from `intents/` with an out-of-scope class, its confidence
//! threshold chosen on validation data, stored under `models/` keyed by the intent-set hash.

use std::path::{Path, PathBuf};

use super::analysis::OUT_OF_SCOPE;
use super::encoder::Encoder;
use super::heads::{argmax, ClassWeights, Head, TrainOptions};
use super::intents::IntentSet;
use super::train::{read_intent_csv, Labelled};
use super::NluError;

/// Where the out-of-scope threshold is chosen: messages that must come out `out_of_scope`
/// and labelled in-scope messages whose accuracy must hold.
pub struct ScopeValidation {
    pub out_of_scope: Vec<String>,
    pub in_scope: Vec<Labelled>,
}

impl ScopeValidation {
    /// `dir/out_of_scope_val.txt` (one message per line) and `dir/in_scope_val.csv`
    /// (`text,intent`); `None` when either is missing.
    pub fn load(dir: &Path) -> Result<Option<ScopeValidation>, NluError> {
        let oos = dir.join("out_of_scope_val.txt");
        let ins = dir.join("in_scope_val.csv");
        if !oos.is_file() || !ins.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&oos)
            .map_err(|e| NluError::Other(format!("cannot read {}: {e}", oos.display())))?;
        Ok(Some(ScopeValidation {
            out_of_scope: text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from)
                .collect(),
            in_scope: read_intent_csv(&ins)?,
        }))
    }
}

/// Confidence threshold used when no validation data fits the intent set.
pub const DEFAULT_INTENT_THRESHOLD: f32 = 0.35;

/// Settings of the intent head: logistic regression on the sentence embedding.
pub fn intent_options() -> TrainOptions {
    TrainOptions {
        l2: 1e-3,
        epochs: 300,
        learning_rate: 0.01,
        class_weights: ClassWeights::Balanced,
        ..Default::default()
    }
}

/// The intent decision: the best label unless it is the out-of-scope class or its
/// confidence is below the threshold. Returns (intent, confidence).
pub fn decide_intent<'a>(head: &'a Head, probs: &[f32]) -> (&'a str, f32) {
    let (best, p) = argmax(probs);
    let label = head.labels()[best].as_str();
    if label == OUT_OF_SCOPE || p < head.threshold.unwrap_or(0.0) {
        (OUT_OF_SCOPE, p)
    } else {
        (label, p)
    }
}

/// Train the intent head from an intent set: one class per intent plus `out_of_scope` when
/// the set has out-of-scope examples; then choose the threshold on `validation` if it fits.
pub fn train_intents(
    encoder: &Encoder,
    set: &IntentSet,
    validation: Option<&ScopeValidation>,
) -> Result<(Head, Option<ScopeChoice>), NluError> {
    let mut pairs = set.training_pairs();
    pairs.extend(
        set.out_of_scope_examples()
            .iter()
            .map(|t| (t.clone(), OUT_OF_SCOPE.to_string())),
    );
    let mut labels: Vec<String> = set.names().iter().map(|s| s.to_string()).collect();
    if !set.out_of_scope_examples().is_empty() {
        labels.push(OUT_OF_SCOPE.to_string());
    }
    let texts: Vec<&str> = pairs.iter().map(|(t, _)| t.as_str()).collect();
    let ys: Vec<usize> = pairs
        .iter()
        .map(|(_, l)| {
            labels
                .iter()
                .position(|x| x == l)
                .expect("label of the set")
        })
        .collect();
    let xs = encoder.encode(&texts)?;
    let mut head = Head::fit(&xs, &ys, &labels, "embedding", &intent_options())?;
    head.notes.insert("intents_hash".into(), set.hash());
    let fits = validation
        .filter(|v| !v.in_scope.is_empty() && v.in_scope.iter().all(|r| labels.contains(&r.label)));
    let choice = match fits {
        Some(v) => {
            let c = choose_threshold(encoder, &head, v)?;
            head.threshold = Some(c.threshold);
            Some(c)
        }
        None => {
            head.threshold = Some(DEFAULT_INTENT_THRESHOLD);
            None
        }
    };
    Ok((head, choice))
}

/// The threshold chosen and what it gives on the validation data.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScopeChoice {
    pub threshold: f32,
    /// Share of out-of-scope messages answered `out_of_scope`.
    pub out_of_scope_rate: f64,
    /// In-scope accuracy with the out-of-scope class and threshold.
    pub in_scope_accuracy: f64,
    /// In-scope accuracy of the plain argmax over intents (no out-of-scope handling).
    pub in_scope_accuracy_plain: f64,
}

/// Largest out-of-scope rate whose in-scope accuracy stays within 2 points of the plain
/// argmax; ties go to the lower threshold.
fn choose_threshold(
    encoder: &Encoder,
    head: &Head,
    v: &ScopeValidation,
) -> Result<ScopeChoice, NluError> {
    let in_texts: Vec<&str> = v.in_scope.iter().map(|r| r.text.as_str()).collect();
    let oos_texts: Vec<&str> = v.out_of_scope.iter().map(String::as_str).collect();
    let in_probs: Vec<Vec<f32>> = encoder
        .encode(&in_texts)?
        .iter()
        .map(|x| head.probabilities(x))
        .collect();
    let oos_probs: Vec<Vec<f32>> = encoder
        .encode(&oos_texts)?
        .iter()
        .map(|x| head.probabilities(x))
        .collect();
    let labels = head.labels();
    let oos_index = labels.iter().position(|l| l == OUT_OF_SCOPE);
    let plain = v
        .in_scope
        .iter()
        .zip(&in_probs)
        .filter(|(r, p)| {
            let best = p
                .iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != oos_index)
                .fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b });
            labels[best.0] == r.label
        })
        .count() as f64
        / v.in_scope.len().max(1) as f64;
    let decide = |p: &[f32], t: f32| {
        let (best, conf) = argmax(p);
        if Some(best) == oos_index || conf < t {
            None
        } else {
            Some(best)
        }
    };
    let mut best: Option<ScopeChoice> = None;
    for step in 0..=95 {
        let t = step as f32 / 100.0;
        let acc = v
            .in_scope
            .iter()
            .zip(&in_probs)
            .filter(|(r, p)| decide(p, t).map(|i| labels[i] == r.label).unwrap_or(false))
            .count() as f64
            / v.in_scope.len().max(1) as f64;
        let oos = oos_probs.iter().filter(|p| decide(p, t).is_none()).count() as f64
            / oos_probs.len().max(1) as f64;
        let allowed = acc >= plain - 0.02 - 1e-9;
        let better = best
            .as_ref()
            .map(|b| oos > b.out_of_scope_rate)
            .unwrap_or(true);
        if allowed && better {
            best = Some(ScopeChoice {
                threshold: t,
                out_of_scope_rate: oos,
                in_scope_accuracy: acc,
                in_scope_accuracy_plain: plain,
            });
        }
    }
    best.ok_or_else(|| {
        NluError::Train(
            "no threshold keeps in-scope accuracy within 2 points: the out-of-scope examples \
             overlap the intents; review intents/_out_of_scope.yaml"
                .into(),
        )
    })
}

/// File of the intent head for an intent-set hash: `models/intents-<hash12>.safetensors`.
pub fn intent_head_file(models_dir: &Path, hash: &str) -> PathBuf {
    models_dir.join(format!(
        "intents-{}.safetensors",
        &hash[..12.min(hash.len())]
    ))
}

/// Save the intent head and remove heads of older intent sets.
pub fn store_intent_head(models_dir: &Path, head: &Head, hash: &str) -> Result<PathBuf, NluError> {
    let path = intent_head_file(models_dir, hash);
    head.save(&path)?;
    if let Ok(rd) = std::fs::read_dir(models_dir) {
        for entry in rd.flatten() {
            let p = entry.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("intents-") && name.ends_with(".safetensors") && p != path {
                if let Err(e) = std::fs::remove_file(&p) {
                    tracing::warn!(path = %p.display(), "stale intent head not removed: {e}");
                }
            }
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

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
