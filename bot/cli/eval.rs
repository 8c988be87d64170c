//! `frontdesk eval`: intent, sentiment, anger and frustration quality on labelled test files,
//! and the escalation rules on labelled conversations, printed as tables or one JSON object.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use frontdesk::config::Config;
use frontdesk::evaluation::report;
use frontdesk::{evaluation, replay};

use frontdesk::nlu::training::{self, FrustrationCheck, Predictions, Report, TextTask};

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
    frustration --test T.tsv [--bitext B.csv] [--thresholds 0.5,0.7]: calm/frustrated/angry; \
    the report above, then per threshold t: on T, recall and precision of `upset >= t` \
    (frustrated + angry) for frustrated-or-angry messages and of `angry >= t` for angry ones, and \
    the share of calm messages flagged; with --bitext, the share of routine requests (every \
    intent but complaint; all rows and the odd rows never trained on) flagged.\n\n\
    escalation --test C.jsonl [--rules R.toml] [--labels L.jsonl]: replay lines \
    ({\"conversation\", \"user_id\", \"text\", \"profile\"?}) with \"expected\": \"escalate\"|\"bot\" \
    and optionally \"why\" (or those in --labels as {\"conversation\", \"expected\", \"why\"?} lines), \
    run through the full desk (real NLU, temporary store) like `replay`; prints precision, recall, \
    F1, false escalations of routine conversations, the rules that fired on right and wrong \
    escalations, recall per `why`, and the misses with their texts.\n\n\
    answers --test Q.jsonl [--kb DIR]: lines {\"question\", \"article\"} (an article id of the \
    help centre, or null when none answers it); prints recall@1 and @3 of the right article on \
    answerable questions, the share answered (best score >= kb.min_score) and of unanswerable \
    ones declined, per cosine weight 0..1, the median search time per question beside the \
    encoder's time for the same questions, and the misses. With [llm] (or FRONTDESK_LLM_URL, \
    _MODEL, _API_KEY), each question also goes through the answer task with the top 3 \
    passages: the share of answerable questions answered, of unanswerable ones declined \
    (hand-off), guardrail blocks by reason, LLM errors, and for lines with a \"fact\" (a short \
    phrase the right answer contains) the share of answers containing it.\n\n\
    --json prints one object (with at least `accuracy` and `macro_f1`; escalation: `precision`, \
    `recall`, `f1`, `rules`, `per_why`, `misses`).\n\n\
    --html FILE (every kind but answers; with or without --json) also writes the report as one \
    self-contained HTML page (inline SVG charts, no script): per-label precision/recall/F1, \
    a confusion heat map, the worst examples; intents: the confidence histogram with the \
    out-of-scope threshold; sentiment, anger, frustration, stakes: calibration plots and the \
    expected calibration error; escalation: precision/recall/F1 per rule, recall per `why`, \
    the misses. Written as DATA/reports/NAME.html (DATA: the server's data_dir), it appears \
    in the console for leads and admins.")]
