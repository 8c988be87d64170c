//! Fitting a head: multinomial logistic regression or a one-hidden-layer MLP, trained with
//! AdamW in candle (L2 penalty, optional class weights) on standardised feature rows.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::heads::{Dense, Head};
use crate::NluError;

/// How much each class counts in the training loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub enum ClassWeights {
    /// Every example counts once.
    #[default]
    Uniform,
    /// Inverse class frequency: every class counts as much in total (helps macro-recall when
    /// the class mix at serve time differs from training).
    Balanced,
    /// One weight per label, in label order.
    Given(Vec<f32>),
}

/// Hyper-parameters of one training run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Hidden units of the MLP; 0 trains a logistic regression.
    pub hidden: usize,
    /// L2 penalty on the weight matrices (not the biases), added to the mean loss.
    pub l2: f64,
    pub epochs: usize,
    pub learning_rate: f64,
    /// Examples per step; 0 means the whole set in one step.
    pub batch_size: usize,
    /// Dropout on the hidden layer of the MLP.
    pub dropout: f32,
    pub class_weights: ClassWeights,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            hidden: 0,
            l2: 1e-3,
            epochs: 200,
            learning_rate: 0.01,
            batch_size: 0,
            dropout: 0.0,
            class_weights: ClassWeights::Uniform,
            seed: 7,
        }
    }
}

impl Head {
    /// Train a head on feature rows `xs` with class indices `ys` into `labels`.
    pub(crate) fn fit(
        xs: &[Vec<f32>],
        ys: &[usize],
        labels: &[String],
        feature_spec: &str,
        opts: &TrainOptions,
    ) -> Result<Head, NluError> {
        Self::fit_weighted(xs, ys, None, labels, feature_spec, opts)
    }

    /// [`fit`](Self::fit) with a weight per example (e.g. how much its data source counts);
    /// class weights apply on top (`Balanced` balances the weighted class totals).
    pub(crate) fn fit_weighted(
        xs: &[Vec<f32>],
        ys: &[usize],
        example_weight: Option<&[f32]>,
        labels: &[String],
        feature_spec: &str,
        opts: &TrainOptions,
    ) -> Result<Head, NluError> {
        let n = xs.len();
        if example_weight.is_some_and(|w| w.len() != n) {
            return Err(NluError::train("need one example weight per example"));
        }
        if n == 0 || n != ys.len() {
            return Err(NluError::train(format!(
                "need as many labels as examples and at least one example (got {n} rows, {} labels)",
                ys.len()
            )));
        }
        let k = labels.len();
        if k < 2 {
            return Err(NluError::train("a classifier needs at least two labels"));
        }
        if let Some(bad) = ys.iter().find(|&&y| y >= k) {
            return Err(NluError::train(format!(
                "label index {bad} out of range (0..{k})"
            )));
        }
        let dim = xs[0].len();
        if xs.iter().any(|x| x.len() != dim) {
            return Err(NluError::train("feature rows differ in width"));
        }
        let (mean, inv_std) = standardisation(xs);
        let weights = example_weights(ys, example_weight, k, &opts.class_weights)?;
        let dev = Device::Cpu;
        let mut flat = Vec::with_capacity(n * dim);
        for x in xs {
            flat.extend(
                x.iter()
                    .zip(&mean)
                    .zip(&inv_std)
                    .map(|((v, m), s)| (v - m) * s),
            );
        }
        let x_all = Tensor::from_vec(flat, (n, dim), &dev)?;
        let y_all = Tensor::from_vec(ys.iter().map(|&y| y as u32).collect::<Vec<_>>(), n, &dev)?;
        let w_all = Tensor::from_vec(weights, n, &dev)?;

        let mut rng = StdRng::seed_from_u64(opts.seed);
        let shapes: Vec<(usize, usize)> = if opts.hidden == 0 {
            vec![(dim, k)]
        } else {
            vec![(dim, opts.hidden), (opts.hidden, k)]
        };
        let mut params: Vec<(Var, Var)> = Vec::new();
        for &(i, o) in &shapes {
            // Glorot-uniform start for the MLP; zeros are the natural start for a convex LR.
            let bound = if opts.hidden == 0 {
                0.0
            } else {
                (6.0 / (i + o) as f32).sqrt()
            };
            let w: Vec<f32> = (0..i * o)
                .map(|_| {
                    if bound == 0.0 {
                        0.0
                    } else {
                        rng.gen_range(-bound..bound)
                    }
                })
                .collect();
            let w = Var::from_tensor(&Tensor::from_vec(w, (i, o), &dev)?)?;
            let b = Var::zeros(o, DType::F32, &dev)?;
            params.push((w, b));
        }
        let vars: Vec<Var> = params
            .iter()
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect();
        let mut opt = AdamW::new(
            vars,
            ParamsAdamW {
                lr: opts.learning_rate,
                weight_decay: 0.0,
                ..Default::default()
            },
        )?;
        let batch = if opts.batch_size == 0 {
            n
        } else {
            opts.batch_size.min(n)
        };
        let mut order: Vec<u32> = (0..n as u32).collect();
        for _ in 0..opts.epochs {
            order.shuffle(&mut rng);
            for chunk in order.chunks(batch) {
                let idx = Tensor::from_slice(chunk, chunk.len(), &dev)?;
                let (x, y, w) = if batch == n {
                    (x_all.clone(), y_all.clone(), w_all.clone())
                } else {
                    (
                        x_all.index_select(&idx, 0)?,
                        y_all.index_select(&idx, 0)?,
                        w_all.index_select(&idx, 0)?,
                    )
                };
                let logits = forward_train(&params, &x, opts.dropout)?;
                let loss = weighted_cross_entropy(&logits, &y, &w)?;
                let mut penalty = Tensor::new(0f32, &dev)?;
                for (wm, _) in &params {
                    penalty = (penalty + wm.as_tensor().sqr()?.sum_all()?)?;
                }
                let total = (loss + (penalty * (opts.l2 / 2.0))?)?;
                opt.backward_step(&total)?;
            }
        }
        let mut layers = Vec::new();
        for (w, b) in &params {
            let (i, o) = w.as_tensor().dims2()?;
            // stored (out, in) so inference walks contiguous rows
            let wt = w.as_tensor().t()?.contiguous()?;
            layers.push(Dense {
                w: wt.flatten_all()?.to_vec1::<f32>()?,
                b: b.as_tensor().to_vec1::<f32>()?,
                inputs: i,
                outputs: o,
            });
        }
        Ok(Head {
            labels: labels.to_vec(),
            feature_spec: feature_spec.to_string(),
            mean,
            inv_std,
            layers,
            temperature: 1.0,
            threshold: None,
            notes: HashMap::new(),
            adapter: None,
        })
    }
}

