//! Choosing a head's decision settings on validation data: the temperature that calibrates
//! its probabilities, and the prior correction (per-class logit offsets that maximise
//! macro-recall, for heads whose training class mix differs from the mix they will meet;
//! TweetEval sentiment: 32% negative in train, 16% in validation).

use super::scoring::Report;
use crate::heads::{argmax, softmax, Head};

impl Head {
    /// Choose the temperature that minimises the negative log-likelihood of held-out rows,
    /// given the head's raw scores on them. Returns the chosen temperature.
    pub(crate) fn calibrate_logits(&mut self, logits: &[Vec<f32>], ys: &[usize]) -> f32 {
        let nll = |t: f32| -> f64 {
            logits
                .iter()
                .zip(ys)
                .map(|(l, &y)| -(softmax(l, t)[y].max(1e-12) as f64).ln())
                .sum::<f64>()
        };
        let mut best = (1.0f32, nll(1.0));
        // log-spaced grid from 0.1 to 10
        for i in 0..=80 {
            let t = 10f32.powf(-1.0 + 2.0 * i as f32 / 80.0);
            let v = nll(t);
            if v < best.1 {
                best = (t, v);
            }
        }
        self.temperature = best.0;
        best.0
    }
}

/// Search offsets for every class but the first (the first stays 0, offsets are relative) on
/// a grid of `-range..=range`, coordinate by coordinate, and return the offsets that maximise
/// `objective` of the report (macro-recall, or one class's F1) for the head's raw scores
/// `logits`.
pub(crate) fn choose_shift_on_logits(
    labels: &[String],
    logits: &[Vec<f32>],
    ys: &[usize],
    range: f32,
    objective: impl Fn(&Report) -> f64,
) -> Vec<f32> {
    let k = labels.len();
    let score = |delta: &[f32]| -> f64 {
        let predicted: Vec<usize> = logits
            .iter()
            .map(|l| {
                let shifted: Vec<f32> = l.iter().zip(delta).map(|(a, b)| a + b).collect();
                argmax(&shifted).0
            })
            .collect();
        objective(&Report::new(labels, ys, &predicted))
    };
    let mut delta = vec![0f32; k];
    let mut best = score(&delta);
    let steps = 20;
    // two sweeps of coordinate search are enough for 2-3 classes
    for _ in 0..2 {
        for c in 1..k {
            for i in 0..=2 * steps {
                let mut trial = delta.clone();
                trial[c] = -range + range * i as f32 / steps as f32;
                let s = score(&trial);
                if s > best + 1e-9 {
                    best = s;
                    delta = trial;
                }
            }
        }
    }
    delta
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::TrainOptions;

    #[test]
    fn shift_recovers_recall_of_a_class_rarer_in_training() {
        // class 1 is rare in training but common in validation; overlapping 1-d features
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for i in 0..200 {
            let y = usize::from(i % 10 == 0);
            let c = if y == 1 { 0.5 } else { -0.5 };
            xs.push(vec![c + ((i * 37) % 100) as f32 / 50.0 - 1.0]);
            ys.push(y);
        }
        let labels = vec!["a".to_string(), "b".to_string()];
        let mut head = Head::fit(&xs, &ys, &labels, "toy", &TrainOptions::default()).unwrap();
        let (vx, vy): (Vec<Vec<f32>>, Vec<usize>) = (0..100)
            .map(|i| {
                let y = i % 2;
                let c = if y == 1 { 0.5 } else { -0.5 };
                (vec![c + ((i * 37) % 100) as f32 / 50.0 - 1.0], y)
            })
            .unzip();
        let recall = |h: &Head| {
            let p: Vec<usize> = vx.iter().map(|x| h.predict(x).0).collect();
            Report::new(&labels, &vy, &p).macro_recall
        };
        let before = recall(&head);
        let logits: Vec<Vec<f32>> = vx.iter().map(|x| head.logits(x)).collect();
        let delta = choose_shift_on_logits(&labels, &logits, &vy, 3.0, |r| r.macro_recall);
        head.shift_logits(&delta);
        assert!(delta[1] > 0.0);
        assert!(recall(&head) > before);
    }
}
