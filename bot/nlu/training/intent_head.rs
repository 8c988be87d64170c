//! Training the intent head: from `intents/` with an out-of-scope class, its confidence
//! threshold chosen on validation data, stored under `models/` keyed by the intent-set hash.
//! Used by `frontdesk train intents` and by [`Nlu::load`](crate::Nlu::load) when the
//! intents changed since the stored head.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::datasets::{read_intent_csv, Labelled};
use super::fit::{ClassWeights, TrainOptions};
use crate::encoder::{Encoder, ModelFiles};
use crate::error::chain;
use crate::heads::{argmax, intent_head_file, Head};
use crate::{IntentSet, NluError, NluOptions, OUT_OF_SCOPE};

/// What `frontdesk train intents` did.
#[derive(Debug, Clone)]
pub struct IntentTraining {
    /// Number of intents in the set.
    pub intents: usize,
    /// Where the head was stored.
    pub path: PathBuf,
    /// The out-of-scope confidence threshold the head uses.
    pub threshold: f32,
    /// How the threshold was chosen; `None`: no validation data fits, so the default.
    pub choice: Option<ScopeChoice>,
    /// Seconds spent training and storing (after the model loaded).
    pub train_seconds: f64,
}

/// Train the intent head of `opts.intents_dir` (threshold chosen on `opts.validation_dir`
/// when it fits) and store it under `opts.models_dir`, removing heads of older sets.
pub fn train_intents(opts: &NluOptions) -> Result<IntentTraining, NluError> {
    let files = ModelFiles::resolve(opts.model_dir.as_deref(), &opts.cache_dir)?;
    let encoder = Encoder::load(&files, &opts.encoder)?;
    let set = IntentSet::load_dir(&opts.intents_dir)?;
    let validation = ScopeValidation::load_opt(opts.validation_dir.as_deref())?;
    let started = Instant::now();
    let (head, choice) = fit_intent_head(&encoder, &set, validation.as_ref())?;
    let path = store_intent_head(&opts.models_dir, &head, &set.hash())?;
    Ok(IntentTraining {
        intents: set.intents.len(),
        path,
        threshold: head.threshold.unwrap_or(DEFAULT_INTENT_THRESHOLD),
        choice,
        train_seconds: started.elapsed().as_secs_f64(),
    })
}

/// The stored intent head of `set`, or a fresh one trained (and stored when the models
/// folder is writable) when the set changed since.
pub(crate) fn intent_head_for(
    encoder: &Encoder,
    set: &IntentSet,
    opts: &NluOptions,
) -> Result<Head, NluError> {
    let hash = set.hash();
    let path = intent_head_file(&opts.models_dir, &hash);
    if path.is_file() {
        match Head::load(&path) {
            Ok(h) if h.notes.get("intents_hash") == Some(&hash) => return Ok(h),
            Ok(_) => tracing::warn!(path = %path.display(), "intent head of another set"),
            Err(e) => tracing::warn!("{}", chain(&e)),
        }
    }
    tracing::info!(intents = %opts.intents_dir.display(), "intents changed: retraining");
    let validation = ScopeValidation::load_opt(opts.validation_dir.as_deref())?;
    let (head, _) = fit_intent_head(encoder, set, validation.as_ref())?;
    match store_intent_head(&opts.models_dir, &head, &hash) {
        Ok(p) => tracing::info!(path = %p.display(), "intent head stored"),
        // a read-only models folder still serves, it just retrains at every start
        Err(e) => tracing::warn!("{}", chain(&e)),
    }
    Ok(head)
}

/// Where the out-of-scope threshold is chosen: messages that must come out `out_of_scope`
/// and labelled in-scope messages whose accuracy must hold.
pub(crate) struct ScopeValidation {
    out_of_scope: Vec<String>,
    in_scope: Vec<Labelled>,
}

impl ScopeValidation {
    /// [`load`](Self::load) from a folder when one is given.
    fn load_opt(dir: Option<&Path>) -> Result<Option<ScopeValidation>, NluError> {
        match dir {
            Some(dir) => Self::load(dir),
            None => Ok(None),
        }
    }

    /// `dir/out_of_scope_val.txt` (one message per line) and `dir/in_scope_val.csv`
    /// (`text,intent`); `None` when either is missing.
    fn load(dir: &Path) -> Result<Option<ScopeValidation>, NluError> {
        let oos = dir.join("out_of_scope_val.txt");
        let ins = dir.join("in_scope_val.csv");
        if !oos.is_file() || !ins.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&oos)
            .map_err(|e| NluError::data_from(format!("cannot read {}", oos.display()), e))?;
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

/// Intent heads kept in the models folder (the newest, counting the one just stored).
const KEEP_INTENT_HEADS: usize = 4;

/// Confidence threshold used when no validation data fits the intent set.
const DEFAULT_INTENT_THRESHOLD: f32 = 0.35;

/// Settings of the intent head: logistic regression on the sentence embedding.
pub(crate) fn intent_options() -> TrainOptions {
    TrainOptions {
        l2: 1e-3,
        epochs: 300,
        learning_rate: 0.01,
        class_weights: ClassWeights::Balanced,
        ..Default::default()
    }
}

/// Train the intent head from an intent set: one class per intent plus `out_of_scope` when
/// the set has out-of-scope examples; then choose the threshold on `validation` if it fits.
fn fit_intent_head(
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
        NluError::train(
            "no threshold keeps in-scope accuracy within 2 points: the out-of-scope examples \
             overlap the intents; review intents/_out_of_scope.yaml",
        )
    })
}

/// Save the intent head and remove heads of older intent sets.
fn store_intent_head(models_dir: &Path, head: &Head, hash: &str) -> Result<PathBuf, NluError> {
    let path = intent_head_file(models_dir, hash);
    head.save(&path)?;
    // The heads of the last few sets stay, so a rollback of the intents finds its head
    // rather than training it again; older ones go.
    let mut older: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(models_dir)
        .map(|rd| {
            rd.flatten()
                .map(|entry| entry.path())
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    name.starts_with("intents-") && name.ends_with(".safetensors") && *p != path
                })
                .map(|p| {
                    let when = std::fs::metadata(&p)
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH);
                    (when, p)
                })
                .collect()
        })
        .unwrap_or_default();
    older.sort_by(|a, b| b.0.cmp(&a.0));
    for (_, p) in older.into_iter().skip(KEEP_INTENT_HEADS - 1) {
        if let Err(e) = std::fs::remove_file(&p) {
            tracing::warn!(path = %p.display(), "stale intent head not removed: {e}");
        }
    }
    Ok(path)
}
