//! Sentence encoder: BERT forward pass, mean pooling over the attention mask, L2 normalisation,
//! exactly as sentence-transformers does for all-MiniLM-L6-v2.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationParams};

use super::model::ModelFiles;
use super::NluError;

/// sentence-transformers truncates all-MiniLM-L6-v2 inputs at 256 word pieces.
pub const MAX_TOKENS: usize = 256;

pub struct Encoder {
    tokenizer: Tokenizer,
    model: BertModel,
    device: Device,
    dim: usize,
}

impl Encoder {
    pub fn load(files: &ModelFiles) -> Result<Self, NluError> {
        let mut tokenizer = Tokenizer::from_file(files.tokenizer())
            .map_err(|e| NluError::Model(format!("{}: {e}", files.tokenizer().display())))?;
        // The packaged tokenizer.json pads and truncates at 128; sentence-transformers does
        // neither for one text and truncates at 256.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| NluError::Model(e.to_string()))?;
        let cfg_text = std::fs::read_to_string(files.config())
            .map_err(|e| NluError::Model(format!("{}: {e}", files.config().display())))?;
        let config: Config = serde_json::from_str(&cfg_text)
            .map_err(|e| NluError::Model(format!("{}: {e}", files.config().display())))?;
        let device = Device::Cpu;
        let vb =
            unsafe { VarBuilder::from_mmaped_safetensors(&[files.weights()], DType::F32, &device) }
                .map_err(|e| NluError::Model(format!("{}: {e}", files.weights().display())))?;
        let model = BertModel::load(vb, &config)
            .map_err(|e| NluError::Model(format!("{}: {e}", files.weights().display())))?;
        Ok(Self {
            tokenizer,
            model,
            device,
            dim: config.hidden_size,
        })
    }

    /// Width of one embedding.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of word pieces a text becomes (after truncation).
    pub fn token_count(&self, text: &str) -> Result<usize, NluError> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| NluError::Encode(e.to_string()))?;
        Ok(enc.get_ids().len())
    }

    /// L2-normalised mean-pooled embeddings, one per text, in input order.
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, NluError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| NluError::Encode(e.to_string()))?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        // Bucket by length so short texts are not padded to a long neighbour.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        const CHUNK: usize = 32;
        for chunk in order.chunks(CHUNK) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| ids[i]).collect();
            let embs = self
                .forward_pooled(&batch)
                .map_err(|e| NluError::Encode(e.to_string()))?;
            for (&i, e) in chunk.iter().zip(embs) {
                out[i] = e;
            }
        }
        Ok(out)
    }

    fn forward_pooled(&self, batch: &[&[u32]]) -> candle_core::Result<Vec<Vec<f32>>> {
        let n = batch.len();
        let len = batch.iter().map(|b| b.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![0u32; n * len];
        let mut mask = vec![0f32; n * len];
        for (r, b) in batch.iter().enumerate() {
            ids[r * len..r * len + b.len()].copy_from_slice(b);
            mask[r * len..r * len + b.len()]
                .iter_mut()
                .for_each(|m| *m = 1.0);
        }
        let ids = Tensor::from_vec(ids, (n, len), &self.device)?;
        let type_ids = ids.zeros_like()?;
        let mask_t = Tensor::from_vec(mask, (n, len), &self.device)?;
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask_t))?; // (n, len, dim)
        let pooled = mean_pool(&hidden, &mask_t)?;
        let normed = l2_normalize(&pooled)?;
        normed.to_vec2::<f32>()
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
