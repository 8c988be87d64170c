//! Measuring helpers for `frontdesk bench nlu`: candle-transformers' stock BERT as a
//! yardstick for our encoder, the bench's word-piece counter and its default texts. They
//! return figures and errors; timing loops and printing belong to the command.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationParams};

use crate::encoder::{kernels, ModelFiles, MAX_TOKENS};
use crate::NluError;

/// The instruction set the encoder kernels run with in this process, e.g. `Avx2`.
pub fn kernels() -> String {
    format!("{:?}", kernels::isa())
}

/// The integer dot product int8 weights run with in this process, e.g. `Avx512Vnni`.
pub fn int8_dot() -> String {
    format!("{:?}", kernels::int8::dot())
}

pub use crate::encoder::kernels::team::TeamCounters;

/// What the encoder's helper threads did so far (see [`TeamCounters`]).
pub fn team_counters() -> TeamCounters {
    kernels::team::counters()
}

/// The model's tokenizer set up as sentence-transformers uses it: no padding, truncation at
/// 256 word pieces.
fn bench_tokenizer(files: &ModelFiles) -> Result<Tokenizer, NluError> {
    let path = files.tokenizer();
    let mut tokenizer = Tokenizer::from_file(&path)
        .map_err(|e| NluError::model_from(format!("cannot load {}", path.display()), e))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: MAX_TOKENS,
            ..Default::default()
        }))
        .map_err(|e| NluError::model_from("cannot set the tokenizer's truncation", e))?;
    Ok(tokenizer)
}

/// Counts word pieces the way the encoder sees them, without loading the model.
pub struct TokenCounter(Tokenizer);

impl TokenCounter {
    pub fn load(files: &ModelFiles) -> Result<Self, NluError> {
        bench_tokenizer(files).map(Self)
    }

    /// Word pieces of `text`, [CLS] and [SEP] included.
    pub fn count(&self, text: &str) -> Result<usize, NluError> {
        self.0
            .encode(text, true)
            .map(|e| e.len())
            .map_err(|e| NluError::encode_from("the tokenizer refused a text", e))
    }
}

/// The `examples` of every YAML file in the intents folder, read as plain YAML (no
/// validation: any example is a message to time).
pub fn intent_examples(dir: &Path) -> Result<Vec<String>, NluError> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        NluError::data_from(
            format!(
                "cannot read intents folder {} (run from the repository root, or give \
                 --intents DIR or --texts FILE)",
                dir.display()
            ),
            e,
        )
    })?;
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p)
            .map_err(|e| NluError::data_from(format!("cannot read {}", p.display()), e))?;
        let doc: serde_yaml::Value = serde_yaml::from_str(&text)
            .map_err(|e| NluError::data_from(p.display().to_string(), e))?;
        if let Some(examples) = doc.get("examples").and_then(|e| e.as_sequence()) {
            out.extend(examples.iter().filter_map(|e| e.as_str().map(String::from)));
        }
    }
    Ok(out)
}

/// candle-transformers' own BERT as shipped, with sentence-transformers pooling: the
/// yardstick for the tuned encoder.
pub struct StockBert {
    tokenizer: Tokenizer,
    model: BertModel,
}

impl StockBert {
    pub fn load(files: &ModelFiles) -> Result<Self, NluError> {
        let tokenizer = bench_tokenizer(files)?;
        let config_path = files.config();
        let text = std::fs::read_to_string(&config_path).map_err(|e| {
            NluError::model_from(format!("cannot read {}", config_path.display()), e)
        })?;
        let config: Config = serde_json::from_str(&text).map_err(|e| {
            NluError::model_from(
                format!("{} is not a BERT config.json", config_path.display()),
                e,
            )
        })?;
        // SAFETY: a read-only map of the model file, which nothing modifies while it is
        // mapped (the cache is written by rename, never in place).
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(&[files.weights()], DType::F32, &Device::Cpu)?
        };
        Ok(Self {
            tokenizer,
            model: BertModel::load(vb, &config)?,
        })
    }

    /// Embeddings of a batch padded to its longest text (callers pass similar lengths),
    /// computed and dropped: only the time counts.
    pub fn encode(&self, texts: &[&str]) -> Result<(), NluError> {
        let tokenize = |e| NluError::encode_from("the tokenizer refused a text", e);
        let enc = if texts.len() == 1 {
            vec![self.tokenizer.encode(texts[0], true).map_err(tokenize)?]
        } else {
            self.tokenizer
                .encode_batch(texts.to_vec(), true)
                .map_err(tokenize)?
        };
        let n = enc.len();
        let len = enc.iter().map(|e| e.len()).max().unwrap_or(1).max(1);
        let mut ids = vec![0u32; n * len];
        let mut mask = vec![0f32; n * len];
        for (r, e) in enc.iter().enumerate() {
            ids[r * len..r * len + e.len()].copy_from_slice(e.get_ids());
            mask[r * len..r * len + e.len()].fill(1.0);
        }
        let d = Device::Cpu;
        let ids = Tensor::from_vec(ids, (n, len), &d)?;
        let mask = Tensor::from_vec(mask, (n, len), &d)?;
        let hidden = self.model.forward(&ids, &ids.zeros_like()?, Some(&mask))?;
        let pooled = mean_pool(&hidden, &mask)?;
        let _ = l2_normalize(&pooled)?.to_vec2::<f32>()?;
        Ok(())
    }
}

/// Mean over the tokens whose mask is 1. hidden: (n, len, dim), mask: (n, len) -> (n, dim).
fn mean_pool(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let m = mask.unsqueeze(2)?; // (n, len, 1)
    let summed = hidden.broadcast_mul(&m)?.sum(1)?;
    let counts = m.sum(1)?.clamp(1e-9, f64::MAX)?; // (n, 1)
    summed.broadcast_div(&counts)
}

/// Row-wise L2 normalisation, as sentence-transformers' Normalize module (eps 1e-12).
fn l2_normalize(x: &Tensor) -> candle_core::Result<Tensor> {
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
