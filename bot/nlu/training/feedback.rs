//! Retraining a message head (frustration, sentiment, anger) with labelled messages from
//! agents' feedback (`frontdesk train ... --feedback`), and what it changed.
//!
//! The examples come as a `label<TAB>text` file of their own, never mixed into the shipped
//! data: they join the head's training set with a loss weight each, so a handful can move
//! the head's decision on them among thousands of shipped examples. The run tries the
//! weights it is given from the smallest ([`FeedbackRun::weights`]) and keeps the first with
//! which the head decides every example as the agents marked it: the rest of what the head
//! learnt moves as little as that allows.
//!
//! So that something stays held out, the run splits the head's `val.tsv` by position: the
//! even lines (the 1st, 3rd, ...) choose what the recipe chooses on val (prior correction,
//! temperature, the token adapter's epoch), the odd lines are never looked at until the
//! report. With [`FeedbackRun::baseline`] the same split trains a head without the
//! examples too, so the report tells the examples' effect apart from the split's.
//! [`FeedbackTraining::save`] keeps the head in force as
//! `<head>.before-feedback-<UTC time>.safetensors` before the new one takes its name.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::datasets::Dataset;
use super::scoring::Report;
use super::text_head::{TextTrainPlan, TextTraining};
use super::Progress;
use crate::encoder::{Encoder, ModelFiles};
use crate::heads::{argmax, FeatureSpec, Head, TextTask};
use crate::{NluError, NluOptions};

/// One retraining with feedback: the head's usual plan, the examples and their weight.
#[derive(Debug, Clone)]
pub struct FeedbackRun {
    /// The plan `frontdesk train` built (recipe, data folder with `train.tsv` and
    /// `val.tsv`, the flags' overrides).
    pub plan: TextTrainPlan,
    /// The feedback examples, `label<TAB>text` under a `label<TAB>text` header.
    pub examples: PathBuf,
    /// Loss weights of one example to try, in order (a shipped example counts 1): the first
    /// with which the head decides every example as marked is kept.
    pub weights: Vec<f32>,
    /// Also train without the examples on the same split, for the report.
    pub baseline: bool,
}

/// How a head scores on one labelled file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scores {
    pub accuracy: f64,
    pub macro_f1: f64,
    pub macro_recall: f64,
    /// What the recipe's prior correction maximises (anger: anger F1; else macro-recall).
    pub objective: f64,
}

/// One part of the head's validation file, scored by each head.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartFigures {
    /// `chosen on` (even lines of val.tsv) or `held out` (odd lines).
    pub part: String,
    pub rows: usize,
    /// The head in force before (it chose on the whole of val.tsv, both parts included).
    pub in_force: Option<Scores>,
    /// Retrained on the same split without the examples.
    pub baseline: Option<Scores>,
    /// Retrained with them.
    pub feedback: Scores,
}

/// One feedback example and each head's probabilities for it (in the head's label order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExampleProbabilities {
    pub text: String,
    pub label: String,
    pub in_force: Option<Vec<f32>>,
    pub baseline: Option<Vec<f32>>,
    pub feedback: Vec<f32>,
}

/// A head retrained with feedback, and what changed.
pub struct FeedbackTraining {
    /// The new head (saved by [`save`](Self::save)).
    pub training: TextTraining,
    pub baseline: Option<TextTraining>,
    /// The weight of one example the new head was trained with, and each weight tried with
    /// whether the head then decided every example as marked.
    pub weight: f32,
    pub tried: Vec<(f32, bool)>,
    /// `chosen on`, then `held out`.
    pub parts: Vec<PartFigures>,
    /// In the examples file's order.
    pub examples: Vec<ExampleProbabilities>,
}

