//! The NLU commands: `frontdesk nlu`, `frontdesk train`, `frontdesk eval`.

use std::path::PathBuf;

use anyhow::Context;

use super::encoder::Encoder;
use super::heads::{ClassWeights, TrainOptions};
use super::intents::IntentSet;
use super::model::ModelFiles;
use super::train::{self, Dataset, ScopeValidation, TextTask};

/// Where the model, intents and heads live (shared by all NLU commands).
#[derive(clap::Args, Debug, Clone)]
pub struct Places {
    /// A sentence-transformers BERT model directory (default: all-MiniLM-L6-v2 in the cache,
    /// fetched on first use).
    #[arg(long, env = "FRONTDESK_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// Folder of intent definitions.
    #[arg(long, default_value = "intents")]
    pub intents_dir: PathBuf,
    /// Folder of trained heads.
    #[arg(long, default_value = "models")]
    pub models_dir: PathBuf,
}

impl Places {
    pub fn options(&self) -> super::NluOptions {
        super::NluOptions {
            model_dir: self.model_dir.clone(),
            intents_dir: self.intents_dir.clone(),
            models_dir: self.models_dir.clone(),
            ..Default::default()
        }
    }
}

#[derive(clap::Args)]
#[command(
    long_about = "Reads one message per line on stdin and writes one JSON object per line on \
                  stdout, in order:\n\n  {\"text\", \"intent\", \"intent_confidence\", \"sentiment\", \
                  \"sentiment_scores\": {\"negative\", \"neutral\", \"positive\"}, \"anger\", \
                  \"entities\": [...]}\n\n`intent` is `out_of_scope` when no intent fits; `anger` \
                  is a probability. Lines are read and answered in batches, so any number of \
                  lines runs in bounded memory. The intent head is retrained first when \
                  intents/ changed."
)]
pub struct NluArgs {
    #[command(flatten)]
    pub places: Places,
    /// Messages per encoder pass.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
}

#[derive(clap::Args)]
#[command(long_about = "Trains a head and stores it under models/.\n\n\
    intents (default): from intents/, in seconds; stored as models/intents-<hash12>.safetensors \
    (older ones removed). The out-of-scope threshold is chosen on tests/data/out_of_scope_val.txt \
    and tests/data/in_scope_val.csv when they fit the intents.\n\n\
    sentiment / anger: from TweetEval (train.tsv, choosing on val.tsv), minutes on 2 cores; \
    stored as models/sentiment.safetensors / models/anger.safetensors. Encoder outputs are \
    cached under ~/.cache/frontdesk/features, so a second run takes seconds.")]
pub struct TrainArgs {
    /// What to train.
    #[arg(value_enum, default_value_t = TrainWhat::Intents)]
    pub what: TrainWhat,
    #[command(flatten)]
    pub places: Places,
    /// Validation data for the out-of-scope threshold (intents only).
    #[arg(long, default_value = "tests/data")]
    pub validation_dir: PathBuf,
    /// Data folder with train.tsv and val.tsv (sentiment: ../shared/data/tweeteval/sentiment,
    /// anger: ../shared/data/tweeteval/emotion).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Feature spec of the head, e.g. `embedding+layer4+max_pool+lexicon` (sentiment/anger).
    #[arg(long)]
    pub features: Option<String>,
    /// Hidden units (0 = logistic regression).
    #[arg(long)]
    pub hidden: Option<usize>,
    /// L2 penalty.
    #[arg(long)]
    pub l2: Option<f64>,
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long)]
    pub learning_rate: Option<f64>,
    #[arg(long)]
    pub dropout: Option<f32>,
    /// Mini-batch size (0 = full batch).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Class weights: `balanced` or `uniform`.
    #[arg(long)]
    pub class_weights: Option<String>,
    /// Anger only: do not add the neutral tweets of the sentiment training set as non-anger
    /// examples.
    #[arg(long)]
    pub no_neutral_negatives: bool,
    /// Skip the prior correction (per-class logit offsets chosen on val for macro-recall).
    #[arg(long)]
    pub no_prior_correction: bool,
    /// Report validation scores without saving the head.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the validation report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainWhat {
    Intents,
    Sentiment,
    Anger,
}

pub fn nlu(a: NluArgs) -> anyhow::Result<()> {
    let nlu = super::Nlu::load(&a.places.options())?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    super::stream::analyze_lines(&nlu, stdin.lock(), stdout.lock(), a.batch.max(1))?;
    Ok(())
}

