//! Training the sentiment and anger heads from labelled tweet files (train on train, choose
//! on validation), and the labelled-file readers shared with `eval`. The intent head's
//! training lives in `intent_head.rs` (re-exported here).

use std::path::{Path, PathBuf};

use super::calibration;
use super::encoder::Encoder;
use super::features::{self, FeatureSpec, Pooled};
use super::heads::{ClassWeights, Head, TrainOptions};
use super::metrics::Report;
use super::NluError;

pub use super::intent_head::{
    decide_intent, intent_head_file, intent_options, store_intent_head, train_intents, ScopeChoice,
    ScopeValidation, DEFAULT_INTENT_THRESHOLD,
};

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
                TextTask::Anger => 0.1,
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

    /// Append the rows of `other` whose label is `label` as examples of class 0.
    pub fn add_negatives(&mut self, other: &Dataset, label: usize) {
        for ((t, &l), p) in other.texts.iter().zip(&other.labels).zip(&other.pooled) {
            if l == label {
                self.texts.push(t.clone());
                self.labels.push(0);
                self.pooled.push(p.clone());
            }
        }
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
