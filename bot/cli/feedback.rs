//! `frontdesk feedback export --since 90d > F.jsonl`: the conversations agents marked (their
//! escalation needed or not, a bot answer wrong), one JSON line each, with the customer
//! messages that fired their tone rules (see `cockpit/feedback/examples.rs`); and the
//! retraining of `frontdesk train frustration|sentiment|anger --feedback` ([`retrain`]): marks
//! from the store or such a file, turned into labelled messages kept apart in
//! `<models>/feedback/<head>.tsv`, the head retrained with them, before and after shown, the
//! head in force kept beside the new one.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::Utc;
use frontdesk::cockpit::feedback::examples::{head_examples, line, tsv, FeedbackLine, HeadExample};
use frontdesk::cockpit::feedback::parse_since;
use frontdesk::nlu::training::{FeedbackRun, FeedbackTraining, Scores, TextTrainPlan};
use frontdesk::nlu::NluOptions;

use super::api_key::{block_on, load_config, open_store};
use super::support::Bars;

#[derive(clap::Args, Debug)]
pub struct FeedbackArgs {
    #[command(subcommand)]
    pub what: FeedbackCommand,
    /// Data folder of the store (overrides server.data_dir).
    #[arg(long, value_name = "DIR", global = true)]
    pub data: Option<PathBuf>,
    /// Configuration file (default: ./frontdesk.toml when it exists).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
pub enum FeedbackCommand {
    /// Print the marked conversations changed in the window, one JSON object per line:
    /// {"conversation", "created", "verdict", "marks", "fired": [{"rule", "when", "effect",
    /// "value", "threshold", "messages": [{"index", "text", "scores"}]}]}. Only the customer
    /// messages that fired a tone rule carry their text. With sled, stop the server first.
    Export {
        /// How far back: 30d, 12h, 8w.
        #[arg(long, default_value = "90d")]
        since: String,
    },
}

/// Most conversations one read takes (newest changed first).
pub const MAX_CONVERSATIONS: usize = 200_000;

pub fn run(args: FeedbackArgs) -> anyhow::Result<()> {
    let config = load_config(args.config.as_deref(), args.data)?;
    match args.what {
        FeedbackCommand::Export { since } => {
            let lines = block_on(from_store(&config, &since))?;
            for l in &lines {
                println!("{}", serde_json::to_string(l)?);
            }
            eprintln!("{} marked conversations", lines.len());
            Ok(())
        }
    }
}

/// The export lines of the marked conversations of the configured store changed since
/// `since` (`90d`).
async fn from_store(
    config: &frontdesk::config::Config,
    since: &str,
) -> anyhow::Result<Vec<FeedbackLine>> {
    let since = parse_since(since, Utc::now())?;
    let store = open_store(config).await?;
    let records = store
        .conversations_since(since, MAX_CONVERSATIONS)
        .await
        .context("reading the conversations")?;
    if records.len() >= MAX_CONVERSATIONS {
        eprintln!(
            "warning: only the newest {MAX_CONVERSATIONS} conversations of the window were \
             read: give a shorter --since to see the rest"
        );
    }
    let mut out = Vec::new();
    for r in records.iter().filter(|r| !r.feedback.is_empty()) {
        let messages = store
            .messages(&r.id)
            .await
            .with_context(|| format!("reading conversation {}", r.id))?;
        out.extend(line(r, &messages));
    }
    Ok(out)
}

/// The lines of a `frontdesk feedback export` file.
fn from_file(path: &Path) -> anyhow::Result<Vec<FeedbackLine>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the feedback file {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| {
                format!(
                    "{}:{}: not a line of `frontdesk feedback export`",
                    path.display(),
                    i + 1
                )
            })
        })
        .collect()
}

/// Where `train --feedback` takes the marks from, and how it trains with them.
pub struct Flags<'a> {
    /// A `frontdesk feedback export` file; `None`: the configured store.
    pub file: Option<&'a Path>,
    pub config: Option<&'a Path>,
    /// The store's window (`90d`).
    pub since: &'a str,
    /// Loss weights of one example, tried in turn (see `FeedbackRun::weights`).
    pub weights: Vec<f32>,
    pub baseline: bool,
    pub dry_run: bool,
    pub json: bool,
}

/// `frontdesk train frustration|sentiment|anger --feedback`: `plan` retrained with the
/// labelled messages the marks give (see `cockpit/feedback/examples.rs`).
pub fn retrain(plan: TextTrainPlan, opts: &NluOptions, flags: &Flags) -> anyhow::Result<()> {
    let task = plan.task;
    let built_in = frontdesk::defaults::materialize(&opts.cache_dir)?.models_dir;
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    anyhow::ensure!(
        !same(&opts.models_dir, &built_in),
        "the heads in use are the built-in ones ({}), which a new build would put back: \
         `frontdesk init DIR` writes editable copies (point nlu.models_dir at DIR/models), or \
         pass --models-dir models in the repository",
        built_in.display()
    );
    let lines = match flags.file {
        Some(path) => from_file(path)?,
        None => block_on(from_store(&load_config(flags.config, None)?, flags.since))?,
    };
    let examples = head_examples(&lines, task);
    anyhow::ensure!(
        !examples.is_empty(),
        "none of the {} marked conversations teaches the {} head: it learns from escalations \
         by its own rules that agents agreed on (see `frontdesk feedback export`)",
        lines.len(),
        task.name()
    );
    let dir = opts.models_dir.join("feedback");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file = dir.join(format!("{}.tsv", task.name()));
    std::fs::write(&file, tsv(&examples))
        .with_context(|| format!("cannot write {}", file.display()))?;
    let run = FeedbackRun {
        plan,
        examples: file.clone(),
        weights: flags.weights.clone(),
        baseline: flags.baseline,
    };
    let decided = |p: &[Vec<f32>]| examples.iter().zip(p).all(|(e, p)| e.as_marked(p));
    let t = run.run(opts, &Bars::default(), &decided)?;
    anyhow::ensure!(
        t.examples.len() == examples.len(),
        "{} holds {} examples but {} were read back: was it edited meanwhile?",
        file.display(),
        examples.len(),
        t.examples.len()
    );
    let saved = match flags.dry_run {
        true => None,
        false => Some(t.save(&opts.models_dir)?),
    };
    match flags.json {
        true => println!("{}", json_report(&t, &examples, &file, &saved)),
        false => print_report(&t, &examples, &file, lines.len()),
    }
    if let Some((new, kept)) = saved {
        eprintln!("saved {}", new.display());
        if let Some(kept) = kept {
            eprintln!(
                "the head in force before is kept as {k}; to go back: cp {k} {n} (servers read \
                 heads at start: restart them)",
                k = kept.display(),
                n = new.display()
            );
        }
    }
    Ok(())
}

