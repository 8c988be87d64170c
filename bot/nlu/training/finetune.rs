//! Fine-tuning the encoder's top layer for one head, as a branch: a copy of the last layer,
//! started from the model's own weights, reads the states after the layer below it and is
//! trained (with a linear output on its mean pool, added to the head's logits) on the head's
//! data. The shared pass stays as sentence-transformers computes it (intents and the help
//! centre read it); the branch costs one more layer per message.
//!
//! This is the measuring path of `frontdesk train sentiment --finetune-top --dry-run`: it
//! reports what a fine-tuned branch would score on validation, per epoch.

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::adapter::{batch_loss, length_batches, padded, AdapterSet, Problem};
use super::scoring::Report;
use super::{calibration, Progress};
use crate::encoder::ModelFiles;
use crate::heads::argmax;
use crate::NluError;

/// Hyper-parameters of the fine-tuned branch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinetuneOptions {
    pub epochs: usize,
    /// AdamW learning rate of the layer's weights.
    pub layer_lr: f64,
    /// AdamW learning rate of the output.
    pub head_lr: f64,
    pub batch_size: usize,
    pub seed: u64,
}

impl Default for FinetuneOptions {
    fn default() -> Self {
        Self {
            epochs: 4,
            layer_lr: 3e-5,
            head_lr: 1e-3,
            batch_size: 32,
            seed: 7,
        }
    }
}

/// How one epoch of the branch scored on validation.
#[derive(Debug, Clone, Serialize)]
pub struct FinetuneEpoch {
    pub epoch: usize,
    pub train_loss: f64,
    /// The objective with the prior correction chosen on val.
    pub val_score: f64,
    /// The objective with the prior correction chosen on one half of val, scored on the other.
    pub val_half_split: f64,
    pub seconds: f64,
}

/// One BERT layer in candle, its weights trainable.
struct TrainableLayer {
    q: (Var, Var),
    k: (Var, Var),
    v: (Var, Var),
    attention_out: (Var, Var),
    attention_norm: (Var, Var),
    intermediate: (Var, Var),
    output: (Var, Var),
    output_norm: (Var, Var),
    heads: usize,
    eps: f64,
}

impl TrainableLayer {
    /// Layer `index` (0-based) of the model's weights.
    fn load(files: &ModelFiles, index: usize, heads: usize) -> Result<Self, NluError> {
        let all = candle_core::safetensors::load(files.weights(), &Device::Cpu)?;
        let get = |name: &str| -> Result<Var, NluError> {
            let full = format!("encoder.layer.{index}.{name}");
            let t = all
                .iter()
                .find(|(k, _)| k.as_str() == full || k.ends_with(&format!(".{full}")))
                .map(|(_, t)| t)
                .ok_or_else(|| NluError::model(format!("the model has no {full}")))?;
            Ok(Var::from_tensor(&t.to_dtype(DType::F32)?)?)
        };
        let pair = |name: &str| -> Result<(Var, Var), NluError> {
            Ok((
                get(&format!("{name}.weight"))?,
                get(&format!("{name}.bias"))?,
            ))
        };
        Ok(Self {
            q: pair("attention.self.query")?,
            k: pair("attention.self.key")?,
            v: pair("attention.self.value")?,
            attention_out: pair("attention.output.dense")?,
            attention_norm: pair("attention.output.LayerNorm")?,
            intermediate: pair("intermediate.dense")?,
            output: pair("output.dense")?,
            output_norm: pair("output.LayerNorm")?,
            heads,
            eps: 1e-12,
        })
    }

    fn vars(&self) -> Vec<Var> {
        [
            &self.q,
            &self.k,
            &self.v,
            &self.attention_out,
            &self.attention_norm,
            &self.intermediate,
            &self.output,
            &self.output_norm,
        ]
        .iter()
        .flat_map(|(w, b)| [w.clone(), b.clone()])
        .collect()
    }

    /// x: (b, len, d), mask: (b, len) of 0/1 → (b, len, d).
    fn forward(&self, x: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, len, d) = x.dims3()?;
        let h = self.heads;
        let hd = d / h;
        let linear = |x: &Tensor, (w, bias): &(Var, Var)| -> candle_core::Result<Tensor> {
            x.broadcast_matmul(&w.as_tensor().t()?)?
                .broadcast_add(bias.as_tensor())
        };
        let split = |t: Tensor| -> candle_core::Result<Tensor> {
            t.reshape((b, len, h, hd))?.transpose(1, 2)?.contiguous()
        };
        let q = split(linear(x, &self.q)?)?;
        let k = split(linear(x, &self.k)?)?;
        let v = split(linear(x, &self.v)?)?;
        let scores = (q.matmul(&k.t()?.contiguous()?)? / (hd as f64).sqrt())?;
        let bias = ((mask - 1.0)? * 1e4)?.reshape((b, 1, 1, len))?;
        let att = candle_nn::ops::softmax(&scores.broadcast_add(&bias)?, D::Minus1)?;
        let ctx = att
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, len, d))?;
        let a = norm(
            &(linear(&ctx, &self.attention_out)? + x)?,
            &self.attention_norm,
            self.eps,
        )?;
        let f = linear(&linear(&a, &self.intermediate)?.gelu_erf()?, &self.output)?;
        norm(&(f + a)?, &self.output_norm, self.eps)
    }
}