pub struct EvalArgs {
    #[arg(value_enum)]
    pub what: EvalWhat,
    /// Labelled test file (escalation: replay lines with "expected", or a `.tsv` of labelled
    /// single messages as in data/stakes and data/frustration).
    #[arg(long)]
    pub test: PathBuf,
    /// Training file for a fresh intent head (intents only).
    #[arg(long)]
    pub train: Option<PathBuf>,
    /// Frustration only: a Bitext CSV of routine requests to measure how many would be
    /// flagged.
    #[arg(long)]
    pub bitext: Option<PathBuf>,
    /// Frustration only: thresholds for the flagged shares.
    #[arg(long, value_delimiter = ',', default_values_t = [0.5, 0.6, 0.7, 0.8, 0.9])]
    pub thresholds: Vec<f32>,
    /// Escalation only: rules to try instead of the configured ones.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Escalation only: run twice, the local reading alone (llm.judge_ms = 0) and with the
    /// LLM judge ([llm] must be configured), and report both side by side with the judge's
    /// calls and tokens per conversation.
    #[arg(long)]
    pub judge: bool,
    /// Escalation only: labels as `{"conversation", "expected", "why"?}` lines, when the
    /// test file has none.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Answers only: the help centre's folder (default: kb.dir, else the built-in one).
    #[arg(long)]
    pub kb: Option<PathBuf>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as an HTML page here (`DATA/reports/NAME.html` shows it in the
    /// console).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub places: Places,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalWhat {
    Intents,
    Sentiment,
    Anger,
    Frustration,
    Stakes,
    Escalation,
    Answers,
}

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    let opts = a.places.options()?;
    let bars = Bars::default();
    let text = |task: TextTask| -> anyhow::Result<Predictions> {
        anyhow::ensure!(a.train.is_none(), "--train is for `eval intents` only");
        Ok(training::predict_text(&opts, task, &a.test, &bars)?)
    };
    let predictions = match a.what {
        EvalWhat::Intents => training::predict_intents(&opts, &a.test, a.train.as_deref(), &bars)?,
        EvalWhat::Sentiment => text(TextTask::Sentiment)?,
        EvalWhat::Anger => text(TextTask::Anger)?,
        EvalWhat::Frustration => text(TextTask::Frustration)?,
        EvalWhat::Stakes => text(TextTask::Stakes)?,
        EvalWhat::Escalation => return escalation(&a),
        EvalWhat::Answers => {
            anyhow::ensure!(a.html.is_none(), "--html is not for `eval answers`");
            return super::eval_answers::answers(&a);
        }
    };
    let report: Report = predictions.report();
    anyhow::ensure!(
        a.rules.is_none() && a.labels.is_none() && !a.judge,
        "--rules, --labels and --judge are for `eval escalation` only"
    );
    anyhow::ensure!(
        a.bitext.is_none() || a.what == EvalWhat::Frustration,
        "--bitext is for `eval frustration` only"
    );
    let check = if a.what == EvalWhat::Frustration {
        Some(training::frustration_check(
            &opts,
            &a.test,
            a.bitext.as_deref(),
            &a.thresholds,
            &bars,
        )?)
    } else {
        None
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
        if let Some(c) = &check {
            v["thresholds"] = serde_json::to_value(c)?;
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
        if let Some(c) = &check {
            print_check(c);
        }
    }
    if let Some(path) = &a.html {
        let test = a.test.display().to_string();
        let figures = match a.what {
            EvalWhat::Intents => report::intents(&test, &predictions),
            other => {
                let what = format!("{other:?}").to_lowercase();
                report::message_head(&what, &test, &predictions)
            }
        };
        write_html(path, &report::classification_page(&figures))?;
    }
    Ok(())
}

/// Writes a report page (and the folders above it), and says where.
fn write_html(path: &std::path::Path, page: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating {} for the HTML report", dir.display()))?;
    }
    std::fs::write(path, page)
        .with_context(|| format!("writing the HTML report to {}", path.display()))?;
    eprintln!("report written to {}", path.display());
    Ok(())
}

/// The frustration head at each threshold, one line per threshold.
fn print_check(c: &FrustrationCheck) {
    println!(
        "thresholds ({} labelled messages, {} routine requests; upset = frustrated + angry)",
        c.labelled, c.routine
    );
    println!(
        "  t     upset: recall prec  calm-flagged | angry: recall prec  calm-flagged | \
         routine upset  angry | held-out upset  angry"
    );
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2}%", 100.0 * v));
    for r in &c.rows {
        println!(
            "  {:.2}  {:.3}  {:.3}  {:.3}        | {:.3}  {:.3}  {:.3}        | {:>7} {:>7}  | \
             {:>7} {:>7}",
            r.threshold,
            r.upset_recall,
            r.upset_precision,
            r.calm_upset_rate,
            r.angry_recall,
            r.angry_precision,
            r.calm_angry_rate,
            pct(r.routine_upset_share),
            pct(r.routine_angry_share),
            pct(r.routine_held_out_upset_share),
            pct(r.routine_held_out_angry_share),
        );
    }
}

