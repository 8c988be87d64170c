//! Fitting a token adapter (see `heads/adapter.rs`) on top of a trained head: the head's
//! logits stay as they are, the adapter learns what they miss from the last layer's token
//! states, in candle, choosing the epoch on validation data. Token states of a data file are
//! cached on disk beside its pooled features (as f16: 768 bytes a token).

use std::io::{Read, Write};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::feature_cache::{cache_key, features_dir};
use super::fit::weighted_cross_entropy;
use super::scoring::Report;
use super::{calibration, Progress};
use crate::encoder::kernels::{f16_to_f32, f32_to_f16};
use crate::encoder::Encoder;
use crate::error::chain;
use crate::heads::{Dense, TokenAdapter};
use crate::NluError;

/// Hyper-parameters of the adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterOptions {
    /// Width of the token projection.
    pub width: usize,
    /// Most epochs; the one with the best validation score is kept.
    pub epochs: usize,
    pub learning_rate: f64,
    /// L2 penalty on the projection and output weights, added to the mean loss.
    pub l2: f64,
    /// Messages per step.
    pub batch_size: usize,
    /// Dropout on the projected tokens while training.
    pub dropout: f32,
    pub seed: u64,
}

impl Default for AdapterOptions {
    fn default() -> Self {
        Self {
            width: 64,
            epochs: 8,
            learning_rate: 1e-3,
            l2: 1e-4,
            batch_size: 64,
            dropout: 0.1,
            seed: 7,
        }
    }
}

/// One message's token states, stored as f16.
pub(crate) type Tokens = Vec<u16>;

/// Every token's state after layer `layer` (1-based; the last layer for an adapter) of every
/// text of `data_file`, cached under `<cache>/features/<key>.tokens`.
pub(crate) fn cached_tokens(
    encoder: &Encoder,
    model_dir: &Path,
    cache_dir: &Path,
    data_file: &Path,
    variant: &str,
    texts: &[&str],
    layer: usize,
    progress: &dyn Progress,
) -> Result<Vec<Tokens>, NluError> {
    let kind = if layer == encoder.layers() {
        "tokens-v1".to_string()
    } else {
        format!("tokens-v1 after layer {layer}")
    };
    let key = cache_key(&kind, encoder, model_dir, data_file, variant)?;
    let path = features_dir(cache_dir).join(format!("{key}.tokens"));
    if let Some(t) = read_tokens(&path).filter(|t| t.len() == texts.len()) {
        progress.inc(texts.len() as u64);
        return Ok(t);
    }
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(64) {
        for t in encoder.token_states_after(chunk, layer)? {
            out.push(t.iter().map(|&v| f32_to_f16(v)).collect());
        }
        progress.inc(chunk.len() as u64);
    }
    if let Err(e) = write_tokens(&path, &out) {
        tracing::warn!(path = %path.display(), "token cache not written: {}", chain(&*e));
    }
    Ok(out)
}

fn write_tokens(path: &Path, rows: &[Tokens]) -> Result<(), crate::error::Source> {
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    let tmp = path.with_extension("tokens.tmp");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    f.write_all(&(rows.len() as u64).to_le_bytes())?;
    for r in rows {
        f.write_all(&(r.len() as u64).to_le_bytes())?;
        let b: Vec<u8> = r.iter().flat_map(|v| v.to_le_bytes()).collect();
        f.write_all(&b)?;
    }
    f.flush()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn read_tokens(path: &Path) -> Option<Vec<Tokens>> {
    let mut f = std::io::BufReader::new(std::fs::File::open(path).ok()?);
    let mut word = [0u8; 8];
    f.read_exact(&mut word).ok()?;
    let n = u64::from_le_bytes(word) as usize;
    let mut out = Vec::with_capacity(n.min(1 << 20));
    for _ in 0..n {
        f.read_exact(&mut word).ok()?;
        let len = u64::from_le_bytes(word) as usize;
        let mut b = vec![0u8; len.checked_mul(2)?];
        f.read_exact(&mut b).ok()?;
        out.push(
            b.chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect(),
        );
    }
    Some(out)
}

/// A labelled set read from token states: the states, the head's logits (fixed: what is
/// learned is added to them) and the labels.
pub(crate) struct AdapterSet<'a> {
    pub tokens: &'a [Tokens],
    pub base: &'a [Vec<f32>],
    pub labels: &'a [usize],
}

