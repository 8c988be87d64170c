//! The head type: multinomial logistic regression or a one-hidden-layer MLP over a
//! standardised feature row, with a calibration temperature, and its inference.
//!
//! Inference is plain Rust over the stored weights: a head is a few matrix-vector products, far
//! below the encoder's cost, and needs no candle graph at serve time. Fitting one lives in
//! `training/fit.rs`.

use std::collections::HashMap;

use super::adapter::TokenAdapter;

/// One dense layer, row-major `(out, in)` weights.
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    pub(crate) w: Vec<f32>,
    pub(crate) b: Vec<f32>,
    pub(crate) inputs: usize,
    pub(crate) outputs: usize,
}

impl Dense {
    pub(crate) fn apply(&self, x: &[f32], out: &mut Vec<f32>) {
        out.clear();
        for o in 0..self.outputs {
            let row = &self.w[o * self.inputs..(o + 1) * self.inputs];
            let dot: f32 = row.iter().zip(x).map(|(a, b)| a * b).sum();
            out.push(dot + self.b[o]);
        }
    }
}

/// A trained classifier head: labels, the features it reads, standardisation, weights and
/// the calibration temperature.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) labels: Vec<String>,
    /// Names the features the head reads (see `features.rs`); checked on load so a head is
    /// never fed vectors of another kind.
    pub feature_spec: String,
    pub(crate) mean: Vec<f32>,
    pub(crate) inv_std: Vec<f32>,
    pub(crate) layers: Vec<Dense>,
    /// Logits are divided by this before the softmax (1 = uncalibrated).
    pub temperature: f32,
    /// Confidence below which the caller should answer "none of these" (intent heads).
    pub threshold: Option<f32>,
    /// Free-form facts stored with the head (intent-set hash, training figures).
    pub notes: HashMap<String, String>,
    /// A reader of the last layer's token states whose logits are added to the row's
    /// (see `adapter.rs`); `None` for heads that read pooled rows only.
    pub(crate) adapter: Option<TokenAdapter>,
}

impl Head {
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Width of the feature rows the head reads.
    pub fn input_dim(&self) -> usize {
        self.mean.len()
    }

    /// Raw (uncalibrated) scores for one feature row.
    pub fn logits(&self, x: &[f32]) -> Vec<f32> {
        let mut h: Vec<f32> = x
            .iter()
            .zip(&self.mean)
            .zip(&self.inv_std)
            .map(|((v, m), s)| (v - m) * s)
            .collect();
        let mut out = Vec::new();
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            layer.apply(&h, &mut out);
            if i < last {
                out.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            std::mem::swap(&mut h, &mut out);
        }
        h
    }

    /// Raw scores for one message: the feature row's, plus the token adapter's when the
    /// head has one (`tokens`: the last layer's token states, `tokens * dim`).
    pub fn logits_with(&self, x: &[f32], tokens: &[f32]) -> Vec<f32> {
        let mut l = self.logits(x);
        if let Some(a) = &self.adapter {
            for (v, t) in l.iter_mut().zip(a.logits(tokens)) {
                *v += t;
            }
        }
        l
    }

    /// Whether the head reads token states (it has a token adapter).
    pub fn needs_tokens(&self) -> bool {
        self.adapter.is_some()
    }

    /// Calibrated class probabilities for one feature row, in label order; they sum to 1.
    pub fn probabilities(&self, x: &[f32]) -> Vec<f32> {
        softmax(&self.logits(x), self.temperature)
    }

    /// [`probabilities`](Self::probabilities) with the token adapter's logits added.
    pub fn probabilities_with(&self, x: &[f32], tokens: &[f32]) -> Vec<f32> {
        softmax(&self.logits_with(x, tokens), self.temperature)
    }

    /// The most likely label index and its calibrated probability.
    pub fn predict(&self, x: &[f32]) -> (usize, f32) {
        argmax(&self.probabilities(x))
    }

    /// Add `delta` to the logits of every prediction from now on (a prior correction: the
    /// class mix at serve time differs from training). Folded into the last layer's bias.
    pub fn shift_logits(&mut self, delta: &[f32]) {
        if let Some(last) = self.layers.last_mut() {
            for (b, d) in last.b.iter_mut().zip(delta) {
                *b += d;
            }
        }
    }
}

/// Index and value of the largest entry.
pub(crate) fn argmax(p: &[f32]) -> (usize, f32) {
    p.iter()
        .copied()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
}

/// Softmax of `logits / temperature`, stable against large logits.
pub(crate) fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
    let t = temperature.max(1e-6);
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| ((l - max) / t).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}
