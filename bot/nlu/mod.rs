//! Local natural-language understanding: one encoder pass per message feeds the intent,
//! sentiment and anger heads; entities come from rules.

pub mod analysis;
pub mod bench;
pub mod bert;
pub mod calibration;
pub mod cmd;
pub mod encoder;
pub mod entities;
pub mod eval;
pub mod features;
pub mod heads;
pub mod intent_head;
pub mod intents;
pub mod kernels;
pub mod metrics;
pub mod model;
pub mod sentiment;
pub mod service;
pub mod stream;
pub mod train;

/// What can go wrong understanding a message; each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum NluError {
    #[error("model: {0}")]
    Model(String),
    #[error("encoding failed: {0}")]
    Encode(String),
    #[error("training failed: {0}")]
    Train(String),
    #[error("{0}")]
    Head(String),
    #[error(transparent)]
    Intents(#[from] intents::IntentError),
    #[error("{0}")]
    Other(String),
}

use std::path::PathBuf;

use analysis::{Analysis, SentimentScores};
use encoder::Encoder;
use features::FeatureSpec;
use heads::Head;
use intents::IntentSet;
use train::TextTask;

/// Where the NLU finds its model, intents and trained heads.
#[derive(Debug, Clone)]
pub struct NluOptions {
    /// A sentence-transformers BERT model directory; `None` uses `FRONTDESK_MODEL_DIR` or the
    /// default all-MiniLM-L6-v2 in the cache (fetched on first use).
    pub model_dir: Option<PathBuf>,
    /// Intent definitions (default `intents`).
    pub intents_dir: PathBuf,
    /// Trained heads (default `models`): `sentiment.safetensors`, `anger.safetensors` and the
    /// intent head `intents-<hash12>.safetensors`, retrained here when intents/ changed.
    pub models_dir: PathBuf,
    /// Validation data for the out-of-scope threshold when the intent head is retrained
    /// (default `tests/data`; ignored when missing or not matching the intents).
    pub validation_dir: PathBuf,
}

impl Default for NluOptions {
    fn default() -> Self {
        Self {
            model_dir: std::env::var_os("FRONTDESK_MODEL_DIR").map(PathBuf::from),
            intents_dir: PathBuf::from("intents"),
            models_dir: PathBuf::from("models"),
            validation_dir: PathBuf::from("tests/data"),
        }
    }
}

/// A head and the feature row it reads.
struct Reader {
    head: Head,
    spec: FeatureSpec,
}

impl Reader {
    fn probabilities(&self, pooled: &features::Pooled, text: &str) -> Result<Vec<f32>, NluError> {
        Ok(self.head.probabilities(&self.spec.row(pooled, text)?))
    }
}

/// The NLU engine: text in, [`Analysis`] out. One encoder pass per message feeds the intent,
/// sentiment and anger heads; entities come from rules. Shareable across threads.
pub struct Nlu {
    encoder: Encoder,
    intents: IntentSet,
    intent: Reader,
    sentiment: Reader,
    anger: Reader,
    /// Whether any head reads more than the sentence embedding.
    hidden: bool,
}

