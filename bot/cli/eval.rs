//! `frontdesk eval`: intent, sentiment and anger quality on labelled test files, printed as
//! tables or one JSON object.

use std::path::PathBuf;

use frontdesk::nlu::training::{self, Report, TextTask};

use super::nlu::Places;
use super::support::Bars;

#[derive(clap::Args)]
#[command(long_about = "Measures quality on a labelled test file.\n\n\
    intents [--train A.csv] --test B.csv: CSV with a `text,intent` header. With --train, trains \
    a fresh head on A (logistic regression on the sentence embedding, no out-of-scope class) and \
    scores B; without, scores the configured intents (with out-of-scope handling: an \
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

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    let opts = a.places.options()?;
    let bars = Bars::default();
    let text = |task: TextTask| -> anyhow::Result<Report> {
        anyhow::ensure!(a.train.is_none(), "--train is for `eval intents` only");
        Ok(training::eval_text(&opts, task, &a.test, &bars)?)
    };
    let report = match a.what {
        EvalWhat::Intents => training::eval_intents(&opts, &a.test, a.train.as_deref(), &bars)?,
        EvalWhat::Sentiment => text(TextTask::Sentiment)?,
        EvalWhat::Anger => text(TextTask::Anger)?,
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
