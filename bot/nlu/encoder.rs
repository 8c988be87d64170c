//! Sentence encoder: BERT forward pass, mean pooling over the attention mask, L2 normalisation,
//! exactly as sentence-transformers does for all-MiniLM-L6-v2. The pass itself is
//! [`super::bert::Bert`]; this file turns text into word pieces and pooled features.

use candle_core::Tensor;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use super::bert::{Bert, MessageStates};
pub use super::kernels::WeightFormat;
use super::model::ModelFiles;
use super::NluError;

/// sentence-transformers truncates all-MiniLM-L6-v2 inputs at 256 word pieces.
pub const MAX_TOKENS: usize = 256;

/// Word pieces run through the model in one pass at most; a larger batch is split so working
/// memory stays small (about 2 MB per 100 tokens).
const TOKENS_PER_PASS: usize = 2048;

/// Everything one encoder pass yields for one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// L2-normalised mean pool of the last layer over the tokens: the sentence embedding.
    pub embedding: Vec<f32>,
    /// Mean pool (not normalised) of the hidden state after each layer, concatenated:
    /// `layers * dim`.
    pub layer_means: Vec<f32>,
    /// Max over tokens of the last layer: `dim`.
    pub max_pool: Vec<f32>,
}

pub struct Encoder {
    tokenizer: Tokenizer,
    model: Bert,
    dim: usize,
}

impl Encoder {
    /// Load the model, its layer weights packed as `FRONTDESK_WEIGHTS` says (default f16).
    pub fn load(files: &ModelFiles) -> Result<Self, NluError> {
        Self::load_as(files, WeightFormat::from_env())
    }

    /// [`load`](Self::load) with an explicit storage format for the layer weights.
    pub fn load_as(files: &ModelFiles, format: WeightFormat) -> Result<Self, NluError> {
        let model = Bert::load_as(&files.config(), &files.weights(), format)?;
        let mut tokenizer = Tokenizer::from_file(files.tokenizer())
            .map_err(|e| NluError::Model(format!("{}: {e}", files.tokenizer().display())))?;
        // The packaged tokenizer.json pads and truncates at 128; sentence-transformers does
        // neither for one text and truncates at 256.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS.min(model.max_tokens()),
                ..Default::default()
            }))
            .map_err(|e| NluError::Model(e.to_string()))?;
        Ok(Self {
            tokenizer,
            dim: model.hidden_size(),
            model,
        })
    }

    /// Width of one embedding.
    pub fn dim(&self) -> usize {
        self.dim
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
            let states = self.model.forward(&ids[start..end])?;
            out.extend(states.into_iter().map(|s| self.features(s)));
            start = end;
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
        }
    }

    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Encoding>, NluError> {
        let result = if texts.len() == 1 {
            // One message: skip the thread pool hand-off of encode_batch.
            self.tokenizer.encode(texts[0], true).map(|e| vec![e])
        } else {
            self.tokenizer.encode_batch(texts.to_vec(), true)
        };
        result.map_err(|e| NluError::Encode(e.to_string()))
    }
}

/// Mean over the tokens whose mask is 1. hidden: (n, len, dim), mask: (n, len) -> (n, dim).
pub fn mean_pool(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let m = mask.unsqueeze(2)?; // (n, len, 1)
    let summed = hidden.broadcast_mul(&m)?.sum(1)?;
    let counts = m.sum(1)?.clamp(1e-9, f64::MAX)?; // (n, 1)
    summed.broadcast_div(&counts)
}

/// Row-wise L2 normalisation, as sentence-transformers' Normalize module (eps 1e-12).
pub fn l2_normalize(x: &Tensor) -> candle_core::Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    x.broadcast_div(&norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn mean_pool_ignores_padding() {
        let d = Device::Cpu;
        let hidden = Tensor::new(&[[[1f32, 2.], [3., 4.], [100., 100.]]], &d).unwrap();
        let mask = Tensor::new(&[[1f32, 1., 0.]], &d).unwrap();
        let p = mean_pool(&hidden, &mask).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(p, vec![vec![2.0, 3.0]]);
    }

    #[test]
    fn l2_normalize_gives_unit_rows() {
        let d = Device::Cpu;
        let x = Tensor::new(&[[3f32, 4.], [0., 0.]], &d).unwrap();
        let n = l2_normalize(&x).unwrap().to_vec2::<f32>().unwrap();
        assert!((n[0][0] - 0.6).abs() < 1e-6 && (n[0][1] - 0.8).abs() < 1e-6);
        assert_eq!(n[1], vec![0.0, 0.0]);
    }
}