impl FeedbackRun {
    /// Split val, train (without the examples too, when asked), then with them at each of
    /// [`weights`](Self::weights) in turn until `decided(probabilities of every example)`
    /// holds (the last weight when none does), and score every head on both parts of val
    /// and on the examples. Works in `<cache>/feedback/<head>/`.
    pub fn run(
        &self,
        opts: &NluOptions,
        progress: &dyn Progress,
        decided: &dyn Fn(&[Vec<f32>]) -> bool,
    ) -> Result<FeedbackTraining, NluError> {
        let task = self.plan.task;
        if !matches!(
            task,
            TextTask::Frustration | TextTask::Sentiment | TextTask::Anger
        ) {
            return Err(NluError::train(
                "feedback retrains the frustration, sentiment and anger heads only",
            ));
        }
        if self.weights.is_empty() {
            return Err(NluError::train("give at least one weight for the feedback"));
        }
        let work = opts.cache_dir.join("feedback").join(task.name());
        let (chosen, held_out) = split_data(&self.plan.data_dir, &work)?;
        let files = ModelFiles::resolve(opts.model_dir.as_deref(), &opts.cache_dir)?;
        let encoder = Encoder::load(&files, &opts.encoder)?;
        let in_force_file = task.head_file(&opts.models_dir);
        let in_force = match in_force_file.is_file() {
            true => Some(Head::load(&in_force_file)?),
            false => None,
        };
        // every file read as every head reads it (token states for any adapter)
        let tokens =
            self.plan.adapter.is_some() || in_force.as_ref().is_some_and(Head::needs_tokens);
        let load = |path: &Path| {
            Dataset::load(
                &encoder,
                &files,
                &opts.cache_dir,
                task,
                path,
                tokens,
                progress,
            )
        };
        let kept = |t: &TextTraining, name: &str| -> Result<Head, NluError> {
            let dir = work.join(name);
            std::fs::create_dir_all(&dir)
                .map_err(|e| NluError::data_from(format!("cannot create {}", dir.display()), e))?;
            Head::load(&t.save(&dir)?)
        };
        let mut plan = self.plan.clone();
        plan.data_dir = work.clone();
        plan.feedback = None;
        let baseline = match self.baseline {
            true => {
                let t = plan.run(opts, progress)?;
                let head = kept(&t, "baseline")?;
                Some((t, head))
            }
            false => None,
        };
        let data = load(&self.examples)?;
        let mut tried = Vec::new();
        let mut last = None;
        for &weight in &self.weights {
            plan.feedback = Some((self.examples.clone(), weight));
            let t = plan.run(opts, progress)?;
            let head = kept(&t, "feedback")?;
            let p = probabilities(&head, &data)?;
            let done = decided(&p);
            tried.push((weight, done));
            last = Some((t, head, p, weight));
            if done {
                break;
            }
        }
        let Some((training, head, after, weight)) = last else {
            return Err(NluError::train("no head was trained"));
        };
        let heads = [
            in_force.as_ref(),
            baseline.as_ref().map(|b| &b.1),
            Some(&head),
        ];
        let mut parts = Vec::new();
        for (part, path) in [("chosen on", &chosen), ("held out", &held_out)] {
            let set = load(path)?;
            let scored = heads
                .iter()
                .map(|h| h.map(|h| scores(task, h, &set)).transpose())
                .collect::<Result<Vec<_>, _>>()?;
            parts.push(PartFigures {
                part: part.into(),
                rows: set.labels.len(),
                in_force: scored[0],
                baseline: scored[1],
                feedback: scores(task, &head, &set)?,
            });
        }
        let before = [heads[0], heads[1]]
            .iter()
            .map(|h| h.map(|h| probabilities(h, &data)).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        let labels = task.labels();
        let examples = (0..data.labels.len())
            .map(|i| ExampleProbabilities {
                text: data.texts[i].clone(),
                label: labels[data.labels[i]].clone(),
                in_force: before[0].as_ref().map(|p| p[i].clone()),
                baseline: before[1].as_ref().map(|p| p[i].clone()),
                feedback: after[i].clone(),
            })
            .collect();
        Ok(FeedbackTraining {
            training,
            baseline: baseline.map(|b| b.0),
            weight,
            tried,
            parts,
            examples,
        })
    }
}

impl FeedbackTraining {
    /// Keeps the head in force as `<head>.before-feedback-<UTC time>.safetensors` in
    /// `models_dir`, then saves the new head as `<head>.safetensors`. Returns (the new head's
    /// file, the kept one's, if there was a head in force). Going back is copying the kept
    /// file over `<head>.safetensors`.
    pub fn save(&self, models_dir: &Path) -> Result<(PathBuf, Option<PathBuf>), NluError> {
        let task = self.training.task;
        let path = task.head_file(models_dir);
        let kept = match path.is_file() {
            true => {
                let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
                let kept = models_dir.join(format!(
                    "{}.before-feedback-{stamp}.safetensors",
                    task.name()
                ));
                std::fs::copy(&path, &kept).map_err(|e| {
                    NluError::head_from(
                        format!(
                            "cannot keep the head in force as {} (nothing was changed)",
                            kept.display()
                        ),
                        e,
                    )
                })?;
                Some(kept)
            }
            false => None,
        };
        Ok((self.training.save(models_dir)?, kept))
    }
}

/// `train.tsv` of `data_dir` copied into `work`, and its `val.tsv` split into the even
/// lines (`val.tsv`, chosen on) and the odd ones (`held_out.tsv`); returns the paths of
/// both parts.
fn split_data(data_dir: &Path, work: &Path) -> Result<(PathBuf, PathBuf), NluError> {
    let io = |what: String| move |e: std::io::Error| NluError::data_from(what, e);
    std::fs::create_dir_all(work).map_err(io(format!("cannot create {}", work.display())))?;
    let train = data_dir.join("train.tsv");
    std::fs::copy(&train, work.join("train.tsv"))
        .map_err(io(format!("cannot read {}", train.display())))?;
    let val = data_dir.join("val.tsv");
    let text =
        std::fs::read_to_string(&val).map_err(io(format!("cannot read {}", val.display())))?;
    let (chosen, held_out) = split_lines(&text);
    let paths = (work.join("val.tsv"), work.join("held_out.tsv"));
    for (path, body) in [(&paths.0, chosen), (&paths.1, held_out)] {
        std::fs::write(path, body).map_err(io(format!("cannot write {}", path.display())))?;
    }
    Ok(paths)
}

/// A labelled file's lines split by position (its header, if any, kept on both): even
/// lines, odd lines.
fn split_lines(text: &str) -> (String, String) {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty()).peekable();
    let header = lines
        .next_if(|l| l.split('\t').next() == Some("label"))
        .map(|h| format!("{h}\n"))
        .unwrap_or_default();
    let (mut even, mut odd) = (header.clone(), header);
    for (i, line) in lines.enumerate() {
        let part = if i % 2 == 0 { &mut even } else { &mut odd };
        part.push_str(line);
        part.push('\n');
    }
    (even, odd)
}

