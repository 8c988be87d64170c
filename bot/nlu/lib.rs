//! frontdesk's local natural-language understanding: one encoder pass per message feeds the
//! intent, sentiment, anger and frustration heads; entities come from rules.
//!
//! Map of the crate, by lifecycle:
//! - [`Nlu`] (here): load the encoder and heads, understand a batch of messages.
//! - `options.rs`: [`NluOptions`] / [`EncoderOptions`], every setting the crate reads (it
//!   reads no environment variables; the application's config layer fills these in).
//! - `analysis.rs`, `entities.rs`, `intents.rs`: what a message is understood as, the
//!   rule-based entities and the intent definitions of `intents/`.
//! - `service.rs`: [`NluService`], the batching worker many async callers share.
//! - `json_lines.rs`: [`Nlu::analyze_lines`], the `frontdesk nlu` line protocol.
//! - `encoder/`: text to sentence features: model files, tokeniser, our BERT forward pass
//!   and its CPU kernels.
//! - `heads/`: the small classifiers on those features, their file format and the feature
//!   rows they read.
//! - [`training`]: fitting and evaluating heads (the `train` and `eval` commands' logic).
//! - [`bench`]: measuring helpers for `bench nlu` (the stock candle BERT yardstick).

mod analysis;
pub mod bench;
pub mod encoder;
pub mod entities; // public for the fuzz targets (tests/fuzz)
mod error;
mod heads;
mod intents;
mod json_lines;
mod model_text;
mod options;
mod service;
pub mod training;

pub use analysis::{
    Analysis, Entity, EntityKind, FrustrationScores, Sentiment, SentimentScores, Stake,
    StakesScores, OUT_OF_SCOPE,
};
pub use encoder::{IsaChoice, WeightFormat};
pub use error::NluError;
pub use intents::{
    Intent, IntentError, IntentSet, OutOfScope, Response, Slot, MIN_EXAMPLES, RECOMMENDED_EXAMPLES,
};
pub use model_text::model_text;
pub use options::{EncoderOptions, NluOptions};
pub use service::{NluService, ServiceOptions};

use encoder::{Encoder, Features, ModelFiles, Pools};
use heads::{FeatureSpec, Head, TextTask};

/// A head and the feature row it reads.
struct Reader {
    head: Head,
    spec: FeatureSpec,
}

impl Reader {
    fn probabilities(&self, pooled: &Features, text: &str) -> Result<Vec<f32>, NluError> {
        Ok(self
            .head
            .probabilities_with(&self.spec.row(pooled, text)?, &pooled.tokens))
    }
}

/// The NLU engine: text in, [`Analysis`] out. One encoder pass per message feeds the intent,
/// sentiment, anger and frustration heads; entities come from rules. Shareable across threads.
pub struct Nlu {
    encoder: Encoder,
    /// The intents and the head trained on them; a reload swaps both at once, and a batch
    /// reads one pair from start to end.
    intent: std::sync::RwLock<std::sync::Arc<IntentPart>>,
    sentiment: Reader,
    anger: Reader,
    frustration: Reader,
    stakes: Reader,
    /// What the heads read besides the sentence embedding.
    keep: Pools,
    /// Where it was loaded from: a reload of the intents trains (or finds) its head there.
    options: NluOptions,
}

/// The intents in force and their head.
struct IntentPart {
    set: IntentSet,
    reader: Reader,
}