fn standardisation(xs: &[Vec<f32>]) -> (Vec<f32>, Vec<f32>) {
    let dim = xs[0].len();
    let n = xs.len() as f64;
    let mut mean = vec![0f64; dim];
    for x in xs {
        for (m, v) in mean.iter_mut().zip(x) {
            *m += *v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0f64; dim];
    for x in xs {
        for ((s, v), m) in var.iter_mut().zip(x).zip(&mean) {
            *s += (*v as f64 - m).powi(2);
        }
    }
    let inv_std = var
        .iter()
        .map(|s| (1.0 / ((s / n).sqrt() + 1e-6)) as f32)
        .collect();
    (mean.into_iter().map(|m| m as f32).collect(), inv_std)
}

/// Per-example loss weights (given weight times class weight), normalised so they average 1.
pub(super) fn example_weights(
    ys: &[usize],
    given: Option<&[f32]>,
    k: usize,
    cw: &ClassWeights,
) -> Result<Vec<f32>, NluError> {
    let base = |i: usize| given.map_or(1.0, |w| w[i]);
    let per_class: Vec<f32> = match cw {
        ClassWeights::Uniform => vec![1.0; k],
        ClassWeights::Balanced => {
            let mut totals = vec![0f32; k];
            ys.iter()
                .enumerate()
                .for_each(|(i, &y)| totals[y] += base(i));
            let all: f32 = totals.iter().sum();
            totals
                .iter()
                .map(|&c| if c <= 0.0 { 0.0 } else { all / (k as f32 * c) })
                .collect()
        }
        ClassWeights::Given(w) => {
            if w.len() != k {
                return Err(NluError::train(format!(
                    "{} class weights given for {k} labels",
                    w.len()
                )));
            }
            w.clone()
        }
    };
    let raw: Vec<f32> = ys
        .iter()
        .enumerate()
        .map(|(i, &y)| base(i) * per_class[y])
        .collect();
    let mean = raw.iter().sum::<f32>() / raw.len() as f32;
    Ok(raw.into_iter().map(|w| w / mean.max(1e-12)).collect())
}

fn forward_train(params: &[(Var, Var)], x: &Tensor, dropout: f32) -> candle_core::Result<Tensor> {
    let mut h = x.clone();
    for (i, (w, b)) in params.iter().enumerate() {
        h = h.matmul(w.as_tensor())?.broadcast_add(b.as_tensor())?;
        if i + 1 < params.len() {
            h = h.relu()?;
            if dropout > 0.0 {
                h = candle_nn::ops::dropout(&h, dropout)?;
            }
        }
    }
    Ok(h)
}

/// Mean of `weight * -log p(target)` over the batch.
pub(super) fn weighted_cross_entropy(
    logits: &Tensor,
    y: &Tensor,
    w: &Tensor,
) -> candle_core::Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let picked = logp.gather(&y.unsqueeze(1)?, 1)?.squeeze(1)?;
    (picked * w)?.mean_all()?.neg()
}