/// `eval escalation`: labelled conversations through the full desk, scored.
fn escalation(a: &EvalArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.train.is_none() && a.bitext.is_none(),
        "--train and --bitext are not for `eval escalation`"
    );
    let mut config = Config::load(a.places.config.as_deref())?;
    if let Some(dir) = &a.places.model_dir {
        config.nlu.model_dir = Some(dir.clone());
    }
    if let Some(dir) = &a.places.models_dir {
        config.nlu.models_dir = Some(dir.clone());
    }
    if let Some(dir) = &a.places.intents_dir {
        config.engine.intents_dir = Some(dir.clone());
    }
    let rules = frontdesk::app::replay_rules(&config, a.rules.as_deref())?;
    // labelled single messages (data/stakes, data/frustration) or replay lines
    let records = match a.test.extension().and_then(|e| e.to_str()) {
        Some("tsv") => evaluation::read_message_set(&a.test)?,
        _ => replay::read_records(&a.test)?,
    };
    let labels = match &a.labels {
        Some(path) => evaluation::read_labels(path)?,
        None => evaluation::labels_of(&records)?,
    };
    anyhow::ensure!(
        !a.judge || config.llm.enabled(),
        "--judge needs an LLM: set llm.url in the configuration (or FRONTDESK_LLM_URL)"
    );
    anyhow::ensure!(
        !a.judge || config.llm.judge_ms > 0,
        "--judge needs llm.judge_ms > 0 (the judge's time budget per turn)"
    );
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let run = |config: &Config, rules: frontdesk::policy::Rules| {
        runtime.block_on(async {
            let nlu = frontdesk::app::load_nlu(config).await?;
            // the help centre answers what the intents do not, as in `serve`
            let help = frontdesk::app::load_help_centre(config, &nlu).await?;
            let desk = frontdesk::app::temporary_desk(config, rules, Arc::new(nlu), help)?;
            let bar = super::support::progress_bar("messages", records.len() as u64);
            let outcomes = replay::replay(&desk, records.clone(), &|| bar.inc(1)).await;
            bar.finish_and_clear();
            let judged = desk.llm().map_or((0, 0), |l| l.llm.judged());
            anyhow::Ok((outcomes?, judged))
        })
    };
    let local_config = Config {
        llm: frontdesk::config::LlmConfig {
            judge_ms: if a.judge { 0 } else { config.llm.judge_ms },
            ..config.llm.clone()
        },
        ..config.clone()
    };
    let (outcomes, _) = run(&local_config, rules.clone())?;
    let report = evaluation::evaluate(&records, &outcomes, &labels)?;
    let test = a.test.display().to_string();
    if !a.judge {
        if let Some(path) = &a.html {
            let figures = report::escalation("the configured rules", &test, &report);
            write_html(path, &report::escalation_page(&[figures]))?;
        }
        if a.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print!("{}", report.render());
        }
        return Ok(());
    }
    let (outcomes, (calls, tokens)) = run(&config, rules)?;
    let judged = evaluation::evaluate(&records, &outcomes, &labels)?;
    if let Some(path) = &a.html {
        let runs = [
            report::escalation("the local reading alone (llm.judge_ms = 0)", &test, &report),
            report::escalation("with the LLM judge", &test, &judged),
        ];
        write_html(path, &report::escalation_page(&runs))?;
    }
    let n = records.len().max(1) as f64;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"local": report, "judge": judged,
                "judge_calls": calls, "judge_tokens": tokens,
                "judge_tokens_per_conversation": tokens as f64 / n})
        );
    } else {
        println!("== the local reading alone (llm.judge_ms = 0)");
        print!("{}", report.render());
        println!(
            "\n== with the LLM judge (llm.judge_ms = {})",
            config.llm.judge_ms
        );
        print!("{}", judged.render());
        println!(
            "\njudge: {calls} verdicts on {} conversations, {tokens} tokens ({:.1} per \
             conversation, {:.1} per verdict)",
            records.len(),
            tokens as f64 / n,
            tokens as f64 / calls.max(1) as f64
        );
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
