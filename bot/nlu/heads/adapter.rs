//! A token adapter: a small learned reader of the last encoder layer's token states, added to
//! a head's logits. Pooled features (means, max) lose which words carried the tone; the
//! adapter projects every token (`dim → width`, ReLU), pools the projections twice (max over
//! tokens, and an attention pool whose token weights it learns) and maps the two pools to one
//! logit per label. It runs on the states the one encoder pass already computed: no second
//! pass, a few hundred thousand multiply-adds per message.

use std::sync::OnceLock;

use super::head::Dense;
use crate::encoder::kernels::{Epilogue, PackedLinear, WeightFormat};

/// The adapter's weights. `project` reads raw token states (the standardisation of training
/// is folded in); `out` reads `[max pool, attention pool]`.
#[derive(Debug, Clone)]
pub(crate) struct TokenAdapter {
    pub(crate) project: Dense,
    /// One weight per projected unit: a token's attention score is its projection · `score`.
    pub(crate) score: Vec<f32>,
    pub(crate) out: Dense,
    /// `project` packed for the encoder's matrix kernel, built on first use.
    pub(crate) packed: OnceLock<PackedLinear>,
}

impl TokenAdapter {
    /// Width of a token state the adapter reads.
    pub fn dim(&self) -> usize {
        self.project.inputs
    }

    /// Width of the projection.
    pub fn width(&self) -> usize {
        self.project.outputs
    }

    /// Whether the parts fit together for `labels` labels.
    pub(crate) fn consistent(&self, labels: usize) -> bool {
        let k = self.width();
        k > 0
            && self.project.w.len() == k * self.dim()
            && self.project.b.len() == k
            && self.score.len() == k
            && self.out.inputs == 2 * k
            && self.out.outputs == labels
            && self.out.w.len() == 2 * k * labels
            && self.out.b.len() == labels
    }

    /// The adapter's logits for one message's token states (`tokens * dim`, row-major).
    /// No tokens gives the output bias alone.
    pub fn logits(&self, tokens: &[f32]) -> Vec<f32> {
        let d = self.dim();
        let k = self.width();
        let n = tokens.len() / d;
        let mut pooled = vec![0f32; 2 * k];
        if n > 0 {
            let packed = self.packed.get_or_init(|| {
                PackedLinear::new(&self.project.w, &self.project.b, k, d, WeightFormat::F32)
            });
            let mut h = vec![0f32; n * k];
            packed.forward(tokens, n, &mut h, Epilogue::Bias);
            h.iter_mut().for_each(|v| *v = v.max(0.0));
            let scores: Vec<f32> = h
                .chunks_exact(k)
                .map(|ht| ht.iter().zip(&self.score).map(|(a, b)| a * b).sum())
                .collect();
            let top = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exps: Vec<f32> = scores.iter().map(|s| (s - top).exp()).collect();
            let total: f32 = exps.iter().sum();
            let (max, att) = pooled.split_at_mut(k);
            for (ht, e) in h.chunks_exact(k).zip(&exps) {
                let a = e / total;
                for j in 0..k {
                    max[j] = max[j].max(ht[j]);
                    att[j] += a * ht[j];
                }
            }
        }
        let mut out = Vec::with_capacity(self.out.outputs);
        self.out.apply(&pooled, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> TokenAdapter {
        // dim 2, width 2: unit 0 reads feature 0, unit 1 reads feature 1
        TokenAdapter {
            project: Dense {
                w: vec![1.0, 0.0, 0.0, 1.0],
                b: vec![0.0, 0.0],
                inputs: 2,
                outputs: 2,
            },
            score: vec![0.0, 0.0],
            // label 0 = max of unit 0, label 1 = attention pool of unit 1
            out: Dense {
                w: vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
                b: vec![0.5, 0.0],
                inputs: 4,
                outputs: 2,
            },
            packed: OnceLock::new(),
        }
    }

    #[test]
    fn pools_the_relu_projection_of_every_token() {
        let a = toy();
        assert!(a.consistent(2));
        // tokens (3, -1) and (1, 2): max of unit 0 = 3; unit 1 = relu(-1)=0 and 2, equal
        // attention (score weights 0) → mean 1
        let l = a.logits(&[3.0, -1.0, 1.0, 2.0]);
        assert!((l[0] - 3.5).abs() < 1e-6, "{l:?}");
        assert!((l[1] - 1.0).abs() < 1e-6, "{l:?}");
        // no tokens: the bias alone
        assert_eq!(a.logits(&[]), vec![0.5, 0.0]);
    }

    #[test]
    fn the_packed_projection_matches_the_plain_sums_at_the_encoders_width() {
        let (d, k, n) = (384, 64, 13);
        let mut seed = 1u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let mut v = |len: usize| (0..len).map(|_| next()).collect::<Vec<f32>>();
        let a = TokenAdapter {
            project: Dense {
                w: v(k * d),
                b: v(k),
                inputs: d,
                outputs: k,
            },
            score: v(k),
            out: Dense {
                w: v(2 * k * 3),
                b: v(3),
                inputs: 2 * k,
                outputs: 3,
            },
            packed: OnceLock::new(),
        };
        let tokens = v(n * d);
        // the same adapter by plain sums
        let h: Vec<Vec<f32>> = tokens
            .chunks(d)
            .map(|t| {
                (0..k)
                    .map(|j| {
                        let w = &a.project.w[j * d..(j + 1) * d];
                        (w.iter().zip(t).map(|(x, y)| x * y).sum::<f32>() + a.project.b[j]).max(0.0)
                    })
                    .collect()
            })
            .collect();
        let s: Vec<f32> = h
            .iter()
            .map(|r| r.iter().zip(&a.score).map(|(x, y)| x * y).sum())
            .collect();
        let top = s.iter().copied().fold(f32::MIN, f32::max);
        let e: Vec<f32> = s.iter().map(|x| (x - top).exp()).collect();
        let z: f32 = e.iter().sum();
        let mut pooled = vec![0f32; 2 * k];
        for (r, w) in h.iter().zip(&e) {
            for j in 0..k {
                pooled[j] = pooled[j].max(r[j]);
                pooled[k + j] += w / z * r[j];
            }
        }
        let want: Vec<f32> = (0..3)
            .map(|o| {
                let w = &a.out.w[o * 2 * k..(o + 1) * 2 * k];
                w.iter().zip(&pooled).map(|(x, y)| x * y).sum::<f32>() + a.out.b[o]
            })
            .collect();
        let got = a.logits(&tokens);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-4, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn attention_follows_the_score_weights() {
        let mut a = toy();
        a.score = vec![0.0, 10.0];
        // the token with the larger unit 1 takes nearly all the attention
        let l = a.logits(&[0.0, 1.0, 0.0, 3.0]);
        assert!(l[1] > 2.99 && l[1] <= 3.0, "{l:?}");
    }
}
