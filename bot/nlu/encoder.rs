//! Text to sentence features: the sentence encoder (tokeniser, BERT forward pass, mean
//! pooling over the tokens, L2 normalisation, exactly as sentence-transformers does for
//! all-MiniLM-L6-v2), where its files come from, and the CPU kernels of the pass.
//!
//! - `model_files.rs`: finding, fetching and verifying the model files.
//! - `bert.rs`: our BERT forward pass (`bert/weights.rs` reads the safetensors file).
//! - `kernels.rs`: packed matrix products, attention, element-wise maths, helper threads.
//! - `int8_guard.rs`: the accuracy check `weights = "int8"` must pass at load time.
//!
//! This file turns text into word pieces and the pass's states into pooled [`Features`].

use tokenizers::{Encoding, Tokenizer, TruncationParams};

mod bert;
pub mod int8_guard;
pub(crate) mod kernels;
mod model_files;

use crate::{EncoderOptions, NluError};
use bert::{Bert, MessageStates};
pub use kernels::{IsaChoice, WeightFormat};
pub use model_files::ModelFiles;

/// sentence-transformers truncates all-MiniLM-L6-v2 inputs at 256 word pieces.
pub(crate) const MAX_TOKENS: usize = 256;

/// Word pieces run through the model in one pass at most; a larger batch is split so working
/// memory stays small (about 2 MB per 100 tokens).
const TOKENS_PER_PASS: usize = 2048;

/// Everything one encoder pass yields for one text. The hidden-state pools are empty when
/// they were not asked for ([`Encoder::encode_pooled`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// L2-normalised mean pool of the last layer over the tokens: the sentence embedding.
    pub embedding: Vec<f32>,
    /// Mean pool (not normalised) of the hidden state after each layer, concatenated:
    /// `layers * dim`.
    pub layer_means: Vec<f32>,
    /// Max over tokens of the last layer: `dim`.
    pub max_pool: Vec<f32>,
    /// The last layer's state of every token, `tokens * dim`, for heads with a token adapter;
    /// empty unless asked for ([`Pools::tokens`]).
    pub tokens: Vec<f32>,
}

/// What an encoder pass keeps besides the sentence embedding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pools {
    /// Per-layer mean pools and the last layer's max pool (about 3 KB a message).
    pub hidden: bool,
    /// The last layer's state of every token (1.5 KB a token).
    pub tokens: bool,
}

impl Pools {
    pub const EMBEDDING: Pools = Pools {
        hidden: false,
        tokens: false,
    };
    pub const ALL: Pools = Pools {
        hidden: true,
        tokens: true,
    };
}

pub struct Encoder {
    tokenizer: Tokenizer,
    model: Bert,
    dim: usize,
    /// The format the layer weights are in: as asked, except int8 that failed its check
    /// (then f16, the default).
    weights: WeightFormat,
    /// With `weights = "int8"`: what its load-time check measured.
    int8_check: Option<int8_guard::Check>,
}

