//! Training the heads: the intent head from `intents/` (with an out-of-scope class and a
//! confidence threshold chosen on validation data), and the sentiment and anger heads from
//! labelled tweet files (train on train, choose on validation).

use std::path::{Path, PathBuf};

use super::analysis::OUT_OF_SCOPE;
use super::calibration;
use super::encoder::Encoder;
use super::features::{self, FeatureSpec, Pooled};
use super::heads::{argmax, ClassWeights, Head, TrainOptions};
use super::intents::IntentSet;
use super::metrics::Report;
use super::NluError;

/// A labelled text read from a data file.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    pub text: String,
    pub label: String,
}

/// Read `label<TAB>text` lines after a header line.
pub fn read_tsv(path: &Path) -> Result<Vec<Labelled>, NluError> {
    let src = std::fs::read_to_string(path)
        .map_err(|e| NluError::Other(format!("cannot read {}: {e}", path.display())))?;
    let mut out = Vec::new();
    for (i, line) in src.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let (label, text) = line.split_once('\t').ok_or_else(|| {
            NluError::Other(format!(
                "{}:{}: expected `label<TAB>text`",
                path.display(),
                i + 1
            ))
        })?;
        out.push(Labelled {
            text: text.to_string(),
            label: label.trim().to_string(),
        });
    }
    Ok(out)
}

/// Read a CSV with a header holding `text` and `intent` columns (other columns ignored).
pub fn read_intent_csv(path: &Path) -> Result<Vec<Labelled>, NluError> {
    let bad = |e: String| NluError::Other(format!("{}: {e}", path.display()));
    let mut rdr = csv::Reader::from_path(path).map_err(|e| bad(e.to_string()))?;
    let headers = rdr.headers().map_err(|e| bad(e.to_string()))?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| {
                bad(format!(
                    "header has no `{name}` column (expected `text,intent`)"
                ))
            })
    };
    let (ti, li) = (col("text")?, col("intent")?);
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| bad(format!("row {}: {e}", i + 2)))?;
        out.push(Labelled {
            text: rec.get(ti).unwrap_or("").to_string(),
            label: rec.get(li).unwrap_or("").trim().to_string(),
        });
    }
    Ok(out)
}

/// The tweet-level heads trained from TweetEval files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextTask {
    Sentiment,
    Anger,
}

impl TextTask {
    pub fn name(self) -> &'static str {
        match self {
            TextTask::Sentiment => "sentiment",
            TextTask::Anger => "anger",
        }
    }

    /// Labels of the head, in output order.
    pub fn labels(self) -> Vec<String> {
        let l: &[&str] = match self {
            TextTask::Sentiment => &["negative", "neutral", "positive"],
            TextTask::Anger => &["other", "anger"],
        };
        l.iter().map(|s| s.to_string()).collect()
    }

    /// Label index of a data-file label (`anger` vs every other emotion).
    pub fn index(self, label: &str) -> Result<usize, NluError> {
        match self {
            TextTask::Sentiment => self
                .labels()
                .iter()
                .position(|l| l == label)
                .ok_or_else(|| {
                    NluError::Other(format!(
                        "unknown sentiment label `{label}` (expected negative, neutral, positive)"
                    ))
                }),
            TextTask::Anger => Ok(usize::from(label == "anger")),
        }
    }

    /// The committed head's file.
    pub fn head_file(self, models_dir: &Path) -> PathBuf {
        models_dir.join(format!("{}.safetensors", self.name()))
    }

    /// Default data folder (`train.tsv`, `val.tsv`), relative to the repository root.
    pub fn default_data_dir(self) -> PathBuf {
        let sub = match self {
            TextTask::Sentiment => "sentiment",
            TextTask::Anger => "emotion",
        };
        PathBuf::from("../shared/data/tweeteval").join(sub)
    }

    /// The head settings chosen on validation data: features, L2 and class weights were
    /// compared on val with `frontdesk train sentiment --dry-run --json --features ... --l2 ...`.
    pub fn default_recipe(self) -> (FeatureSpec, TrainOptions) {
        let spec = "embedding+layer4+layer5+max_pool+lexicon"
            .parse()
            .expect("valid spec");
        let opts = TrainOptions {
            // chosen on val among 1e-2..3 (see `frontdesk train --help`)
            l2: match self {
                TextTask::Sentiment => 0.5,
                TextTask::Anger => 0.3,
            },
            epochs: 300,
            learning_rate: 0.01,
            class_weights: ClassWeights::Balanced,
            ..Default::default()
        };
        (spec, opts)
    }
}

/// Encoded labelled rows of one data file.
pub struct Dataset {
    pub texts: Vec<String>,
    pub labels: Vec<usize>,
    pub pooled: Vec<Pooled>,
}

