//! `frontdesk eval`'s measurements: intent, sentiment, anger and frustration quality on
//! labelled test files, as [`Report`]s, and how often the frustration head would flag
//! messages at a few thresholds ([`FrustrationCheck`]); printing them is the command's
//! business.

use std::path::Path;

use serde::Serialize;

use super::datasets::{read_intent_csv, Dataset, RawSet};
use super::intent_head::intent_options;
use super::scoring::Report;
use super::text_recipe::BITEXT_NOT_ROUTINE;
use super::Progress;
use crate::encoder::{Encoder, ModelFiles};
use crate::heads::{argmax, FeatureSpec, Head, TextTask};
use crate::{Nlu, NluError, NluOptions, OUT_OF_SCOPE};

/// One labelled test example and the head's answer to it.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub text: String,
    /// The true label, an index into [`Predictions::labels`].
    pub truth: usize,
    /// The answer, an index into [`Predictions::labels`].
    pub predicted: usize,
    /// The top probability (intents: the best intent's, also when the answer is
    /// `out_of_scope` because it fell below the threshold).
    pub confidence: f32,
    /// Every label's probability in [`Predictions::labels`] order (message heads; empty for
    /// intents, whose answers are what [`Nlu::analyze`] decides).
    pub probabilities: Vec<f32>,
}

/// A head's answers on a labelled test file, one per example in file order: what the
/// evaluation reports draw their histograms, calibration and worst examples from.
#[derive(Debug, Clone, Serialize)]
pub struct Predictions {
    pub labels: Vec<String>,
    pub examples: Vec<Prediction>,
    /// The intent head's out-of-scope threshold (a best intent below it is answered
    /// `out_of_scope`); none for message heads and freshly trained intent heads.
    pub threshold: Option<f32>,
}

impl Predictions {
    /// The scores of these answers (accuracy, per-label F1, confusion matrix).
    pub fn report(&self) -> Report {
        let truth: Vec<usize> = self.examples.iter().map(|e| e.truth).collect();
        let predicted: Vec<usize> = self.examples.iter().map(|e| e.predicted).collect();
        Report::new(&self.labels, &truth, &predicted)
    }
}

/// Score intents on `test` (CSV with a `text,intent` header).
///
/// With `train` (same format), a fresh head is trained on it (logistic regression on the
/// sentence embedding, no out-of-scope class) and scored; without, the shipped intents of
/// `opts` are scored with out-of-scope handling (an `out_of_scope` answer counts as wrong).
pub fn eval_intents(
    opts: &NluOptions,
    test: &Path,
    train: Option<&Path>,
    progress: &dyn Progress,
) -> Result<Report, NluError> {
    Ok(predict_intents(opts, test, train, progress)?.report())
}

/// [`eval_intents`]'s answers one by one, with their confidence and the threshold.
pub fn predict_intents(
    opts: &NluOptions,
    test: &Path,
    train: Option<&Path>,
    progress: &dyn Progress,
) -> Result<Predictions, NluError> {
    let test_rows = read_intent_csv(test)?;
    if test_rows.is_empty() {
        return Err(NluError::data(format!("{} has no rows", test.display())));
    }
    let texts: Vec<&str> = test_rows.iter().map(|r| r.text.as_str()).collect();
    // (labels, answers with their confidence, threshold)
    type Answers = (Vec<String>, Vec<(String, f32)>, Option<f32>);
    let (mut labels, predicted, threshold): Answers = match train {
        Some(train_path) => {
            let files = ModelFiles::resolve(opts.model_dir.as_deref(), &opts.cache_dir)?;
            let encoder = Encoder::load(&files, &opts.encoder)?;
            let rows = read_intent_csv(train_path)?;
            let mut labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
            labels.sort();
            labels.dedup();
            let ys: Vec<usize> = rows
                .iter()
                .map(|r| labels.binary_search(&r.label).unwrap_or(0))
                .collect();
            let train_texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
            progress.start("encoding training set", train_texts.len() as u64);
            let mut xs = Vec::new();
            for chunk in train_texts.chunks(64) {
                xs.extend(encoder.encode(chunk)?);
                progress.inc(chunk.len() as u64);
            }
            progress.finish();
            let head = Head::fit(&xs, &ys, &labels, "embedding", &intent_options())?;
            progress.start("classifying", texts.len() as u64);
            let mut predicted = Vec::new();
            for chunk in texts.chunks(64) {
                for x in encoder.encode(chunk)? {
                    let (best, p) = head.predict(&x);
                    predicted.push((labels[best].clone(), p));
                }
                progress.inc(chunk.len() as u64);
            }
            progress.finish();
            (labels, predicted, None)
        }
        None => {
            let nlu = Nlu::load(opts)?;
            progress.start("classifying", texts.len() as u64);
            let mut predicted = Vec::new();
            for chunk in texts.chunks(64) {
                predicted.extend(
                    nlu.analyze(chunk)?
                        .into_iter()
                        .map(|x| (x.intent, x.intent_confidence)),
                );
                progress.inc(chunk.len() as u64);
            }
            progress.finish();
            let mut labels: Vec<String> = nlu
                .intents()
                .names()
                .iter()
                .map(|s| s.to_string())
                .collect();
            labels.push(OUT_OF_SCOPE.to_string());
            (labels, predicted, nlu.intent_threshold())
        }
    };
    for r in &test_rows {
        if !labels.contains(&r.label) {
            labels.push(r.label.clone());
        }
    }
    let index = |l: &str| labels.iter().position(|x| x == l).expect("label listed");
    let examples = test_rows
        .iter()
        .zip(predicted)
        .map(|(r, (answer, confidence))| Prediction {
            text: r.text.clone(),
            truth: index(&r.label),
            predicted: index(&answer),
            confidence,
            probabilities: Vec::new(),
        })
        .collect();
    Ok(Predictions {
        labels,
        examples,
        threshold,
    })
}