/// `head`'s calibrated probabilities for every row of `data`.
fn probabilities(head: &Head, data: &Dataset) -> Result<Vec<Vec<f32>>, NluError> {
    let spec: FeatureSpec = head.feature_spec.parse()?;
    data.probabilities(head, &spec)
}

/// How `head` scores on `data`.
fn scores(task: TextTask, head: &Head, data: &Dataset) -> Result<Scores, NluError> {
    let predicted: Vec<usize> = probabilities(head, data)?
        .iter()
        .map(|p| argmax(p).0)
        .collect();
    let report = Report::new(&task.labels(), &data.labels, &predicted);
    Ok(Scores {
        accuracy: report.accuracy,
        macro_f1: report.macro_f1,
        macro_recall: report.macro_recall,
        objective: (task.shift_objective())(&report),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn val_splits_by_position_and_keeps_its_header() {
        let (even, odd) = split_lines("label\ttext\ncalm\ta\nangry\tb\n\ncalm\tc\n");
        assert_eq!(even, "label\ttext\ncalm\ta\ncalm\tc\n");
        assert_eq!(odd, "label\ttext\nangry\tb\n");
        let (even, odd) = split_lines("calm\ta\nangry\tb\ncalm\tc");
        assert_eq!(
            (even.as_str(), odd.as_str()),
            ("calm\ta\ncalm\tc\n", "angry\tb\n")
        );
    }
}
