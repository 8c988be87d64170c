//! `frontdesk train`: the intent head (from the intents), the sentiment / anger heads (from
//! TweetEval files) or the frustration head (support messages, tweets and routine requests).

use std::path::PathBuf;

use frontdesk::nlu::training::{self, ClassWeights, TextTask, TextTrainPlan, TrainOptions};

use super::eval::print_report;
use super::nlu::Places;
use super::support::Bars;

#[derive(clap::Args)]
#[command(
    long_about = "Trains a head and stores it under the models folder.\n\n\
    intents (default): from the intents, in seconds; stored as models/intents-<hash12>.safetensors \
    (older ones removed). The out-of-scope threshold is chosen on out_of_scope_val.txt and \
    in_scope_val.csv of the validation folder when they fit the intents.\n\n\
    sentiment / anger: from TweetEval (train.tsv, choosing on val.tsv), minutes on 2 cores; \
    stored as models/sentiment.safetensors / models/anger.safetensors.\n\n\
    frustration: calm / frustrated / angry, from data/frustration/train.tsv (choosing on val.tsv) \
    with TweetEval tweets (--tweet-weight, --sadness, --negative) and routine Bitext requests \
    (--bitext, --bitext-weight; even rows only) mixed in; stored as \
    models/frustration.safetensors.\n\n\
    stakes: what is at stake in a support message (none, safety, money, vulnerability, business, \
    legal, privacy) and whose problem it is (own_life, own_mistake, third_party, solved), from \
    data/stakes/train.tsv (every fifth line chooses; test.tsv stays held out) with routine Bitext \
    requests (--bitext-weight) and calm support messages (--calm-weight) as `none`, and upset \
    ones as `complaint` (--upset-weight); stored as models/stakes.safetensors.\n\n\
    --feedback (frustration, sentiment, anger): also learns from agents' marks of escalations \
    (the configured store, or --feedback-file from `frontdesk feedback export`): a \"not needed\" \
    escalation by the head's own rule teaches that the messages that fired it were calm \
    (neutral, not anger), a \"needed\" one whose rules all read the customer's tone teaches \
    upset. The examples are kept in <models>/feedback/<head>.tsv, the odd lines of val.tsv are \
    held out for the before/after report, and the head in force is kept as \
    <head>.before-feedback-<time>.safetensors (copy it back to go back).\n\n\
    Encoder outputs are cached under the cache folder (features/), so a second run takes seconds."
)]
pub struct TrainArgs {
    /// What to train.
    #[arg(value_enum, default_value_t = TrainWhat::Intents)]
    pub what: TrainWhat,
    #[command(flatten)]
    pub places: Places,
    /// Validation data for the out-of-scope threshold (intents only; default: the shipped
    /// validation sets, which fit the shipped intents).
    #[arg(long)]
    pub validation_dir: Option<PathBuf>,
    /// Data folder with train.tsv and val.tsv (sentiment: ../shared/data/tweeteval/sentiment,
    /// anger: ../shared/data/tweeteval/emotion, frustration: data/frustration).
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
    /// Class weights: `balanced`, `uniform`, or one weight per label (`1,1.5,1`).
    #[arg(long)]
    pub class_weights: Option<String>,
    /// Frustration only: loss weight of one TweetEval tweet (a support message counts 1;
    /// 0 leaves tweets out).
    #[arg(long)]
    pub tweet_weight: Option<f32>,
    /// Frustration only: class of TweetEval emotion `sadness` tweets (calm, frustrated,
    /// none = left out).
    #[arg(long)]
    pub sadness: Option<String>,
    /// Frustration only: class of TweetEval sentiment `negative` tweets (calm, frustrated,
    /// none = left out).
    #[arg(long)]
    pub negative: Option<String>,
    /// Frustration only: Bitext CSV whose routine requests (not `complaint`, even rows) are
    /// calm examples (default ../shared/data/bitext/train.csv).
    #[arg(long)]
    pub bitext: Option<PathBuf>,
    /// Frustration and stakes: loss weight of one Bitext request (0 leaves them out).
    #[arg(long)]
    pub bitext_weight: Option<f32>,
    /// Stakes only: loss weight of one frustrated or angry support message
    /// (data/frustration/train.tsv), taught as `complaint` (0 leaves them out).
    #[arg(long)]
    pub upset_weight: Option<f32>,
    /// Stakes only: loss weight of one calm support message (data/frustration/train.tsv),
    /// taught as `none` (0 leaves them out).
    #[arg(long)]
    pub calm_weight: Option<f32>,

