//! `frontdesk eval`'s measurements: intent, sentiment and anger quality on labelled test
//! files, as [`Report`]s (printing them is the command's business).

use std::path::Path;

use super::datasets::{read_intent_csv, Dataset};
use super::intent_head::intent_options;
use super::scoring::Report;
use super::Progress;
use crate::encoder::{Encoder, ModelFiles};
use crate::heads::{FeatureSpec, Head, TextTask};
use crate::{Nlu, NluError, NluOptions, OUT_OF_SCOPE};

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
    let test_rows = read_intent_csv(test)?;
    if test_rows.is_empty() {
        return Err(NluError::data(format!("{} has no rows", test.display())));
    }
    let texts: Vec<&str> = test_rows.iter().map(|r| r.text.as_str()).collect();
    let (mut labels, predicted): (Vec<String>, Vec<String>) = match train {
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
                    predicted.push(labels[head.predict(&x).0].clone());
                }
                progress.inc(chunk.len() as u64);
            }
            progress.finish();
            (labels, predicted)
        }
        None => {
            let nlu = Nlu::load(opts)?;
            progress.start("classifying", texts.len() as u64);
            let mut predicted = Vec::new();
            for chunk in texts.chunks(64) {
                predicted.extend(nlu.analyze(chunk)?.into_iter().map(|x| x.intent));
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
            (labels, predicted)
        }
    };
    for r in &test_rows {
        if !labels.contains(&r.label) {
            labels.push(r.label.clone());
        }
    }
    let index = |l: &str| labels.iter().position(|x| x == l).expect("label listed");
    let truth: Vec<usize> = test_rows.iter().map(|r| index(&r.label)).collect();
    let pred: Vec<usize> = predicted.iter().map(|p| index(p)).collect();
    Ok(Report::new(&labels, &truth, &pred))
}

/// Score the stored sentiment or anger head of `opts.models_dir` on `test`
/// (`label<TAB>text` with a header; anger: TweetEval emotion labels, anger against the rest).
pub fn eval_text(
    opts: &NluOptions,
    task: TextTask,
    test: &Path,
    progress: &dyn Progress,
) -> Result<Report, NluError> {
    let files = ModelFiles::resolve(opts.model_dir.as_deref(), &opts.cache_dir)?;
    let encoder = Encoder::load(&files, &opts.encoder)?;
    let head = Head::load(&task.head_file(&opts.models_dir))?;
    let spec: FeatureSpec = head.feature_spec.parse()?;
    let data = Dataset::load(&encoder, &files, &opts.cache_dir, task, test, progress)?;
    let predicted: Vec<usize> = data
        .rows(&spec)?
        .iter()
        .map(|r| head.predict(r).0)
        .collect();
    Ok(Report::new(&task.labels(), &data.labels, &predicted))
}
