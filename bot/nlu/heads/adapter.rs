//! A token adapter: a small learned reader of the last encoder layer's token states, added to
//! a head's logits. Pooled features (means, max) lose which words carried the tone; the
//! adapter projects every token (`dim → width`, ReLU), pools the projections twice (max over
//! tokens, and an attention pool whose token weights it learns) and maps the two pools to one
//! logit per label. It runs on the states the one encoder pass already computed: no second
//! pass, a few hundred thousand multiply-adds per message.

use super::head::Dense;

/// The adapter's weights. `project` reads raw token states (the standardisation of training
/// is folded in); `out` reads `[max pool, attention pool]`.
#[derive(Debug, Clone)]
pub(crate) struct TokenAdapter {
    pub(crate) project: Dense,
    /// One weight per projected unit: a token's attention score is its projection · `score`.
    pub(crate) score: Vec<f32>,
    pub(crate) out: Dense,
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
            let mut h = vec![0f32; n * k];
            for (t, row) in tokens.chunks_exact(d).enumerate() {
                for (j, w) in self.project.w.chunks_exact(d).enumerate() {
                    let dot: f32 = w.iter().zip(row).map(|(a, b)| a * b).sum();
                    h[t * k + j] = (dot + self.project.b[j]).max(0.0);
                }
            }
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
    fn attention_follows_the_score_weights() {
        let mut a = toy();
        a.score = vec![0.0, 10.0];
        // the token with the larger unit 1 takes nearly all the attention
        let l = a.logits(&[0.0, 1.0, 0.0, 3.0]);
        assert!(l[1] > 2.99 && l[1] <= 3.0, "{l:?}");
    }
}