    /// Anger only: do not add the neutral tweets of the sentiment training set as non-anger
    /// examples (the default since escalation reads the frustration head: anger F1 on val
    /// 0.818 without them, 0.811 with).
    #[arg(long, conflicts_with = "neutral_negatives")]
    pub no_neutral_negatives: bool,
    /// Anger only: add the neutral tweets of the sentiment training set as non-anger examples.
    #[arg(long)]
    pub neutral_negatives: bool,
    /// Train a token adapter of this width on top of the head (a learned reader of the last
    /// layer's token states, see `bot/nlu/heads/adapter.rs`); 0 trains none. The default is
    /// the head's recipe (sentiment and anger: 64; frustration: none).
    #[arg(long, value_name = "WIDTH")]
    pub adapter: Option<usize>,
    /// Adapter: most epochs (the epoch with the best validation score is kept).
    #[arg(long)]
    pub adapter_epochs: Option<usize>,
    /// Adapter: AdamW learning rate.
    #[arg(long)]
    pub adapter_lr: Option<f64>,
    /// Adapter: L2 penalty on its weights.
    #[arg(long)]
    pub adapter_l2: Option<f64>,
    /// Adapter: dropout on the projected tokens while training.
    #[arg(long)]
    pub adapter_dropout: Option<f32>,
    /// Sentiment / anger: also measure a fine-tuned copy of the top encoder layer on top of
    /// the head (validation score per epoch in the JSON report; not saved).
    #[arg(long)]
    pub finetune_top: bool,
    /// Fine-tuning: epochs.
    #[arg(long)]
    pub finetune_epochs: Option<usize>,
    /// Fine-tuning: learning rate of the layer.
    #[arg(long)]
    pub finetune_lr: Option<f64>,
    /// Skip the prior correction (per-class logit offsets chosen on val for macro-recall; the
    /// stakes head's recipe has none).
    #[arg(long)]
    pub no_prior_correction: bool,
    /// Frustration, sentiment, anger: also learn from agents' marks of escalations in the
    /// configured store (`frontdesk feedback export` shows them): the messages that fired the
    /// head's rules become labelled examples in <models>/feedback/<head>.tsv, apart from the
    /// shipped data. val.tsv's odd lines are then held out for the report; the head in force is
    /// kept as <head>.before-feedback-<time>.safetensors.
    #[arg(long)]
    pub feedback: bool,
    /// Read the marks from this `frontdesk feedback export` file instead (implies --feedback).
    #[arg(long, value_name = "F.jsonl")]
    pub feedback_file: Option<PathBuf>,
    /// The window of marks read from the store.
    #[arg(long, default_value = "90d")]
    pub feedback_since: String,
    /// Loss weight of one feedback example (a shipped example counts 1). Default: 1, 2, 4,
    /// ... 32 in turn, keeping the first with which the head decides every marked message as
    /// the agents marked it (the smallest change that does).
    #[arg(long)]
    pub feedback_weight: Option<f32>,
    /// Do not also retrain without the feedback for the report (saves one training).
    #[arg(long)]
    pub no_baseline: bool,
    /// Report validation scores without saving the head.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the validation report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The loss weights of one feedback example tried in turn without `--feedback-weight`.
pub const FEEDBACK_WEIGHTS: [f32; 6] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0];

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainWhat {
    Intents,
    Sentiment,
    Anger,
    Frustration,
    Stakes,
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    let mut opts = a.places.options()?;
    match a.what {
        TrainWhat::Intents => {
            if let Some(dir) = &a.validation_dir {
                opts.validation_dir = Some(dir.clone());
            }
            let t = training::train_intents(&opts)?;
            eprintln!(
                "trained {} intents in {:.1}s -> {}",
                t.intents,
                t.train_seconds,
                t.path.display()
            );
            match t.choice {
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
                    opts.validation_dir
                        .as_deref()
                        .map_or_else(|| "(none given)".into(), |d| d.display().to_string()),
                    t.threshold
                ),
            }
            Ok(())
        }
        TrainWhat::Sentiment => train_text(&a, &opts, TextTask::Sentiment),
        TrainWhat::Anger => train_text(&a, &opts, TextTask::Anger),
        TrainWhat::Frustration => train_text(&a, &opts, TextTask::Frustration),
        TrainWhat::Stakes => train_text(&a, &opts, TextTask::Stakes),
    }
}