fn norm(x: &Tensor, (g, b): &(Var, Var), eps: f64) -> candle_core::Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let c = x.broadcast_sub(&mean)?;
    let var = c.sqr()?.mean_keepdim(D::Minus1)?;
    c.broadcast_div(&(var + eps)?.sqrt()?)?
        .broadcast_mul(g.as_tensor())?
        .broadcast_add(b.as_tensor())
}

/// Train a copy of the top layer on token states after the layer below it (`train.tokens`),
/// its pooled output's logits added to the head's (`train.base`), and score every epoch on
/// val.
pub(crate) fn finetune_top_layer(
    files: &ModelFiles,
    layer: usize,
    heads: usize,
    problem: &Problem,
    opts: &FinetuneOptions,
    progress: &dyn Progress,
) -> Result<Vec<FinetuneEpoch>, NluError> {
    problem.check()?;
    let Problem {
        dim,
        train,
        weights,
        val,
        labels,
        objective,
    } = problem;
    let (dim, objective) = (*dim, *objective);
    let k = labels.len();
    let n = train.tokens.len();
    let dev = Device::Cpu;
    let top = TrainableLayer::load(files, layer, heads)?;
    let w2 = Var::zeros((dim, k), DType::F32, &dev)?;
    let b2 = Var::zeros(k, DType::F32, &dev)?;
    let mut layer_opt = AdamW::new(
        top.vars(),
        ParamsAdamW {
            lr: opts.layer_lr,
            weight_decay: 0.01,
            ..Default::default()
        },
    )?;
    let mut head_opt = AdamW::new(
        vec![w2.clone(), b2.clone()],
        ParamsAdamW {
            lr: opts.head_lr,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut batches = length_batches(train.tokens, opts.batch_size);
    let logits_of = |set: &AdapterSet, idx: &[usize]| -> candle_core::Result<Tensor> {
        let (x, mask, len) = padded(set.tokens, idx, dim, None, &dev)?;
        let x = x.reshape((idx.len(), len, dim))?;
        let out = top.forward(&x, &mask)?;
        let m = mask.unsqueeze(2)?;
        let pooled = out.broadcast_mul(&m)?.sum(1)?.broadcast_div(&m.sum(1)?)?;
        let base: Vec<f32> = idx.iter().flat_map(|&i| set.base[i].clone()).collect();
        let base = Tensor::from_vec(base, (idx.len(), k), &dev)?;
        pooled
            .matmul(w2.as_tensor())?
            .broadcast_add(b2.as_tensor())?
            + base
    };
    let mut epochs = Vec::new();
    for epoch in 1..=opts.epochs {
        let started = std::time::Instant::now();
        progress.start(
            &format!("fine-tuning epoch {epoch}/{}", opts.epochs),
            n as u64,
        );
        batches.shuffle(&mut rng);
        let mut total = 0.0;
        for b in &batches {
            let logits = logits_of(train, b)?;
            let loss = batch_loss(&logits, train.labels, weights, b)?;
            let grads = loss.backward()?;
            layer_opt.step(&grads)?;
            head_opt.step(&grads)?;
            total += loss.to_scalar::<f32>()? as f64 * b.len() as f64;
            progress.inc(b.len() as u64);
        }
        progress.finish();
        // validation
        let mut val_logits = Vec::new();
        let idx: Vec<usize> = (0..val.tokens.len()).collect();
        for chunk in idx.chunks(64) {
            val_logits.extend(logits_of(val, chunk)?.to_vec2::<f32>()?);
        }
        let (val_score, val_half_split) =
            shifted_scores(&val_logits, val.labels, labels, objective);
        tracing::info!(epoch, val_score, val_half_split, "fine-tuning epoch");
        epochs.push(FinetuneEpoch {
            epoch,
            train_loss: total / n as f64,
            val_score,
            val_half_split,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    Ok(epochs)
}

/// The objective with the prior correction chosen on all of val, and chosen on one half and
/// scored on the other (mean of both ways).
fn shifted_scores(
    logits: &[Vec<f32>],
    ys: &[usize],
    labels: &[String],
    objective: fn(&Report) -> f64,
) -> (f64, f64) {
    let score = |ls: &[Vec<f32>], ys: &[usize], delta: &[f32]| {
        let p: Vec<usize> = ls
            .iter()
            .map(|l| {
                let s: Vec<f32> = l.iter().zip(delta).map(|(a, b)| a + b).collect();
                argmax(&s).0
            })
            .collect();
        objective(&Report::new(labels, ys, &p))
    };
    let all = calibration::choose_shift_on_logits(labels, logits, ys, 2.0, objective);
    let full = score(logits, ys, &all);
    let mut halves = 0.0;
    for parity in 0..2 {
        let pick = |p: usize| -> (Vec<Vec<f32>>, Vec<usize>) {
            logits
                .iter()
                .zip(ys)
                .enumerate()
                .filter(|(i, _)| i % 2 == p)
                .map(|(_, (l, &y))| (l.clone(), y))
                .unzip()
        };
        let (cl, cy) = pick(parity);
        let (sl, sy) = pick(1 - parity);
        let d = calibration::choose_shift_on_logits(labels, &cl, &cy, 2.0, objective);
        halves += score(&sl, &sy, &d);
    }
    (full, halves / 2.0)
}