/// A stored message head with what reading a data file for it takes: the encoder, and the
/// token states when the head has a token adapter.
struct StoredHead {
    files: ModelFiles,
    encoder: Encoder,
    head: Head,
    spec: FeatureSpec,
    cache_dir: std::path::PathBuf,
    task: TextTask,
}

impl StoredHead {
    fn load(opts: &NluOptions, task: TextTask) -> Result<StoredHead, NluError> {
        let files = ModelFiles::resolve(opts.model_dir.as_deref(), &opts.cache_dir)?;
        let encoder = Encoder::load(&files, &opts.encoder)?;
        let head = Head::load(&task.head_file(&opts.models_dir))?;
        let spec = head.feature_spec.parse()?;
        Ok(StoredHead {
            files,
            encoder,
            head,
            spec,
            cache_dir: opts.cache_dir.clone(),
            task,
        })
    }

    /// A labelled file of the head's task, encoded as the head reads it.
    fn data(&self, path: &Path, progress: &dyn Progress) -> Result<Dataset, NluError> {
        let (e, f) = (&self.encoder, &self.files);
        let tokens = self.head.needs_tokens();
        Dataset::load(e, f, &self.cache_dir, self.task, path, tokens, progress)
    }

    /// Any labelled file, encoded as the head reads it.
    fn raw(&self, path: &Path, progress: &dyn Progress) -> Result<RawSet, NluError> {
        let (e, f) = (&self.encoder, &self.files);
        RawSet::load(
            e,
            f,
            &self.cache_dir,
            path,
            self.head.needs_tokens(),
            progress,
        )
    }
}

/// Score the stored sentiment, anger or frustration head of `opts.models_dir` on `test`
/// (`label<TAB>text` with a header; anger: TweetEval emotion labels, anger against the rest;
/// frustration: calm / frustrated / angry).
pub fn eval_text(
    opts: &NluOptions,
    task: TextTask,
    test: &Path,
    progress: &dyn Progress,
) -> Result<Report, NluError> {
    Ok(predict_text(opts, task, test, progress)?.report())
}

/// [`eval_text`]'s answers one by one, with every label's probability.
pub fn predict_text(
    opts: &NluOptions,
    task: TextTask,
    test: &Path,
    progress: &dyn Progress,
) -> Result<Predictions, NluError> {
    let stored = StoredHead::load(opts, task)?;
    let data = stored.data(test, progress)?;
    let probabilities = data.probabilities(&stored.head, &stored.spec)?;
    let examples = probabilities
        .into_iter()
        .zip(&data.labels)
        .zip(&data.texts)
        .map(|((p, &truth), text)| {
            let (predicted, confidence) = argmax(&p);
            Prediction {
                text: text.clone(),
                truth,
                predicted,
                confidence,
                probabilities: p,
            }
        })
        .collect();
    Ok(Predictions {
        labels: task.labels(),
        examples,
        threshold: None,
    })
}