impl Dataset {
    /// Read and encode a TweetEval file (cached on disk by content).
    pub fn load(
        encoder: &Encoder,
        model_dir: &Path,
        task: TextTask,
        path: &Path,
    ) -> Result<Dataset, NluError> {
        let rows = read_tsv(path)?;
        let labels = rows
            .iter()
            .map(|r| task.index(&r.label))
            .collect::<Result<Vec<_>, _>>()?;
        let texts: Vec<String> = rows.into_iter().map(|r| r.text).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let bar = progress(texts.len(), &format!("encoding {}", path.display()));
        let pooled = features::cached_encode(encoder, model_dir, path, &refs, &bar)?;
        bar.finish_and_clear();
        Ok(Dataset {
            texts,
            labels,
            pooled,
        })
    }

    pub fn rows(&self, spec: &FeatureSpec) -> Result<Vec<Vec<f32>>, NluError> {
        self.pooled
            .iter()
            .zip(&self.texts)
            .map(|(p, t)| spec.row(p, t))
            .collect()
    }
}

/// Train a tweet head on `train`, calibrate its temperature on `val` and score it there.
pub fn train_text_head(
    task: TextTask,
    train: &Dataset,
    val: &Dataset,
    spec: &FeatureSpec,
    opts: &TrainOptions,
    prior_correction: bool,
) -> Result<(Head, Report), NluError> {
    let labels = task.labels();
    let mut head = Head::fit(
        &train.rows(spec)?,
        &train.labels,
        &labels,
        &spec.to_string(),
        opts,
    )?;
    let val_rows = val.rows(spec)?;
    if prior_correction {
        // honest estimate first: offsets chosen on one half of val, scored on the other
        let halves = held_out_halves(&head, &val_rows, &val.labels, &labels);
        head.notes
            .insert("val_macro_recall_half_split".into(), format!("{halves:.4}"));
        let delta = calibration::choose_logit_shift(&head, &val_rows, &val.labels, 2.0);
        head.notes
            .insert("logit_shift".into(), format!("{delta:?}"));
        head.shift_logits(&delta);
    }
    head.calibrate(&val_rows, &val.labels);
    let predicted: Vec<usize> = val_rows.iter().map(|r| head.predict(r).0).collect();
    let report = Report::new(&labels, &val.labels, &predicted);
    head.notes.insert("task".into(), task.name().into());
    head.notes.insert(
        "val_macro_recall".into(),
        format!("{:.4}", report.macro_recall),
    );
    head.notes
        .insert("val_accuracy".into(), format!("{:.4}", report.accuracy));
    if task == TextTask::Anger {
        let f1 = report.score("anger").map(|s| s.f1).unwrap_or(0.0);
        head.notes.insert("val_anger_f1".into(), format!("{f1:.4}"));
    }
    head.notes.insert(
        "options".into(),
        serde_json::to_string(opts).unwrap_or_default(),
    );
    Ok((head, report))
}

/// Macro-recall of the prior correction when it is chosen on even rows and scored on odd
/// rows, and the other way round (mean of the two).
fn held_out_halves(head: &Head, xs: &[Vec<f32>], ys: &[usize], labels: &[String]) -> f64 {
    let split = |parity: usize| -> (Vec<Vec<f32>>, Vec<usize>) {
        xs.iter()
            .zip(ys)
            .enumerate()
            .filter(|(i, _)| i % 2 == parity)
            .map(|(_, (x, &y))| (x.clone(), y))
            .unzip()
    };
    let mut total = 0.0;
    for parity in 0..2 {
        let (cx, cy) = split(parity);
        let (sx, sy) = split(1 - parity);
        let mut h = head.clone();
        h.shift_logits(&calibration::choose_logit_shift(&h, &cx, &cy, 2.0));
        let p: Vec<usize> = sx.iter().map(|x| h.predict(x).0).collect();
        total += Report::new(labels, &sy, &p).macro_recall;
    }
    total / 2.0
}

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

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress(len: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
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

    #[test]
    fn tsv_needs_a_tab() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.tsv");
        std::fs::write(&p, "label\ttext\npositive\tgreat\nno tab here\n").unwrap();
        let e = read_tsv(&p).unwrap_err().to_string();
        assert!(e.contains("t.tsv:3"), "{e}");
        std::fs::write(&p, "label\ttext\npositive\tgreat\n").unwrap();
        assert_eq!(read_tsv(&p).unwrap()[0].label, "positive");
    }

    #[test]
    fn anger_is_one_emotion_against_the_rest() {
        assert_eq!(TextTask::Anger.index("anger").unwrap(), 1);
        assert_eq!(TextTask::Anger.index("joy").unwrap(), 0);
        assert!(TextTask::Sentiment.index("happy").is_err());
    }
}