impl Nlu {
    /// Load the encoder and the heads; retrain the intent head first when the definitions in
    /// `intents_dir` changed since it was stored.
    pub fn load(opts: &NluOptions) -> Result<Nlu, NluError> {
        let files = model::ModelFiles::resolve(opts.model_dir.as_deref())?;
        let encoder = Encoder::load(&files)?;
        let intents = IntentSet::load_dir(&opts.intents_dir)?;
        let text_head = |task: TextTask| -> Result<Reader, NluError> {
            let path = task.head_file(&opts.models_dir);
            if !path.is_file() {
                return Err(NluError::Head(format!(
                    "{} head missing at {}: run `frontdesk train {}` (or point --models-dir at \
                     the repository's models/)",
                    task.name(),
                    path.display(),
                    task.name()
                )));
            }
            let head = Head::load(&path)?;
            let spec: FeatureSpec = head.feature_spec.parse()?;
            if head.labels() != task.labels().as_slice() {
                return Err(NluError::Head(format!(
                    "{} has labels {:?}, expected {:?}: run `frontdesk train {}`",
                    path.display(),
                    head.labels(),
                    task.labels(),
                    task.name()
                )));
            }
            Ok(Reader { head, spec })
        };
        let sentiment = text_head(TextTask::Sentiment)?;
        let anger = text_head(TextTask::Anger)?;
        // after the committed heads are found, so a wrong --models-dir fails before training
        let intent_head = Self::intent_head(&encoder, &intents, opts)?;
        let intent = Reader {
            head: intent_head,
            spec: FeatureSpec::embedding(),
        };
        let hidden = [&intent, &sentiment, &anger]
            .iter()
            .any(|r| r.spec.needs_hidden_states());
        let nlu = Nlu {
            encoder,
            intents,
            intent,
            sentiment,
            anger,
            hidden,
        };
        nlu.check_widths()?;
        Ok(nlu)
    }

    fn intent_head(enc: &Encoder, set: &IntentSet, opts: &NluOptions) -> Result<Head, NluError> {
        let hash = set.hash();
        let path = train::intent_head_file(&opts.models_dir, &hash);
        if path.is_file() {
            match Head::load(&path) {
                Ok(h) if h.notes.get("intents_hash") == Some(&hash) => return Ok(h),
                Ok(_) => tracing::warn!(path = %path.display(), "intent head of another set"),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        tracing::info!(intents = %opts.intents_dir.display(), "intents changed: retraining");
        let validation = train::ScopeValidation::load(&opts.validation_dir)?;
        let (head, _) = train::train_intents(enc, set, validation.as_ref())?;
        match train::store_intent_head(&opts.models_dir, &head, &hash) {
            Ok(p) => tracing::info!(path = %p.display(), "intent head stored"),
            // a read-only models folder still serves, it just retrains at every start
            Err(e) => tracing::warn!("{e}"),
        }
        Ok(head)
    }

    /// A head fed rows of another width would answer nonsense: refuse at load.
    fn check_widths(&self) -> Result<(), NluError> {
        let pooled = features::encode(&self.encoder, &["hello"], self.hidden)?;
        for r in [&self.intent, &self.sentiment, &self.anger] {
            let width = r.spec.row(&pooled[0], "hello")?.len();
            if width != r.head.input_dim() {
                return Err(NluError::Head(format!(
                    "a head reads {} values but `{}` gives {width} with this model: retrain it \
                     with `frontdesk train`",
                    r.head.input_dim(),
                    r.spec
                )));
            }
        }
        Ok(())
    }

    /// The intent definitions the head was trained on.
    pub fn intents(&self) -> &IntentSet {
        &self.intents
    }

    /// Understand a batch of messages with one encoder pass; results in input order.
    pub fn analyze(&self, texts: &[&str]) -> Result<Vec<Analysis>, NluError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let pooled = features::encode(&self.encoder, texts, self.hidden)?;
        texts
            .iter()
            .zip(&pooled)
            .map(|(&text, p)| {
                let ip = self.intent.probabilities(p, text)?;
                let (intent, intent_confidence) = train::decide_intent(&self.intent.head, &ip);
                let sp = self.sentiment.probabilities(p, text)?;
                let sentiment_scores = SentimentScores {
                    negative: sp[0],
                    neutral: sp[1],
                    positive: sp[2],
                };
                let anger = self.anger.probabilities(p, text)?[1];
                Ok(Analysis {
                    text: text.to_string(),
                    intent: intent.to_string(),
                    intent_confidence,
                    sentiment: sentiment_scores.label(),
                    sentiment_scores,
                    anger,
                    entities: entities::extract(text),
                })
            })
            .collect()
    }
}

#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Nlu>();
}