/// How the frustration head's scores split messages at one threshold `t`: `upset` is
/// frustrated + angry, `angry` the angry probability alone.
#[derive(Debug, Clone, Serialize)]
pub struct ThresholdRow {
    pub threshold: f32,
    /// Labelled messages: share of frustrated-or-angry ones with upset >= t.
    pub upset_recall: f64,
    /// Labelled messages: share of those with upset >= t that are frustrated or angry.
    pub upset_precision: f64,
    /// Labelled messages: share of calm ones with upset >= t.
    pub calm_upset_rate: f64,
    /// Labelled messages: share of angry ones with angry >= t.
    pub angry_recall: f64,
    /// Labelled messages: share of those with angry >= t that are angry.
    pub angry_precision: f64,
    /// Labelled messages: share of calm ones with angry >= t.
    pub calm_angry_rate: f64,
    /// Routine requests (every row): share with angry >= t.
    pub routine_angry_share: Option<f64>,
    /// Routine requests (every row): share with upset >= t.
    pub routine_upset_share: Option<f64>,
    /// Routine requests never trained on (odd rows): share with angry >= t.
    pub routine_held_out_angry_share: Option<f64>,
    /// Routine requests never trained on (odd rows): share with upset >= t.
    pub routine_held_out_upset_share: Option<f64>,
}

/// The frustration head at a few thresholds, on labelled support messages and (optionally)
/// on routine requests.
#[derive(Debug, Clone, Serialize)]
pub struct FrustrationCheck {
    /// Labelled messages scored.
    pub labelled: usize,
    /// Routine requests scored (every row of the requests file but the complaints).
    pub routine: usize,
    pub rows: Vec<ThresholdRow>,
}

/// Score the stored frustration head at `thresholds` on `labelled` (calm / frustrated / angry
/// TSV) and on the routine requests of `requests` (a Bitext CSV; its `complaint` rows are left
/// out; odd rows were never used in training).
pub fn frustration_check(
    opts: &NluOptions,
    labelled: &Path,
    requests: Option<&Path>,
    thresholds: &[f32],
    progress: &dyn Progress,
) -> Result<FrustrationCheck, NluError> {
    let task = TextTask::Frustration;
    let stored = StoredHead::load(opts, task)?;
    let probs = |d: &Dataset| d.probabilities(&stored.head, &stored.spec);
    let data = stored.data(labelled, progress)?;
    let p = probs(&data)?;
    // (probabilities, held out)
    let routine: Option<(Vec<Vec<f32>>, Vec<bool>)> = match requests {
        Some(path) => {
            let raw = stored.raw(path, progress)?;
            let set = Dataset::select(&raw, 1.0, |i, l| {
                (!BITEXT_NOT_ROUTINE.contains(&l)).then_some(i % 2)
            });
            let held_out = set.labels.iter().map(|&odd| odd == 1).collect();
            Some((probs(&set)?, held_out))
        }
        None => None,
    };
    let share = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    let rows = thresholds
        .iter()
        .map(|&t| {
            let upset = |q: &[f32]| q[1] + q[2] >= t;
            let angry = |q: &[f32]| q[2] >= t;
            let count = |flag: &dyn Fn(&[f32]) -> bool, truth: &dyn Fn(usize) -> bool| {
                let (mut tp, mut flagged, mut pos, mut calm_flagged, mut calm) = (0, 0, 0, 0, 0);
                for (q, &y) in p.iter().zip(&data.labels) {
                    let f = flag(q);
                    flagged += usize::from(f);
                    if truth(y) {
                        pos += 1;
                        tp += usize::from(f);
                    }
                    if y == 0 {
                        calm += 1;
                        calm_flagged += usize::from(f);
                    }
                }
                (
                    share(tp, pos),
                    share(tp, flagged),
                    share(calm_flagged, calm),
                )
            };
            let (upset_recall, upset_precision, calm_upset_rate) = count(&upset, &|y| y > 0);
            let (angry_recall, angry_precision, calm_angry_rate) = count(&angry, &|y| y == 2);
            let routine_share = |flag: &dyn Fn(&[f32]) -> bool, only_held_out: bool| {
                routine.as_ref().map(|(q, held)| {
                    let picked: Vec<&Vec<f32>> = q
                        .iter()
                        .zip(held)
                        .filter(|(_, &h)| h || !only_held_out)
                        .map(|(q, _)| q)
                        .collect();
                    share(picked.iter().filter(|q| flag(q)).count(), picked.len())
                })
            };
            ThresholdRow {
                threshold: t,
                upset_recall,
                upset_precision,
                calm_upset_rate,
                angry_recall,
                angry_precision,
                calm_angry_rate,
                routine_angry_share: routine_share(&angry, false),
                routine_upset_share: routine_share(&upset, false),
                routine_held_out_angry_share: routine_share(&angry, true),
                routine_held_out_upset_share: routine_share(&upset, true),
            }
        })
        .collect();
    Ok(FrustrationCheck {
        labelled: data.labels.len(),
        routine: routine.as_ref().map_or(0, |(q, _)| q.len()),
        rows,
    })
}