/// How many examples each head decides as the agents marked them (in force, baseline, new).
fn as_marked(t: &FeedbackTraining, examples: &[HeadExample]) -> [Option<usize>; 3] {
    let column = |which: usize, i: usize| {
        let p = &t.examples[i];
        match which {
            0 => p.in_force.as_ref(),
            1 => p.baseline.as_ref(),
            _ => Some(&p.feedback),
        }
    };
    [0, 1, 2].map(|which| {
        (0..examples.len())
            .map(|i| column(which, i).map(|p| usize::from(examples[i].as_marked(p))))
            .sum()
    })
}

fn json_report(
    t: &FeedbackTraining,
    examples: &[HeadExample],
    file: &Path,
    saved: &Option<(PathBuf, Option<PathBuf>)>,
) -> serde_json::Value {
    let reading = |e: &HeadExample, p: Option<&Vec<f32>>| p.map(|p| e.reading.of(p));
    let rows: Vec<serde_json::Value> = examples
        .iter()
        .zip(&t.examples)
        .map(|(e, p)| {
            serde_json::json!({
                "example": e, "in_force": reading(e, p.in_force.as_ref()),
                "baseline": reading(e, p.baseline.as_ref()),
                "feedback": reading(e, Some(&p.feedback)),
                "as_marked_before": p.in_force.as_ref().map(|p| e.as_marked(p)),
                "as_marked_after": e.as_marked(&p.feedback),
            })
        })
        .collect();
    let [in_force, baseline, feedback] = as_marked(t, examples);
    serde_json::json!({
        "task": t.training.task.name(), "file": file, "weight": t.weight,
        "weights_tried": t.tried,
        "examples": rows, "parts": t.parts,
        "as_marked": {"of": examples.len(), "in_force": in_force, "baseline": baseline,
                      "feedback": feedback},
        "train_seconds": t.training.train_seconds,
        "saved": saved.as_ref().map(|s| &s.0), "kept": saved.as_ref().and_then(|s| s.1.as_ref()),
    })
}

fn print_report(t: &FeedbackTraining, examples: &[HeadExample], file: &Path, conversations: usize) {
    let tried: Vec<String> = t
        .tried
        .iter()
        .map(|(w, ok)| format!("{w}{}", if *ok { " decides them all" } else { " not all" }))
        .collect();
    println!(
        "{} head: {} labelled messages from {conversations} marked conversations ({}); weight \
         {} each (tried {})",
        t.training.task.name(),
        examples.len(),
        file.display(),
        t.weight,
        tried.join(", ")
    );
    let show = |s: Option<Scores>| match s {
        Some(s) => format!("acc {:.4}  macro-F1 {:.4}", s.accuracy, s.macro_f1),
        None => "-".into(),
    };
    println!(
        "{:<16} {:<30} {:<30} {:<30}",
        "val.tsv", "in force (chose on all of it)", "retrained without", "retrained with feedback"
    );
    for p in &t.parts {
        println!(
            "{:<16} {:<30} {:<30} {:<30}",
            format!("{} ({})", p.part, p.rows),
            show(p.in_force),
            show(p.baseline),
            show(Some(p.feedback))
        );
    }
    if let Some(held) = t.parts.iter().find(|p| p.part == "held out") {
        if let Some(base) = held.baseline.or(held.in_force) {
            let points = 100.0 * (held.feedback.macro_f1 - base.macro_f1);
            println!(
                "held out: macro-F1 {:+.2} points against the head {} it{}",
                points,
                if held.baseline.is_some() {
                    "retrained without"
                } else {
                    "in force"
                },
                if points.abs() > 0.5 {
                    " (more than 0.5: look before keeping it)"
                } else {
                    ""
                }
            );
        }
    }
    let [in_force, baseline, feedback] = as_marked(t, examples);
    let n = |c: Option<usize>| c.map_or("-".into(), |c| c.to_string());
    println!(
        "marked messages decided as the agents marked them: in force {}, without {}, with {} \
         (of {})",
        n(in_force),
        n(baseline),
        n(feedback),
        examples.len()
    );
    for (e, p) in examples.iter().zip(&t.examples) {
        let before = p.in_force.as_ref().map(|p| e.reading.of(p));
        let text: String = e.text.chars().take(60).collect();
        println!(
            "  {:<10} {:?} {} -> {:.3} (rule fires at {:.2}: {})  {text:?}",
            e.label,
            e.reading,
            before.map_or("-".into(), |b| format!("{b:.3}")),
            e.reading.of(&p.feedback),
            e.threshold,
            if e.fires(&p.feedback) {
                "fires"
            } else {
                "does not fire"
            }
        );
    }
}
