//! `frontdesk eval`: intent, sentiment and anger quality on labelled test files.

use std::path::PathBuf;

use super::analysis::OUT_OF_SCOPE;
use super::cmd::Places;
use super::encoder::Encoder;
use super::heads::Head;
use super::metrics::Report;
use super::model::ModelFiles;
use super::train::{self, Dataset, TextTask};

#[derive(clap::Args)]
#[command(long_about = "Measures quality on a labelled test file.\n\n\
    intents [--train A.csv] --test B.csv: CSV with a `text,intent` header. With --train, trains \
    a fresh head on A (logistic regression on the sentence embedding, no out-of-scope class) and \
    scores B; without, scores the shipped intents/ (with out-of-scope handling: an \
    `out_of_scope` answer counts as wrong). Prints accuracy, macro-F1, per-intent \
    precision/recall/F1 and the most-confused pairs.\n\n\
    sentiment --test T.tsv: `label<TAB>text` with a header (negative/neutral/positive); prints \
    accuracy, macro-recall, macro-F1 and the confusion matrix.\n\n\
    anger --test T.tsv: TweetEval emotion labels; anger against the rest, precision/recall/F1.\n\n\
    --json prints one object (with at least `accuracy` and `macro_f1`).")]
pub struct EvalArgs {
    #[arg(value_enum)]
    pub what: EvalWhat,
    /// Labelled test file.
    #[arg(long)]
    pub test: PathBuf,
    /// Training file for a fresh intent head (intents only).
    #[arg(long)]
    pub train: Option<PathBuf>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub places: Places,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalWhat {
    Intents,
    Sentiment,
    Anger,
}

pub fn eval(a: EvalArgs) -> anyhow::Result<()> {
    let report = match a.what {
        EvalWhat::Intents => eval_intents(&a)?,
        EvalWhat::Sentiment => eval_text(&a, TextTask::Sentiment)?,
        EvalWhat::Anger => eval_text(&a, TextTask::Anger)?,
    };
    if a.json {
        let mut v = serde_json::to_value(&report)?;
        v["most_confused"] = serde_json::to_value(report.most_confused(10))?;
        if a.what == EvalWhat::Anger {
            let s = report.score("anger");
            v["anger_precision"] = s.map(|s| s.precision).into();
            v["anger_recall"] = s.map(|s| s.recall).into();
            v["anger_f1"] = s.map(|s| s.f1).into();
        }
        println!("{v}");
    } else {
        let confused = if a.what == EvalWhat::Intents { 10 } else { 0 };
        print_report(&report, confused);
        if a.what == EvalWhat::Anger {
            if let Some(s) = report.score("anger") {
                println!(
                    "anger: precision {:.4} recall {:.4} F1 {:.4}",
                    s.precision, s.recall, s.f1
                );
            }
        }
    }
    Ok(())
}

fn eval_intents(a: &EvalArgs) -> anyhow::Result<Report> {
    let test = train::read_intent_csv(&a.test)?;
    anyhow::ensure!(!test.is_empty(), "{} has no rows", a.test.display());
    let texts: Vec<&str> = test.iter().map(|r| r.text.as_str()).collect();
    let bar = train::progress(texts.len(), "classifying");
    let (mut labels, predicted): (Vec<String>, Vec<String>) = match &a.train {
        Some(train_path) => {
            let files = ModelFiles::resolve(a.places.model_dir.as_deref())?;
            let encoder = Encoder::load(&files)?;
            let rows = train::read_intent_csv(train_path)?;
            let mut labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
            labels.sort();
            labels.dedup();
            let ys: Vec<usize> = rows
                .iter()
                .map(|r| labels.binary_search(&r.label).unwrap_or(0))
                .collect();
            let train_texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
            let tbar = train::progress(train_texts.len(), "encoding training set");
            let mut xs = Vec::new();
            for chunk in train_texts.chunks(64) {
                xs.extend(encoder.encode(chunk)?);
                tbar.inc(chunk.len() as u64);
            }
            tbar.finish_and_clear();
            let head = Head::fit(&xs, &ys, &labels, "embedding", &train::intent_options())?;
            let mut predicted = Vec::new();
            for chunk in texts.chunks(64) {
                for x in encoder.encode(chunk)? {
                    predicted.push(labels[head.predict(&x).0].clone());
                }
                bar.inc(chunk.len() as u64);
            }
            (labels, predicted)
        }
        None => {
            let nlu = super::Nlu::load(&a.places.options())?;
            let mut predicted = Vec::new();
            for chunk in texts.chunks(64) {
                predicted.extend(nlu.analyze(chunk)?.into_iter().map(|x| x.intent));
                bar.inc(chunk.len() as u64);
            }
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
    bar.finish_and_clear();
    for r in &test {
        if !labels.contains(&r.label) {
            labels.push(r.label.clone());
        }
    }
    let index = |l: &str| labels.iter().position(|x| x == l).expect("label listed");
    let truth: Vec<usize> = test.iter().map(|r| index(&r.label)).collect();
    let pred: Vec<usize> = predicted.iter().map(|p| index(p)).collect();
    Ok(Report::new(&labels, &truth, &pred))
}

fn eval_text(a: &EvalArgs, task: TextTask) -> anyhow::Result<Report> {
    anyhow::ensure!(a.train.is_none(), "--train is for `eval intents` only");
    let files = ModelFiles::resolve(a.places.model_dir.as_deref())?;
    let encoder = Encoder::load(&files)?;
    let path = task.head_file(&a.places.models_dir);
    let head = Head::load(&path)?;
    let spec = head.feature_spec.parse()?;
    let data = Dataset::load(&encoder, &files.dir, task, &a.test)?;
    let predicted: Vec<usize> = data
        .rows(&spec)?
        .iter()
        .map(|r| head.predict(r).0)
        .collect();
    Ok(Report::new(&task.labels(), &data.labels, &predicted))
}

/// Human-readable tables of a report on stdout.
pub fn print_report(r: &Report, most_confused: usize) {
    println!(
        "examples {}  accuracy {:.4}  macro-precision {:.4}  macro-recall {:.4}  macro-F1 {:.4}",
        r.examples, r.accuracy, r.macro_precision, r.macro_recall, r.macro_f1
    );
    let w = r.labels.iter().map(|l| l.len()).max().unwrap_or(5).max(5);
    println!("{:w$}  precision  recall  F1      support", "label");
    for s in r
        .per_label
        .iter()
        .filter(|s| s.support > 0 || s.precision > 0.0)
    {
        println!(
            "{:w$}  {:.4}     {:.4}  {:.4}  {}",
            s.label, s.precision, s.recall, s.f1, s.support
        );
    }
    if r.labels.len() <= 5 {
        println!("confusion matrix (rows: truth, columns: predicted)");
        print!("{:w$}", "");
        for l in &r.labels {
            print!(" {l:>9}");
        }
        println!();
        for (l, row) in r.labels.iter().zip(&r.matrix) {
            print!("{l:w$}");
            for c in row {
                print!(" {c:>9}");
            }
            println!();
        }
    }
    let pairs = r.most_confused(most_confused);
    if !pairs.is_empty() {
        println!("most confused (truth -> predicted: count)");
        for c in pairs {
            println!("  {} -> {}: {}", c.truth, c.predicted, c.count);
        }
    }
}