impl Encoder {
    /// Load the model, its layer weights packed as `opts.weights` says.
    ///
    /// The first encoder loaded in a process also sets up the process-wide kernels from
    /// `opts` (instruction set, helper threads, spin); later loads reuse them.
    pub fn load(files: &ModelFiles, opts: &EncoderOptions) -> Result<Self, NluError> {
        kernels::configure(opts);
        let load = |format, cal| Bert::load(&files.config(), &files.weights(), format, cal);
        // int8 starts from f32: calibrated on it, checked against it.
        let first = match opts.weights {
            WeightFormat::Int8 => WeightFormat::F32,
            other => other,
        };
        let model = load(first, None)?;
        let mut tokenizer = Tokenizer::from_file(files.tokenizer()).map_err(|e| {
            NluError::model_from(
                format!(
                    "{} is not a tokenizer file: delete the model folder to fetch it again, or \
                     point nlu.model_dir at a sentence-transformers model",
                    files.tokenizer().display()
                ),
                e,
            )
        })?;
        // The packaged tokenizer.json pads and truncates at 128; sentence-transformers does
        // neither for one text and truncates at 256.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS.min(model.max_tokens()),
                ..Default::default()
            }))
            .map_err(|e| NluError::model_from("cannot set the tokenizer's truncation", e))?;
        let mut enc = Self {
            tokenizer,
            dim: model.hidden_size(),
            model,
            weights: first,
            int8_check: None,
        };
        if opts.weights == WeightFormat::Int8 {
            // Calibrate on f32 and keep its check embeddings, then let the f32 model go before
            // the int8 one is built, so the two never sit in memory together.
            let calibration = enc.tokenize(int8_guard::CALIBRATION_TEXTS)?;
            let ids: Vec<&[u32]> = calibration.iter().map(|e| e.get_ids()).collect();
            let cal = enc.model.calibrate(&ids)?;
            let texts = int8_guard::CHECK_TEXTS;
            let want = enc.encode(texts)?;
            let Self {
                tokenizer,
                dim,
                model: exact,
                ..
            } = enc;
            drop(exact);
            let int8 = Self {
                model: load(WeightFormat::Int8, Some(&cal))?,
                tokenizer,
                dim,
                weights: WeightFormat::Int8,
                int8_check: None,
            };
            let check = int8_guard::Check::of(&want, &int8.encode(texts)?);
            enc = if check.holds() {
                tracing::info!(
                    mean_cosine = check.mean,
                    lowest_cosine = check.lowest,
                    dot = ?kernels::int8::dot(),
                    "int8 weights hold: using them"
                );
                Self {
                    int8_check: Some(check),
                    ..int8
                }
            } else {
                tracing::warn!(
                    mean_cosine = check.mean,
                    lowest_cosine = check.lowest,
                    "int8 weights drift too far from f32 on this model or this CPU's int8 \
                     products (floors: mean {}, lowest {}): using the default f16 weights; \
                     set nlu.weights = \"f16\" to skip this check",
                    int8_guard::MIN_MEAN_COSINE,
                    int8_guard::MIN_COSINE,
                );
                let Self {
                    tokenizer,
                    dim,
                    model: refused,
                    ..
                } = int8;
                drop(refused);
                Self {
                    model: load(WeightFormat::F16, None)?,
                    tokenizer,
                    dim,
                    weights: WeightFormat::F16,
                    int8_check: Some(check),
                }
            };
        }
        Ok(enc)
    }

    /// The format the layer weights are in (int8 only if its load-time check held).
    pub fn weights(&self) -> WeightFormat {
        self.weights
    }

    /// With `weights = "int8"` asked for: what its check measured against f32.
    pub fn int8_check(&self) -> Option<int8_guard::Check> {
        self.int8_check
    }

    /// Width of one embedding.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of attention heads per layer.
    pub fn heads(&self) -> usize {
        self.model.heads()
    }

    /// Number of transformer layers (the blocks of [`Features::layer_means`]).
    pub fn layers(&self) -> usize {
        self.model.num_layers()
    }

    /// Number of word pieces a text becomes (after truncation).
    pub fn token_count(&self, text: &str) -> Result<usize, NluError> {
        Ok(self.tokenize(&[text])?[0].get_ids().len())
    }

    /// L2-normalised mean-pooled embeddings, one per text, in input order.
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, NluError> {
        Ok(self
            .encode_features(texts)?
            .into_iter()
            .map(|f| f.embedding)
            .collect())
    }

    /// The sentence embedding plus per-layer mean pools and the last layer's max pool, one
    /// per text, in input order, from a single pass.
    pub fn encode_features(&self, texts: &[&str]) -> Result<Vec<Features>, NluError> {
        self.encode_keeping(texts, None)
    }

    /// Every token's hidden state after layer `layer` (1-based), one `tokens * dim` vector per
    /// text: what a branch fine-tuned above that layer reads.
    pub fn token_states_after(
        &self,
        texts: &[&str],
        layer: usize,
    ) -> Result<Vec<Vec<f32>>, NluError> {
        Ok(self
            .encode_keeping(texts, Some(layer))?
            .into_iter()
            .map(|f| f.tokens)
            .collect())
    }

    fn encode_keeping(
        &self,
        texts: &[&str],
        keep_tokens: Option<usize>,
    ) -> Result<Vec<Features>, NluError> {
        let encodings = self.tokenize(texts)?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        let mut out = Vec::with_capacity(texts.len());
        let mut start = 0;
        while start < ids.len() {
            let mut end = start + 1;
            let mut tokens = ids[start].len();
            while end < ids.len() && tokens + ids[end].len() <= TOKENS_PER_PASS {
                tokens += ids[end].len();
                end += 1;
            }
            let states = self.model.forward(&ids[start..end], keep_tokens)?;
            out.extend(states.into_iter().map(|s| self.features(s)));
            start = end;
        }
        Ok(out)
    }

    /// [`encode_features`](Self::encode_features), keeping the hidden-state pools and the
    /// token states only as `keep` says (callers that need only the embedding do not carry
    /// 3 KB more per message).
    pub fn encode_pooled(&self, texts: &[&str], keep: Pools) -> Result<Vec<Features>, NluError> {
        let last = self.layers();
        let mut out = self.encode_keeping(texts, keep.tokens.then_some(last))?;
        if !keep.hidden {
            for f in &mut out {
                f.layer_means = Vec::new();
                f.max_pool = Vec::new();
            }
        }
        Ok(out)
    }

    fn features(&self, s: MessageStates) -> Features {
        let d = self.dim;
        let last = &s.layer_means[s.layer_means.len() - d..];
        let norm = last.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        Features {
            embedding: last.iter().map(|v| v / norm).collect(),
            max_pool: s.last_max,
            layer_means: s.layer_means,
            tokens: s.tokens,
        }
    }

    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Encoding>, NluError> {
        let result = if texts.len() == 1 {
            // One message: skip the thread pool hand-off of encode_batch.
            self.tokenizer.encode(texts[0], true).map(|e| vec![e])
        } else {
            self.tokenizer.encode_batch(texts.to_vec(), true)
        };
        result.map_err(|e| NluError::encode_from("the tokenizer refused a text", e))
    }
}