impl Nlu {
    /// Load the encoder and the heads; retrain the intent head first when the definitions in
    /// `intents_dir` changed since it was stored.
    ///
    /// The kernel settings of `opts.encoder` (instruction set, threads, spin) are
    /// process-wide: the first encoder loaded in a process sets them, later ones reuse them.
    pub fn load(opts: &NluOptions) -> Result<Nlu, NluError> {
        let files = ModelFiles::resolve(opts.model_dir.as_deref(), &opts.cache_dir)?;
        let encoder = Encoder::load(&files, &opts.encoder)?;
        let intents = IntentSet::load_dir(&opts.intents_dir)?;
        let text_head = |task: TextTask| -> Result<Reader, NluError> {
            let path = task.head_file(&opts.models_dir);
            if !path.is_file() {
                return Err(NluError::head(format!(
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
                return Err(NluError::head(format!(
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
        let frustration = text_head(TextTask::Frustration)?;
        let stakes = text_head(TextTask::Stakes)?;
        // after the committed heads are found, so a wrong --models-dir fails before training
        let intent_head = training::intent_head_for(&encoder, &intents, opts)?;
        let intent = Reader {
            head: intent_head,
            spec: FeatureSpec::embedding(),
        };
        let readers = [&intent, &sentiment, &anger, &frustration, &stakes];
        let keep = Pools {
            hidden: readers.iter().any(|r| r.spec.needs_hidden_states()),
            tokens: readers.iter().any(|r| r.head.needs_tokens()),
        };
        let nlu = Nlu {
            encoder,
            intent: std::sync::RwLock::new(std::sync::Arc::new(IntentPart {
                set: intents,
                reader: intent,
            })),
            sentiment,
            anger,
            frustration,
            stakes,
            keep,
            options: opts.clone(),
        };
        nlu.check_widths()?;
        Ok(nlu)
    }

    /// A head fed rows of another width would answer nonsense: refuse at load.
    fn check_widths(&self) -> Result<(), NluError> {
        let pooled = self.encoder.encode_pooled(&["hello"], self.keep)?;
        let intent = self.intent_part();
        for r in [
            &intent.reader,
            &self.sentiment,
            &self.anger,
            &self.frustration,
            &self.stakes,
        ] {
            let width = r.spec.row(&pooled[0], "hello")?.len();
            if width != r.head.input_dim() {
                return Err(NluError::head(format!(
                    "a head reads {} values but `{}` gives {width} with this model: retrain it \
                     with `frontdesk train`",
                    r.head.input_dim(),
                    r.spec
                )));
            }
            if let Some(a) = &r.head.adapter {
                if a.dim() != self.encoder.dim() {
                    return Err(NluError::head(format!(
                        "a head's token adapter reads states of width {} but this model's are \
                         {} wide: retrain it with `frontdesk train`",
                        a.dim(),
                        self.encoder.dim()
                    )));
                }
            }
        }
        Ok(())
    }

    fn intent_part(&self) -> std::sync::Arc<IntentPart> {
        self.intent.read().expect("intent head lock").clone()
    }

    /// The intent definitions the head in force was trained on.
    pub fn intents(&self) -> IntentSet {
        self.intent_part().set.clone()
    }

    /// The out-of-scope confidence threshold of the intent head in force.
    pub fn intent_threshold(&self) -> Option<f32> {
        self.intent_part().reader.head.threshold
    }

    /// Puts `set` in force: its head is read from the models folder when one was trained
    /// for these intents, else trained here (seconds to a minute; the caller runs this off
    /// the async threads). Messages understood meanwhile use the head in force; once this
    /// returns, the next batch uses the new one.
    pub fn reload_intents(&self, set: IntentSet) -> Result<(), NluError> {
        let head = training::intent_head_for(&self.encoder, &set, &self.options)?;
        let reader = Reader {
            head,
            spec: FeatureSpec::embedding(),
        };
        let pooled = self.encoder.encode_pooled(&["hello"], self.keep)?;
        let width = reader.spec.row(&pooled[0], "hello")?.len();
        if width != reader.head.input_dim() {
            return Err(NluError::head(format!(
                "the retrained intent head reads {} values, the model gives {width}",
                reader.head.input_dim()
            )));
        }
        *self.intent.write().expect("intent head lock") =
            std::sync::Arc::new(IntentPart { set, reader });
        Ok(())
    }

    /// Sentence embeddings (mean-pooled over the tokens, L2-normalised, as
    /// sentence-transformers computes them): the same vector the intent head reads.
    /// Results in input order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, NluError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let pooled = self.encoder.encode_pooled(texts, Pools::EMBEDDING)?;
        Ok(pooled.into_iter().map(|f| f.embedding).collect())
    }

    /// Understand a batch of messages with one encoder pass; results in input order.
    /// The encoder's weight format in use (int8 only if its load-time check held).
    pub fn encoder_weights(&self) -> WeightFormat {
        self.encoder.weights()
    }

    pub fn analyze(&self, texts: &[&str]) -> Result<Vec<Analysis>, NluError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // the heads read the message without handles and links (see `model_text.rs`)
        let model: Vec<std::borrow::Cow<str>> = texts.iter().map(|t| model_text(t)).collect();
        let refs: Vec<&str> = model.iter().map(|m| m.as_ref()).collect();
        let pooled = self.encoder.encode_pooled(&refs, self.keep)?;
        let intent_part = self.intent_part();
        let intent_reader = &intent_part.reader;
        texts
            .iter()
            .zip(refs)
            .zip(&pooled)
            .map(|((&text, read), p)| {
                let ip = intent_reader.probabilities(p, read)?;
                let (intent, intent_confidence) = heads::decide_intent(&intent_reader.head, &ip);
                let sp = self.sentiment.probabilities(p, read)?;
                let sentiment_scores = SentimentScores {
                    negative: sp[0],
                    neutral: sp[1],
                    positive: sp[2],
                };
                let anger = self.anger.probabilities(p, read)?[1];
                let fp = self.frustration.probabilities(p, read)?;
                let frustration = FrustrationScores {
                    calm: fp[0],
                    frustrated: fp[1],
                    angry: fp[2],
                };
                let stakes = StakesScores::from_probabilities(&self.stakes.probabilities(p, read)?);
                Ok(Analysis {
                    text: text.to_string(),
                    intent: intent.to_string(),
                    intent_confidence,
                    sentiment: sentiment_scores.label(),
                    sentiment_scores,
                    anger,
                    frustration,
                    stakes,
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
    is::<NluError>();
}
