//! The BERT forward pass of a sentence-transformers model, owned here so it can be fast on a
//! small CPU: weights are read from the same safetensors names as candle-transformers' BERT,
//! packed once for the kernels in [`super::kernels`], and a batch of messages runs without
//! padding (every message keeps its own length; only attention looks across tokens, and it
//! does so per message).

use std::path::Path;

use super::kernels::{self, f16_to_f32, f32_to_f16, Epilogue, PackedLinear, WeightFormat};
use crate::NluError;

mod packing;
mod weights;
pub use packing::Calibration;
use packing::{pack, record_max};
use weights::Weights;

/// The fields of a Hugging Face BERT `config.json` that the forward pass needs.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_types")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_types() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

#[derive(Clone, Copy)]
enum Activation {
    /// erf-based GELU, what BERT's `gelu` means.
    Gelu,
    Relu,
}

/// Per-message summaries of the hidden states, gathered during the pass.
pub struct MessageStates {
    /// Mean over tokens of the hidden state after each layer: `layers * dim`.
    pub layer_means: Vec<f32>,
    /// Max over tokens of the last layer's hidden state: `dim`.
    pub last_max: Vec<f32>,
    /// The hidden state of every token after the layer asked for (`keep_tokens`),
    /// `tokens * dim`; empty unless asked for.
    pub tokens: Vec<f32>,
}

struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    fn load(w: &Weights, prefix: &str, dim: usize, eps: f64) -> Result<Self, NluError> {
        Ok(Self {
            gamma: w.get(&format!("{prefix}.weight"), &[dim])?,
            beta: w.get(&format!("{prefix}.bias"), &[dim])?,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &mut [f32]) {
        kernels::layer_norm(x, self.gamma.len(), &self.gamma, &self.beta, self.eps);
    }
}

fn load_linear(
    w: &Weights,
    prefix: &str,
    n: usize,
    k: usize,
    format: WeightFormat,
    input_max: Option<&[f32]>,
) -> Result<PackedLinear, NluError> {
    let weight = w.get(&format!("{prefix}.weight"), &[n, k])?;
    let bias = w.get(&format!("{prefix}.bias"), &[n])?;
    Ok(pack(&weight, &bias, n, k, format, input_max))
}

/// The word-piece table, in the layers' storage format (rows are gathered, never multiplied).
enum WordTable {
    F32(Vec<f32>),
    F16(Vec<u16>),
}

impl WordTable {
    fn len(&self) -> usize {
        match self {
            Self::F32(v) => v.len(),
            Self::F16(v) => v.len(),
        }
    }

    fn add_row(&self, id: usize, out: &mut [f32]) {
        let d = out.len();
        match self {
            Self::F32(v) => out
                .iter_mut()
                .zip(&v[id * d..(id + 1) * d])
                .for_each(|(o, w)| *o += w),
            Self::F16(v) => out
                .iter_mut()
                .zip(&v[id * d..(id + 1) * d])
                .for_each(|(o, &w)| *o += f16_to_f32(w)),
        }
    }
}

struct Embeddings {
    word: WordTable,
    position: Vec<f32>,
    /// Row 0 of the token-type table: every message is a single segment.
    token_type: Vec<f32>,
    norm: LayerNorm,
}

impl Embeddings {
    fn load(w: &Weights, cfg: &BertConfig) -> Result<Self, NluError> {
        let d = cfg.hidden_size;
        let types = w.get(
            "embeddings.token_type_embeddings.weight",
            &[cfg.type_vocab_size, d],
        )?;
        Ok(Self {
            word: {
                let table = w.get("embeddings.word_embeddings.weight", &[cfg.vocab_size, d])?;
                match w.format {
                    WeightFormat::F32 => WordTable::F32(table),
                    // Rows are gathered, never multiplied: int8 layers keep an f16 table.
                    WeightFormat::F16 | WeightFormat::Int8 => {
                        WordTable::F16(table.iter().map(|&v| f32_to_f16(v)).collect())
                    }
                }
            },
            position: w.get(
                "embeddings.position_embeddings.weight",
                &[cfg.max_position_embeddings, d],
            )?,
            token_type: types[..d].to_vec(),
            norm: LayerNorm::load(w, "embeddings.LayerNorm", d, cfg.layer_norm_eps)?,
        })
    }

    /// Writes the embedded tokens of every message, one after the other, into `x`.
    fn forward(&self, messages: &[&[u32]], x: &mut [f32]) -> Result<(), NluError> {
        let d = self.token_type.len();
        let mut row = 0;
        for ids in messages {
            for (pos, &id) in ids.iter().enumerate() {
                let id = id as usize;
                if id * d >= self.word.len() || (pos + 1) * d > self.position.len() {
                    return Err(NluError::encode(format!(
                        "token {id} at position {pos} is outside the model's tables"
                    )));
                }
                let out = &mut x[row * d..(row + 1) * d];
                let position = &self.position[pos * d..(pos + 1) * d];
                for i in 0..d {
                    out[i] = position[i] + self.token_type[i];
                }
                self.word.add_row(id, out);
                row += 1;
            }
        }
        self.norm.forward(&mut x[..row * d]);
        Ok(())
    }
}

struct Layer {
    /// query, key and value fused into one `[3 * dim, dim]` product.
    qkv: PackedLinear,
    attention_out: PackedLinear,
    attention_norm: LayerNorm,
    intermediate: PackedLinear,
    output: PackedLinear,
    output_norm: LayerNorm,
}

impl Layer {
    fn load(
        w: &Weights,
        cfg: &BertConfig,
        i: usize,
        cal: Option<&Calibration>,
    ) -> Result<Self, NluError> {
        let d = cfg.hidden_size;
        let p = format!("encoder.layer.{i}");
        let input_max = |j: usize| cal.map(|c| c.layers[i][j].as_slice());
        // The product after GELU is not int8 under int8: its 1,536 heavy-tailed inputs lose
        // the most to 8 bits (all-int8 embeddings came to mean cosine 0.9990 on the reference
        // texts and cost the anger head two of its 374 validation answers; int8 weights alone
        // there, the same). It runs in f16, and for batches on AMX-BF16 CPUs in bf16.
        let output_format = match w.format {
            WeightFormat::Int8 => WeightFormat::F16,
            other => other,
        };
        let output_bf16 = w.format == WeightFormat::Int8 && kernels::int8::bf16_available();
        let mut qkv_w = Vec::with_capacity(3 * d * d);
        let mut qkv_b = Vec::with_capacity(3 * d);
        for part in ["query", "key", "value"] {
            qkv_w.extend(w.get(&format!("{p}.attention.self.{part}.weight"), &[d, d])?);
            qkv_b.extend(w.get(&format!("{p}.attention.self.{part}.bias"), &[d])?);
        }
        let eps = cfg.layer_norm_eps;
        Ok(Self {
            qkv: pack(&qkv_w, &qkv_b, 3 * d, d, w.format, input_max(0)),
            attention_out: load_linear(
                w,
                &format!("{p}.attention.output.dense"),
                d,
                d,
                w.format,
                input_max(1),
            )?,
            attention_norm: LayerNorm::load(w, &format!("{p}.attention.output.LayerNorm"), d, eps)?,
            intermediate: load_linear(
                w,
                &format!("{p}.intermediate.dense"),
                cfg.intermediate_size,
                d,
                w.format,
                input_max(2),
            )?,
            output: if output_bf16 {
                let prefix = format!("{p}.output.dense");
                let k = cfg.intermediate_size;
                let weight = w.get(&format!("{prefix}.weight"), &[d, k])?;
                let bias = w.get(&format!("{prefix}.bias"), &[d])?;
                PackedLinear::new(&weight, &bias, d, k, output_format).with_large_bf16(&weight)
            } else {
                load_linear(
                    w,
                    &format!("{p}.output.dense"),
                    d,
                    cfg.intermediate_size,
                    output_format,
                    input_max(3),
                )?
            },
            output_norm: LayerNorm::load(w, &format!("{p}.output.LayerNorm"), d, eps)?,
        })
    }
}

/// Working memory for one pass, sized for `rows` tokens in all.
struct Scratch {
    qkv: Vec<f32>,
    context: Vec<f32>,
    attended: Vec<f32>,
    intermediate: Vec<f32>,
    /// Tokens per message.
    lens: Vec<usize>,
}

/// A BERT encoder ready to run: config plus packed weights.
pub struct Bert {
    cfg: BertConfig,
    activation: Activation,
    embeddings: Embeddings,
    layers: Vec<Layer>,
}

impl Bert {
    /// Load `config.json` and `model.safetensors` (names with or without a `bert.` prefix),
    /// packing the layer weights as `format` says; int8 products are evened out with `cal`
    /// when given (from a model of the same shape, see [`calibrate`](Self::calibrate)).
    pub fn load(
        config: &Path,
        weights: &Path,
        format: WeightFormat,
        cal: Option<&Calibration>,
    ) -> Result<Self, NluError> {
        let text = std::fs::read_to_string(config)
            .map_err(|e| NluError::model_from(format!("cannot read {}", config.display()), e))?;
        let cfg: BertConfig = serde_json::from_str(&text).map_err(|e| {
            NluError::model_from(format!("{} is not a BERT config.json", config.display()), e)
        })?;
        let activation = match cfg.hidden_act.as_str() {
            "gelu" => Activation::Gelu,
            "relu" => Activation::Relu,
            other => {
                return Err(NluError::model(format!(
                    "{}: hidden_act {other:?} is not supported (gelu or relu): use a BERT \
                     sentence-transformers model",
                    config.display()
                )))
            }
        };
        if !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
            return Err(NluError::model(format!(
                "{}: hidden_size {} is not a multiple of num_attention_heads {}",
                config.display(),
                cfg.hidden_size,
                cfg.num_attention_heads
            )));
        }
        let w = Weights::open(weights, format)?;
        let embeddings = Embeddings::load(&w, &cfg)?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(&w, &cfg, i, cal))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            cfg,
            activation,
            embeddings,
            layers,
        })
    }

    pub fn hidden_size(&self) -> usize {
        self.cfg.hidden_size
    }

    pub fn heads(&self) -> usize {
        self.cfg.num_attention_heads
    }

    pub fn num_layers(&self) -> usize {
        self.cfg.num_hidden_layers
    }

    /// Longest message (in word pieces) the position table allows.
    pub fn max_tokens(&self) -> usize {
        self.cfg.max_position_embeddings
    }

    /// Run the encoder over messages given as word-piece ids (with [CLS] and [SEP]) and
    /// return, per message, the token-mean of every layer's output and the token-max of the
    /// last one (and, with `keep_tokens = Some(n)`, every token's state after layer `n`,
    /// 1-based). An empty id list counts as one zero state.
    pub fn forward(
        &self,
        messages: &[&[u32]],
        keep_tokens: Option<usize>,
    ) -> Result<Vec<MessageStates>, NluError> {
        let d = self.cfg.hidden_size;
        let (mut x, mut s) = self.scratch(messages);
        let mut states: Vec<MessageStates> = messages
            .iter()
            .map(|_| MessageStates {
                layer_means: vec![0f32; self.layers.len() * d],
                last_max: vec![0f32; d],
                tokens: Vec::new(),
            })
            .collect();
        self.embeddings.forward(messages, &mut x)?;
        for (li, layer) in self.layers.iter().enumerate() {
            self.layer_forward(layer, &mut x, &mut s, None);
            let keep = keep_tokens == Some(li + 1);
            let mut row = 0;
            for (m, st) in messages.iter().zip(states.iter_mut()) {
                let toks = &x[row * d..(row + m.len()) * d];
                mean_rows(toks, d, &mut st.layer_means[li * d..(li + 1) * d]);
                if keep {
                    st.tokens = toks.to_vec();
                }
                row += m.len();
            }
        }
        let mut row = 0;
        for (m, st) in messages.iter().zip(states.iter_mut()) {
            max_rows(&x[row * d..(row + m.len()) * d], d, &mut st.last_max);
            row += m.len();
        }
        Ok(states)
    }

    fn scratch(&self, messages: &[&[u32]]) -> (Vec<f32>, Scratch) {
        let d = self.cfg.hidden_size;
        let rows: usize = messages.iter().map(|m| m.len()).sum();
        let s = Scratch {
            qkv: vec![0f32; rows * 3 * d],
            context: vec![0f32; rows * d],
            attended: vec![0f32; rows * d],
            intermediate: vec![0f32; rows * self.cfg.intermediate_size],
            lens: messages.iter().map(|m| m.len()).collect(),
        };
        (vec![0f32; rows * d], s)
    }

    /// Run `messages` through the model recording, per layer, the largest |value| each input
    /// channel of its products takes.
    pub fn calibrate(&self, messages: &[&[u32]]) -> Result<Calibration, NluError> {
        let (mut x, mut s) = self.scratch(messages);
        self.embeddings.forward(messages, &mut x)?;
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let mut rec: [Vec<f32>; 4] = Default::default();
            self.layer_forward(layer, &mut x, &mut s, Some(&mut rec));
            layers.push(rec);
        }
        Ok(Calibration { layers })
    }

    fn layer_forward(
        &self,
        l: &Layer,
        x: &mut [f32],
        s: &mut Scratch,
        mut rec: Option<&mut [Vec<f32>; 4]>,
    ) {
        let d = self.cfg.hidden_size;
        let rows = x.len() / d;
        let mut record = |j: usize, input: &[f32], k: usize| {
            if let Some(r) = rec.as_deref_mut() {
                record_max(input, k, &mut r[j]);
            }
        };
        record(0, x, d);
        l.qkv.forward(x, rows, &mut s.qkv, Epilogue::Bias);
        kernels::attention(
            &s.qkv,
            &s.lens,
            self.cfg.num_attention_heads,
            d,
            &mut s.context,
        );
        record(1, &s.context, d);
        l.attention_out
            .forward(&s.context, rows, &mut s.attended, Epilogue::BiasResidual(x));
        l.attention_norm.forward(&mut s.attended);
        let epi = match self.activation {
            Activation::Gelu => Epilogue::BiasGelu,
            Activation::Relu => Epilogue::Bias,
        };
        record(2, &s.attended, d);
        l.intermediate
            .forward(&s.attended, rows, &mut s.intermediate, epi);
        if let Activation::Relu = self.activation {
            s.intermediate.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        record(3, &s.intermediate, self.cfg.intermediate_size);
        l.output.forward(
            &s.intermediate,
            rows,
            x,
            Epilogue::BiasResidual(&s.attended),
        );
        l.output_norm.forward(x);
    }
}

fn mean_rows(rows: &[f32], d: usize, out: &mut [f32]) {
    out.fill(0.0);
    let n = rows.len() / d;
    for r in rows.chunks_exact(d) {
        for (o, v) in out.iter_mut().zip(r) {
            *o += v;
        }
    }
    if n > 0 {
        let inv = 1.0 / n as f32;
        out.iter_mut().for_each(|o| *o *= inv);
    }
}

fn max_rows(rows: &[f32], d: usize, out: &mut [f32]) {
    if rows.is_empty() {
        out.fill(0.0);
        return;
    }
    out.copy_from_slice(&rows[..d]);
    for r in rows.chunks_exact(d).skip(1) {
        for (o, v) in out.iter_mut().zip(r) {
            *o = o.max(*v);
        }
    }
}
