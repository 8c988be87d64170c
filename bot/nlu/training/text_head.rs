//! Training the sentiment and anger heads from labelled tweet files (train on train, choose
//! on validation): the recipe chosen on validation data, and `frontdesk train sentiment|anger`
//! as [`TextTrainPlan::run`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::calibration;
use super::datasets::Dataset;
use super::fit::{ClassWeights, TrainOptions};
use super::scoring::Report;
use super::Progress;
use crate::encoder::{Encoder, ModelFiles};
use crate::heads::{FeatureSpec, Head, TextTask};
use crate::{NluError, NluOptions};

/// One `frontdesk train sentiment|anger` run: what to train on and how. [`new`](Self::new)
/// gives the recipe chosen on validation data; change fields to experiment.
#[derive(Debug, Clone)]
pub struct TextTrainPlan {
    pub task: TextTask,
    /// Folder with `train.tsv` and `val.tsv`.
    pub data_dir: PathBuf,
    /// Feature spec of the head, e.g. `embedding+layer4+max_pool+lexicon`.
    pub features: String,
    pub options: TrainOptions,
    /// Anger only: add the neutral tweets of the sentiment training set as non-anger
    /// examples.
    pub neutral_negatives: bool,
    /// Per-class logit offsets chosen on val for macro-recall.
    pub prior_correction: bool,
}

/// A trained tweet head and its validation figures; [`save`](Self::save) stores it.
pub struct TextTraining {
    pub task: TextTask,
    /// The feature spec, normalised.
    pub features: String,
    pub options: TrainOptions,
    /// Scores on the validation file.
    pub report: Report,
    pub temperature: f32,
    /// Macro-recall with the prior correction chosen on one half of val and scored on the
    /// other (an honest estimate); `None` without prior correction.
    pub half_split_macro_recall: Option<String>,
    pub train_seconds: f64,
    head: Head,
}

impl TextTrainPlan {
    /// The default recipe of `task`, on its default data folder.
    pub fn new(task: TextTask) -> Self {
        let (spec, options) = task.default_recipe();
        Self {
            task,
            data_dir: task.default_data_dir(),
            features: spec.to_string(),
            options,
            neutral_negatives: true,
            prior_correction: true,
        }
    }

    /// Load the model, encode the data files (cached under `opts.cache_dir`) and train.
    pub fn run(
        &self,
        opts: &NluOptions,
        progress: &dyn Progress,
    ) -> Result<TextTraining, NluError> {
        let files = ModelFiles::resolve(opts.model_dir.as_deref(), &opts.cache_dir)?;
        let encoder = Encoder::load(&files, &opts.encoder)?;
        let task = self.task;
        let spec: FeatureSpec = self.features.parse()?;
        let dir = &self.data_dir;
        let load = |task: TextTask, path: &Path| {
            Dataset::load(&encoder, &files, &opts.cache_dir, task, path, progress)
        };
        let mut train_set = load(task, &dir.join("train.tsv"))
            .map_err(|e| NluError::data_from(format!("training data in {}", dir.display()), e))?;
        if task == TextTask::Anger && self.neutral_negatives {
            // TweetEval emotion has no neutral class: without neutral tweets as negatives the
            // head calls every plain request angry.
            let neutral_file = TextTask::Sentiment.default_data_dir().join("train.tsv");
            let sentiment = load(TextTask::Sentiment, &neutral_file).map_err(|e| {
                NluError::data_from(
                    format!("neutral negatives from {}", neutral_file.display()),
                    e,
                )
            })?;
            train_set.add_negatives(&sentiment, 1);
        }
        let val_set = load(task, &dir.join("val.tsv"))?;
        let started = Instant::now();
        let (head, report) = train_text_head(
            task,
            &train_set,
            &val_set,
            &spec,
            &self.options,
            self.prior_correction,
        )?;
        Ok(TextTraining {
            task,
            features: spec.to_string(),
            options: self.options.clone(),
            report,
            temperature: head.temperature,
            half_split_macro_recall: head.notes.get("val_macro_recall_half_split").cloned(),
            train_seconds: started.elapsed().as_secs_f64(),
            head,
        })
    }
}

impl TextTraining {
    /// Store the head as `models_dir/<task>.safetensors`; returns the path.
    pub fn save(&self, models_dir: &Path) -> Result<PathBuf, NluError> {
        let path = self.task.head_file(models_dir);
        self.head.save(&path)?;
        Ok(path)
    }
}

impl TextTask {
    /// Label index of a data-file label (`anger` vs every other emotion).
    pub(crate) fn index(self, label: &str) -> Result<usize, NluError> {
        match self {
            TextTask::Sentiment => self
                .labels()
                .iter()
                .position(|l| l == label)
                .ok_or_else(|| {
                    NluError::data(format!(
                        "unknown sentiment label `{label}` (expected negative, neutral, positive)"
                    ))
                }),
            TextTask::Anger => Ok(usize::from(label == "anger")),
        }
    }

    /// Default data folder (`train.tsv`, `val.tsv`), relative to the repository root.
    fn default_data_dir(self) -> PathBuf {
        let sub = match self {
            TextTask::Sentiment => "sentiment",
            TextTask::Anger => "emotion",
        };
        PathBuf::from("../shared/data/tweeteval").join(sub)
    }

    /// The head settings chosen on validation data: features, L2 and class weights were
    /// compared on val with `frontdesk train sentiment --dry-run --json --features ... --l2 ...`.
    fn default_recipe(self) -> (FeatureSpec, TrainOptions) {
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

/// Train a tweet head on `train`, calibrate its temperature on `val` and score it there.
fn train_text_head(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anger_is_one_emotion_against_the_rest() {
        assert_eq!(TextTask::Anger.index("anger").unwrap(), 1);
        assert_eq!(TextTask::Anger.index("joy").unwrap(), 0);
        assert!(TextTask::Sentiment.index("happy").is_err());
    }
}