/// What a reader of token states on top of a head (the adapter, a fine-tuned top layer) is
/// fitted to: the token width, the training set with each example's loss weight (source and
/// class weights applied), the validation set, the labels and what validation maximises.
pub(crate) struct Problem<'a> {
    pub dim: usize,
    pub train: AdapterSet<'a>,
    pub weights: &'a [f32],
    pub val: AdapterSet<'a>,
    pub labels: &'a [String],
    pub objective: fn(&Report) -> f64,
}

/// How one epoch scored on validation (its objective with the prior correction chosen there).
#[derive(Debug, Clone, Serialize)]
pub struct EpochScore {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_score: f64,
}

/// Fit an adapter on `train` (base logits fixed), keeping the epoch whose validation
/// `objective` (after a prior correction chosen on val) is best. Returns the adapter and
/// every epoch's score.
pub(crate) fn fit_adapter(
    problem: &Problem,
    opts: &AdapterOptions,
    progress: &dyn Progress,
) -> Result<(TokenAdapter, Vec<EpochScore>), NluError> {
    let Problem {
        dim,
        train,
        weights,
        val,
        labels: label_names,
        objective,
    } = problem;
    let (dim, objective) = (*dim, *objective);
    let n = train.tokens.len();
    let k = label_names.len();
    problem.check()?;
    if opts.width == 0 {
        return Err(NluError::train("the adapter needs a width of at least 1"));
    }
    let (mean, inv_std) = token_standardisation(train.tokens, dim);
    let dev = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let width = opts.width;
    let bound = (6.0 / (dim + width) as f32).sqrt();
    let w1: Vec<f32> = (0..dim * width)
        .map(|_| rng.gen_range(-bound..bound))
        .collect();
    let w1 = Var::from_tensor(&Tensor::from_vec(w1, (dim, width), &dev)?)?;
    let b1 = Var::zeros(width, DType::F32, &dev)?;
    // zero attention scores (a mean pool) and a zero output: training starts at the head alone
    let score = Var::zeros((width, 1), DType::F32, &dev)?;
    let w2 = Var::zeros((2 * width, k), DType::F32, &dev)?;
    let b2 = Var::zeros(k, DType::F32, &dev)?;
    let vars = vec![
        w1.clone(),
        b1.clone(),
        score.clone(),
        w2.clone(),
        b2.clone(),
    ];
    let mut opt = AdamW::new(
        vars,
        ParamsAdamW {
            lr: opts.learning_rate,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut batches = length_batches(train.tokens, opts.batch_size);
    let mut best: Option<(f64, TokenAdapter)> = None;
    let mut scores = Vec::new();
    for epoch in 1..=opts.epochs {
        progress.start(&format!("adapter epoch {epoch}/{}", opts.epochs), n as u64);
        batches.shuffle(&mut rng);
        let mut total_loss = 0.0;
        for b in &batches {
            let (x, mask, len) = padded(train.tokens, b, dim, Some((&mean, &inv_std)), &dev)?;
            let keep = dropout_mask(&mut rng, b.len() * len, width, opts.dropout, &dev)?;
            let feat = pooled_features(&x, &mask, b.len(), len, &w1, &b1, &score, keep.as_ref())?;
            let base: Vec<f32> = b.iter().flat_map(|&i| train.base[i].clone()).collect();
            let base = Tensor::from_vec(base, (b.len(), k), &dev)?;
            let logits = (feat.matmul(w2.as_tensor())?.broadcast_add(b2.as_tensor())? + base)?;
            let loss = batch_loss(&logits, train.labels, weights, b)?;
            let penalty = (w1.as_tensor().sqr()?.sum_all()? + w2.as_tensor().sqr()?.sum_all()?)?;
            let total = (&loss + (penalty * (opts.l2 / 2.0))?)?;
            opt.backward_step(&total)?;
            total_loss += loss.to_scalar::<f32>()? as f64 * b.len() as f64;
            progress.inc(b.len() as u64);
        }
        progress.finish();
        let adapter = fold(&w1, &b1, &score, &w2, &b2, &mean, &inv_std)?;
        let val_score = score_on(&adapter, val, label_names, objective);
        tracing::info!(epoch, val_score, "adapter epoch");
        scores.push(EpochScore {
            epoch,
            train_loss: total_loss / n as f64,
            val_score,
        });
        if best.as_ref().is_none_or(|(s, _)| val_score > *s) {
            best = Some((val_score, adapter));
        }
    }
    let (_, adapter) =
        best.ok_or_else(|| NluError::train("the adapter needs at least one epoch"))?;
    Ok((adapter, scores))
}

impl Problem<'_> {
    /// Every example has token states (whole rows of `dim`), base logits and a label, and the
    /// sets are not empty.
    pub(super) fn check(&self) -> Result<(), NluError> {
        let n = self.train.tokens.len();
        let fits = |set: &AdapterSet| {
            set.base.len() == set.tokens.len() && set.labels.len() == set.tokens.len()
        };
        if n == 0 || self.val.tokens.is_empty() || self.weights.len() != n {
            return Err(NluError::train(
                "need token states, base logits, a label and a loss weight for every example",
            ));
        }
        if !fits(&self.train) || !fits(&self.val) {
            return Err(NluError::train(
                "need as many base logits and labels as token states",
            ));
        }
        check_rows(self.train.tokens, self.dim)?;
        check_rows(self.val.tokens, self.dim)
    }
}

/// Example indices in batches of similar length (little is wasted on padding); shuffle the
/// batches, not the examples.
pub(super) fn length_batches(tokens: &[Tokens], batch_size: usize) -> Vec<Vec<usize>> {
    let mut by_len: Vec<usize> = (0..tokens.len()).collect();
    by_len.sort_by_key(|&i| tokens[i].len());
    by_len
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// The weighted cross-entropy of a batch's logits (rows `idx` of `labels` and `weights`).
pub(super) fn batch_loss(
    logits: &Tensor,
    labels: &[usize],
    weights: &[f32],
    idx: &[usize],
) -> candle_core::Result<Tensor> {
    let dev = logits.device();
    let y: Vec<u32> = idx.iter().map(|&i| labels[i] as u32).collect();
    let w: Vec<f32> = idx.iter().map(|&i| weights[i]).collect();
    weighted_cross_entropy(
        logits,
        &Tensor::from_vec(y, idx.len(), dev)?,
        &Tensor::from_vec(w, idx.len(), dev)?,
    )
}

/// The validation objective of base + adapter logits, with the prior correction chosen there.
fn score_on(
    adapter: &TokenAdapter,
    val: &AdapterSet,
    labels: &[String],
    objective: fn(&Report) -> f64,
) -> f64 {
    let logits = adapted_logits(adapter, val.tokens, val.base);
    let delta = calibration::choose_shift_on_logits(labels, &logits, val.labels, 2.0, objective);
    let predicted: Vec<usize> = logits
        .iter()
        .map(|l| {
            let s: Vec<f32> = l.iter().zip(&delta).map(|(a, b)| a + b).collect();
            crate::heads::argmax(&s).0
        })
        .collect();
    objective(&Report::new(labels, val.labels, &predicted))
}

/// Base logits plus the adapter's, per message.
pub(crate) fn adapted_logits(
    adapter: &TokenAdapter,
    tokens: &[Tokens],
    base: &[Vec<f32>],
) -> Vec<Vec<f32>> {
    tokens
        .iter()
        .zip(base)
        .map(|(t, b)| {
            let t: Vec<f32> = t.iter().map(|&v| f16_to_f32(v)).collect();
            b.iter()
                .zip(adapter.logits(&t))
                .map(|(a, c)| a + c)
                .collect()
        })
        .collect()
}

/// Every message has at least [CLS] and [SEP]: its states are whole rows of `dim`.
fn check_rows(tokens: &[Tokens], dim: usize) -> Result<(), NluError> {
    if dim == 0 || tokens.iter().any(|t| t.is_empty() || t.len() % dim != 0) {
        return Err(NluError::train(format!(
            "token states are not whole rows of the encoder's width {dim}"
        )));
    }
    Ok(())
}

fn token_standardisation(tokens: &[Tokens], dim: usize) -> (Vec<f32>, Vec<f32>) {
    let mut sum = vec![0f64; dim];
    let mut sq = vec![0f64; dim];
    let mut count = 0f64;
    for t in tokens {
        for row in t.chunks_exact(dim) {
            for (j, &v) in row.iter().enumerate() {
                let v = f16_to_f32(v) as f64;
                sum[j] += v;
                sq[j] += v * v;
            }
            count += 1.0;
        }
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
    let inv_std = sq
        .iter()
        .zip(&mean)
        .map(|(s, m)| (1.0 / ((s / count - m * m).max(0.0).sqrt() + 1e-6)) as f32)
        .collect();
    (mean.into_iter().map(|m| m as f32).collect(), inv_std)
}

/// The token states of a batch (standardised by `(mean, inv_std)` when given), padded to its
/// longest message: `(batch * len, dim)`, the `(batch, len)` mask of real tokens, and `len`.
pub(super) fn padded(
    tokens: &[Tokens],
    batch: &[usize],
    dim: usize,
    standardise: Option<(&[f32], &[f32])>,
    dev: &Device,
) -> candle_core::Result<(Tensor, Tensor, usize)> {
    let len = batch
        .iter()
        .map(|&i| tokens[i].len() / dim)
        .max()
        .unwrap_or(1)
        .max(1);
    let mut x = vec![0f32; batch.len() * len * dim];
    let mut mask = vec![0f32; batch.len() * len];
    for (bi, &i) in batch.iter().enumerate() {
        for (t, row) in tokens[i].chunks_exact(dim).enumerate() {
            let out = &mut x[(bi * len + t) * dim..(bi * len + t + 1) * dim];
            for j in 0..dim {
                let v = f16_to_f32(row[j]);
                out[j] = match standardise {
                    Some((mean, inv_std)) => (v - mean[j]) * inv_std[j],
                    None => v,
                };
            }
            mask[bi * len + t] = 1.0;
        }
    }
    Ok((
        Tensor::from_vec(x, (batch.len() * len, dim), dev)?,
        Tensor::from_vec(mask, (batch.len(), len), dev)?,
        len,
    ))
}

/// `[max pool, attention pool]` of the projected tokens: `(batch, 2 * width)`.
#[allow(clippy::too_many_arguments)]
fn pooled_features(
    x: &Tensor,
    mask: &Tensor,
    b: usize,
    len: usize,
    w1: &Var,
    b1: &Var,
    score: &Var,
    dropout: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let width = b1.as_tensor().dims1()?;
    let mut h = x
        .matmul(w1.as_tensor())?
        .broadcast_add(b1.as_tensor())?
        .relu()?;
    if let Some(keep) = dropout {
        h = (h * keep)?;
    }
    let s = h.matmul(score.as_tensor())?.reshape((b, len))?;
    let h = h.reshape((b, len, width))?;
    // padded tokens: zero states for the max (every projection is >= 0), no attention
    let m3 = mask.unsqueeze(2)?;
    let max = h.broadcast_mul(&m3)?.max(1)?;
    let s = (s + ((mask - 1.0)? * 1e4)?)?;
    let a = candle_nn::ops::softmax(&s, D::Minus1)?;
    let att = h.broadcast_mul(&a.unsqueeze(2)?)?.sum(1)?;
    Tensor::cat(&[max, att], 1)
}

/// Inverted dropout drawn from the training's own seeded generator (candle's dropout draws
/// from an unseeded one, and a retrained head should come out the same): `(rows, width)`
/// of 0 or `1 / (1 - p)`; `None` when `p` is 0.
fn dropout_mask(
    rng: &mut StdRng,
    rows: usize,
    width: usize,
    p: f32,
    dev: &Device,
) -> candle_core::Result<Option<Tensor>> {
    if p <= 0.0 {
        return Ok(None);
    }
    let scale = 1.0 / (1.0 - p);
    let v: Vec<f32> = (0..rows * width)
        .map(|_| if rng.gen::<f32>() < p { 0.0 } else { scale })
        .collect();
    Ok(Some(Tensor::from_vec(v, (rows, width), dev)?))
}

/// The trained weights as an inference adapter, the standardisation folded into the
/// projection.
fn fold(
    w1: &Var,
    b1: &Var,
    score: &Var,
    w2: &Var,
    b2: &Var,
    mean: &[f32],
    inv_std: &[f32],
) -> candle_core::Result<TokenAdapter> {
    let (dim, width) = w1.as_tensor().dims2()?;
    let w1t = w1
        .as_tensor()
        .t()?
        .contiguous()?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let mut b1v = b1.as_tensor().to_vec1::<f32>()?;
    let mut w = vec![0f32; width * dim];
    for j in 0..width {
        for i in 0..dim {
            let v = w1t[j * dim + i] * inv_std[i];
            w[j * dim + i] = v;
            b1v[j] -= v * mean[i];
        }
    }
    let (ins, outs) = w2.as_tensor().dims2()?;
    Ok(TokenAdapter {
        project: Dense {
            w,
            b: b1v,
            inputs: dim,
            outputs: width,
        },
        score: score.as_tensor().flatten_all()?.to_vec1::<f32>()?,
        out: Dense {
            w: w2
                .as_tensor()
                .t()?
                .contiguous()?
                .flatten_all()?
                .to_vec1::<f32>()?,
            b: b2.as_tensor().to_vec1::<f32>()?,
            inputs: ins,
            outputs: outs,
        },
        packed: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::NoProgress;

    /// Messages of 3–8 noise tokens in 4-d; class 1 messages have one token with a spike in
    /// dimension 0 somewhere. A mean over the tokens dilutes the spike; a token reader sees it.
    fn spikes(n: usize, seed: u64) -> (Vec<Tokens>, Vec<usize>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut tokens = Vec::new();
        let mut ys = Vec::new();
        for i in 0..n {
            let y = i % 2;
            let len = rng.gen_range(3..=8);
            let spike = rng.gen_range(0..len);
            let mut t = Vec::new();
            for j in 0..len {
                for d in 0..4 {
                    let mut v = rng.gen_range(-1.0f32..1.0);
                    if y == 1 && j == spike && d == 0 {
                        v = 4.0;
                    }
                    t.push(f32_to_f16(v));
                }
            }
            tokens.push(t);
            ys.push(y);
        }
        (tokens, ys)
    }

    fn problem<'a>(
        train: (&'a [Tokens], &'a [Vec<f32>], &'a [usize]),
        val: (&'a [Tokens], &'a [Vec<f32>], &'a [usize]),
        weights: &'a [f32],
        labels: &'a [String],
    ) -> Problem<'a> {
        Problem {
            dim: 4,
            train: AdapterSet {
                tokens: train.0,
                base: train.1,
                labels: train.2,
            },
            weights,
            val: AdapterSet {
                tokens: val.0,
                base: val.1,
                labels: val.2,
            },
            labels,
            objective: |r| r.accuracy,
        }
    }

    #[test]
    fn the_adapter_learns_what_a_token_says_when_the_head_cannot() {
        let labels = vec!["plain".to_string(), "spiked".to_string()];
        let (tt, ty) = spikes(400, 1);
        let (vt, vy) = spikes(200, 2);
        // the head knows nothing: equal logits for every message
        let tb = vec![vec![0.0f32, 0.0]; tt.len()];
        let vb = vec![vec![0.0f32, 0.0]; vt.len()];
        let w = vec![1.0; tt.len()];
        let opts = AdapterOptions {
            width: 8,
            epochs: 30,
            learning_rate: 0.01,
            l2: 0.0,
            batch_size: 16,
            dropout: 0.0,
            seed: 3,
        };
        let p = problem((&tt, &tb, &ty), (&vt, &vb, &vy), &w, &labels);
        let (adapter, epochs) = fit_adapter(&p, &opts, &NoProgress).unwrap();
        assert_eq!(epochs.len(), 30);
        assert!(adapter.consistent(2));
        let logits = adapted_logits(&adapter, &vt, &vb);
        let right = logits
            .iter()
            .zip(&vy)
            .filter(|(l, &y)| crate::heads::argmax(l).0 == y)
            .count();
        assert!(right >= 190, "{right} of 200 right");
    }

    #[test]
    fn the_same_seed_trains_the_same_adapter_dropout_included() {
        let labels = vec!["plain".to_string(), "spiked".to_string()];
        let (tt, ty) = spikes(120, 4);
        let tb = vec![vec![0.0f32, 0.0]; tt.len()];
        let w = vec![1.0; tt.len()];
        let p = problem((&tt, &tb, &ty), (&tt, &tb, &ty), &w, &labels);
        let opts = AdapterOptions {
            width: 4,
            epochs: 3,
            batch_size: 16,
            dropout: 0.3,
            ..Default::default()
        };
        let run = |seed| {
            let o = AdapterOptions {
                seed,
                ..opts.clone()
            };
            fit_adapter(&p, &o, &NoProgress).unwrap().0
        };
        let (a, b, other) = (run(5), run(5), run(6));
        assert_eq!(a.project.w, b.project.w);
        assert_eq!(a.out.w, b.out.w);
        assert_ne!(a.project.w, other.project.w);
    }

    #[test]
    fn token_states_that_do_not_fit_are_refused() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let base = vec![vec![0.0f32; 2]];
        let opts = AdapterOptions::default();
        // not whole rows of the width
        let bad = vec![vec![0u16; 5]];
        let p = problem((&bad, &base, &[0]), (&bad, &base, &[0]), &[1.0], &labels);
        let e = fit_adapter(&p, &opts, &NoProgress).unwrap_err();
        assert!(e.to_string().contains("width 4"), "{e}");
        // a label missing
        let good = vec![vec![0u16; 8]];
        let p = problem((&good, &base, &[]), (&good, &base, &[0]), &[1.0], &labels);
        let e = fit_adapter(&p, &opts, &NoProgress).unwrap_err();
        assert!(e.to_string().contains("as many"), "{e}");
    }

    #[test]
    fn the_token_cache_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tokens");
        let rows: Vec<Tokens> = vec![vec![1, 2, 3, 4], vec![], vec![9; 8]];
        write_tokens(&path, &rows).unwrap();
        assert_eq!(read_tokens(&path).unwrap(), rows);
        // a cut file is not read as a shorter one
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(read_tokens(&path).is_none());
    }
}
