//! Classification scores: confusion matrix, accuracy, per-label precision / recall / F1,
//! macro averages and the most-confused pairs. Pure functions, shared by training (choosing on
//! validation data) and evaluation (reporting).

use serde::Serialize;

/// Scores of one label.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LabelScore {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Number of examples whose true label is this one.
    pub support: usize,
}

/// A true label mistaken for another, with how often.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Confusion {
    pub truth: String,
    pub predicted: String,
    pub count: usize,
}

/// Scores of predictions against the truth.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub examples: usize,
    pub accuracy: f64,
    pub macro_precision: f64,
    pub macro_recall: f64,
    pub macro_f1: f64,
    pub per_label: Vec<LabelScore>,
    /// `matrix[truth][predicted]`, labels in `labels` order.
    pub labels: Vec<String>,
    pub matrix: Vec<Vec<usize>>,
}

impl Report {
    /// Score predictions against the truth. Labels seen in either are all reported; the macro
    /// averages run over the labels that occur in the truth.
    pub fn new(labels: &[String], truth: &[usize], predicted: &[usize]) -> Report {
        let k = labels.len();
        let mut matrix = vec![vec![0usize; k]; k];
        for (&t, &p) in truth.iter().zip(predicted) {
            matrix[t][p] += 1;
        }
        let n = truth.len();
        let correct: usize = (0..k).map(|i| matrix[i][i]).sum();
        let mut per_label = Vec::new();
        for (i, label) in labels.iter().enumerate() {
            let tp = matrix[i][i] as f64;
            let support: usize = matrix[i].iter().sum();
            let predicted_as: usize = (0..k).map(|r| matrix[r][i]).sum();
            let precision = if predicted_as == 0 {
                0.0
            } else {
                tp / predicted_as as f64
            };
            let recall = if support == 0 {
                0.0
            } else {
                tp / support as f64
            };
            let f1 = if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            };
            per_label.push(LabelScore {
                label: label.clone(),
                precision,
                recall,
                f1,
                support,
            });
        }
        let present: Vec<&LabelScore> = per_label.iter().filter(|s| s.support > 0).collect();
        let avg = |f: fn(&LabelScore) -> f64| {
            if present.is_empty() {
                0.0
            } else {
                present.iter().map(|s| f(s)).sum::<f64>() / present.len() as f64
            }
        };
        Report {
            examples: n,
            accuracy: if n == 0 {
                0.0
            } else {
                correct as f64 / n as f64
            },
            macro_precision: avg(|s| s.precision),
            macro_recall: avg(|s| s.recall),
            macro_f1: avg(|s| s.f1),
            per_label,
            labels: labels.to_vec(),
            matrix,
        }
    }

    /// Off-diagonal cells, largest first.
    pub fn most_confused(&self, top: usize) -> Vec<Confusion> {
        let mut pairs = Vec::new();
        for (t, row) in self.matrix.iter().enumerate() {
            for (p, &count) in row.iter().enumerate() {
                if t != p && count > 0 {
                    pairs.push(Confusion {
                        truth: self.labels[t].clone(),
                        predicted: self.labels[p].clone(),
                        count,
                    });
                }
            }
        }
        pairs.sort_by(|a, b| b.count.cmp(&a.count).then(a.truth.cmp(&b.truth)));
        pairs.truncate(top);
        pairs
    }

    /// The scores of one label.
    pub fn score(&self, label: &str) -> Option<&LabelScore> {
        self.per_label.iter().find(|s| s.label == label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        vec!["neg".into(), "neu".into(), "pos".into()]
    }

    #[test]
    fn perfect_predictions_score_one() {
        let t = [0, 1, 2, 2];
        let r = Report::new(&labels(), &t, &t);
        assert_eq!(r.accuracy, 1.0);
        assert_eq!(r.macro_f1, 1.0);
        assert!(r.most_confused(5).is_empty());
    }

    #[test]
    fn hand_checked_scores() {
        // truth: neg neg neu pos ; predicted: neg neu neu neu
        let r = Report::new(&labels(), &[0, 0, 1, 2], &[0, 1, 1, 1]);
        assert_eq!(r.accuracy, 0.5);
        let neg = r.score("neg").unwrap();
        assert_eq!((neg.precision, neg.recall), (1.0, 0.5));
        let neu = r.score("neu").unwrap();
        assert!((neu.precision - 1.0 / 3.0).abs() < 1e-9 && neu.recall == 1.0);
        assert!((r.macro_recall - 0.5).abs() < 1e-9);
        assert_eq!(r.matrix[2][1], 1);
        let top = r.most_confused(1);
        assert_eq!(top[0].count, 1);
    }

    #[test]
    fn absent_labels_do_not_drag_macro_averages() {
        let r = Report::new(&labels(), &[0, 0], &[0, 0]);
        assert_eq!(r.macro_recall, 1.0);
    }
}