pub fn train(a: TrainArgs) -> anyhow::Result<()> {
    let files = ModelFiles::resolve(a.places.model_dir.as_deref())?;
    let encoder = Encoder::load(&files)?;
    match a.what {
        TrainWhat::Intents => {
            let set = IntentSet::load_dir(&a.places.intents_dir)?;
            let validation = ScopeValidation::load(&a.validation_dir)?;
            let started = std::time::Instant::now();
            let (head, choice) = train::train_intents(&encoder, &set, validation.as_ref())?;
            let path = train::store_intent_head(&a.places.models_dir, &head, &set.hash())?;
            eprintln!(
                "trained {} intents in {:.1}s -> {}",
                set.intents.len(),
                started.elapsed().as_secs_f64(),
                path.display()
            );
            match choice {
                Some(c) => eprintln!(
                    "out-of-scope threshold {:.2}: {:.1}% of out-of-scope messages caught, \
                     in-scope accuracy {:.1}% (without out-of-scope handling {:.1}%)",
                    c.threshold,
                    100.0 * c.out_of_scope_rate,
                    100.0 * c.in_scope_accuracy,
                    100.0 * c.in_scope_accuracy_plain
                ),
                None => eprintln!(
                    "no validation data fits these intents in {}: threshold {:.2} (default)",
                    a.validation_dir.display(),
                    train::DEFAULT_INTENT_THRESHOLD
                ),
            }
            Ok(())
        }
        TrainWhat::Sentiment => train_text(&a, &files, &encoder, TextTask::Sentiment),
        TrainWhat::Anger => train_text(&a, &files, &encoder, TextTask::Anger),
    }
}

fn train_text(
    a: &TrainArgs,
    files: &ModelFiles,
    encoder: &Encoder,
    task: TextTask,
) -> anyhow::Result<()> {
    let dir = a.data.clone().unwrap_or_else(|| task.default_data_dir());
    let (mut spec, mut opts) = task.default_recipe();
    if let Some(f) = &a.features {
        spec = f.parse()?;
    }
    apply_overrides(a, &mut opts)?;
    let mut train_set = Dataset::load(encoder, &files.dir, task, &dir.join("train.tsv"))
        .with_context(|| format!("training data in {}", dir.display()))?;
    if task == TextTask::Anger && !a.no_neutral_negatives {
        // TweetEval emotion has no neutral class: without neutral tweets as negatives the
        // head calls every plain request angry.
        let neutral_file = TextTask::Sentiment.default_data_dir().join("train.tsv");
        let sentiment = Dataset::load(encoder, &files.dir, TextTask::Sentiment, &neutral_file)
            .with_context(|| format!("neutral negatives from {}", neutral_file.display()))?;
        train_set.add_negatives(&sentiment, 1);
    }
    let val_set = Dataset::load(encoder, &files.dir, task, &dir.join("val.tsv"))?;
    let started = std::time::Instant::now();
    let (head, report) = train::train_text_head(
        task,
        &train_set,
        &val_set,
        &spec,
        &opts,
        !a.no_prior_correction,
    )?;
    let secs = started.elapsed().as_secs_f64();
    if a.json {
        let anger_f1 = report.score("anger").map(|s| s.f1);
        println!(
            "{}",
            serde_json::json!({"task": task.name(), "features": spec.to_string(),
                "options": opts, "accuracy": report.accuracy, "macro_recall": report.macro_recall,
                "macro_f1": report.macro_f1, "anger_f1": anger_f1,
                "temperature": head.temperature, "train_seconds": secs,
                "half_split_macro_recall": head.notes.get("val_macro_recall_half_split")})
        );
    } else {
        super::eval::print_report(&report, 0);
        eprintln!(
            "{} head ({spec}) trained in {secs:.1}s; validation macro-recall {:.4}, temperature {:.2}",
            task.name(),
            report.macro_recall,
            head.temperature
        );
    }
    if !a.dry_run {
        let path = task.head_file(&a.places.models_dir);
        head.save(&path)?;
        eprintln!("saved {}", path.display());
    }
    Ok(())
}

fn apply_overrides(a: &TrainArgs, o: &mut TrainOptions) -> anyhow::Result<()> {
    if let Some(v) = a.hidden {
        o.hidden = v;
    }
    if let Some(v) = a.l2 {
        o.l2 = v;
    }
    if let Some(v) = a.epochs {
        o.epochs = v;
    }
    if let Some(v) = a.learning_rate {
        o.learning_rate = v;
    }
    if let Some(v) = a.dropout {
        o.dropout = v;
    }
    if let Some(v) = a.batch_size {
        o.batch_size = v;
    }
    if let Some(v) = &a.class_weights {
        o.class_weights = match v.as_str() {
            "balanced" => ClassWeights::Balanced,
            "uniform" => ClassWeights::Uniform,
            other => anyhow::bail!("--class-weights {other}: use `balanced` or `uniform`"),
        };
    }
    Ok(())
}

pub use super::eval::{eval, EvalArgs};