fn train_text(
    a: &TrainArgs,
    opts: &frontdesk::nlu::NluOptions,
    task: TextTask,
) -> anyhow::Result<()> {
    let mut plan = TextTrainPlan::new(task);
    if let Some(dir) = &a.data {
        plan.data_dir = dir.clone();
    }
    if let Some(f) = &a.features {
        plan.features = f.clone();
    }
    apply_overrides(a, &mut plan.options)?;
    if a.neutral_negatives || a.no_neutral_negatives {
        plan.neutral_negatives = a.neutral_negatives;
    }
    if a.no_prior_correction {
        plan.prior_correction = false;
    }
    match a.adapter {
        Some(0) => plan.adapter = None,
        Some(width) => plan.adapter.get_or_insert_with(Default::default).width = width,
        None => {}
    }
    if let Some(ad) = plan.adapter.as_mut() {
        if let Some(v) = a.adapter_epochs {
            ad.epochs = v;
        }
        if let Some(v) = a.adapter_lr {
            ad.learning_rate = v;
        }
        if let Some(v) = a.adapter_l2 {
            ad.l2 = v;
        }
        if let Some(v) = a.adapter_dropout {
            ad.dropout = v;
        }
    }
    if a.finetune_top {
        let mut ft = training::FinetuneOptions::default();
        if let Some(v) = a.finetune_epochs {
            ft.epochs = v;
        }
        if let Some(v) = a.finetune_lr {
            ft.layer_lr = v;
        }
        plan.finetune = Some(ft);
    }
    let m = &mut plan.mix;
    if let Some(w) = a.tweet_weight {
        m.tweet_weight = w;
        if w == 0.0 {
            (m.emotion_dir, m.sentiment_dir) = (None, None);
        }
    }
    if let Some(c) = &a.sadness {
        m.sadness = Some(c.clone());
    }
    if let Some(c) = &a.negative {
        m.negative = Some(c.clone());
    }
    if let Some(p) = &a.bitext {
        m.bitext = Some(p.clone());
    }
    if let Some(w) = a.bitext_weight {
        m.bitext_weight = w;
        if w == 0.0 {
            m.bitext = None;
        }
    }
    if let Some(w) = a.upset_weight {
        m.upset_weight = w;
    }
    if let Some(w) = a.calm_weight {
        m.calm_weight = w;
    }
    if a.feedback || a.feedback_file.is_some() {
        let flags = super::feedback::Flags {
            file: a.feedback_file.as_deref(),
            config: a.places.config.as_deref(),
            since: &a.feedback_since,
            weights: a
                .feedback_weight
                .map_or(FEEDBACK_WEIGHTS.to_vec(), |w| vec![w]),
            baseline: !a.no_baseline,
            dry_run: a.dry_run,
            json: a.json,
        };
        anyhow::ensure!(
            matches!(
                task,
                TextTask::Frustration | TextTask::Sentiment | TextTask::Anger
            ),
            "--feedback retrains the frustration, sentiment and anger heads"
        );
        return super::feedback::retrain(plan, opts, &flags);
    }
    let t = plan.run(opts, &Bars::default())?;
    let report = &t.report;
    if a.json {
        let anger_f1 = report.score("anger").map(|s| s.f1);
        println!(
            "{}",
            serde_json::json!({"task": task.name(), "features": t.features,
                "options": t.options, "accuracy": report.accuracy,
                "macro_recall": report.macro_recall, "macro_f1": report.macro_f1,
                "anger_f1": anger_f1, "temperature": t.temperature,
                "train_seconds": t.train_seconds, "train_counts": t.train_counts,
                "mix": matches!(task, TextTask::Frustration | TextTask::Stakes).then_some(&plan.mix),
                "per_label": report.per_label, "matrix": report.matrix,
                "half_split_macro_recall": t.half_split_macro_recall,
                "half_split_anger_f1": t.half_split_anger_f1,
                "adapter": t.adapter, "adapter_epochs": t.adapter_epochs,
                "finetune_epochs": t.finetune_epochs})
        );
    } else {
        print_report(report, 0);
        eprintln!(
            "{} head ({}) trained in {:.1}s; validation macro-recall {:.4}, temperature {:.2}",
            task.name(),
            t.features,
            t.train_seconds,
            report.macro_recall,
            t.temperature
        );
    }
    if !a.dry_run {
        let path = t.save(&opts.models_dir)?;
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
            list => ClassWeights::Given(
                list.split(',')
                    .map(|w| w.trim().parse::<f32>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "--class-weights {list}: use `balanced`, `uniform` or numbers like \
                             `1,1.5,1`"
                        )
                    })?,
            ),
        };
    }
    Ok(())
}
