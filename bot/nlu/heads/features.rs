//! What a head reads: a feature spec names the parts of the encoder's one pass (and the text
//! itself) that are concatenated into the head's input row, e.g. `embedding+max_pool+lexicon`.
//! Heads store their spec, so the facade builds exactly the row each head was trained on.

use std::fmt;
use std::str::FromStr;

use crate::encoder::Features;
use crate::NluError;

/// Number of transformer layers whose mean-pooled outputs a spec may name.
pub(crate) const LAYERS: usize = 6;

/// One part of a feature row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FeaturePart {
    Embedding,
    /// Mean-pooled output of layer `n` (1-based, 1..=6), L2-normalised.
    LayerMean(usize),
    MaxPool,
    /// Hand-written sentiment cues (see `lexicon.rs`).
    Lexicon,
}

/// An ordered list of parts, written `part+part+...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FeatureSpec(pub(crate) Vec<FeaturePart>);

impl FeatureSpec {
    pub fn embedding() -> Self {
        Self(vec![FeaturePart::Embedding])
    }

    /// Whether the row needs more than the sentence embedding from the encoder.
    pub fn needs_hidden_states(&self) -> bool {
        self.0
            .iter()
            .any(|p| matches!(p, FeaturePart::LayerMean(_) | FeaturePart::MaxPool))
    }

    /// The head's input row for one text.
    pub fn row(&self, pooled: &Features, text: &str) -> Result<Vec<f32>, NluError> {
        let mut row = Vec::new();
        let dim = pooled.embedding.len();
        for part in &self.0 {
            match *part {
                FeaturePart::Embedding => row.extend_from_slice(&pooled.embedding),
                FeaturePart::LayerMean(n) => {
                    let slice =
                        pooled
                            .layer_means
                            .get((n - 1) * dim..n * dim)
                            .ok_or_else(|| {
                                NluError::encode(format!("layer {n} means were not computed"))
                            })?;
                    row.extend(normalised(slice));
                }
                FeaturePart::MaxPool => {
                    if pooled.max_pool.len() != dim {
                        return Err(NluError::encode("max pooling was not computed"));
                    }
                    row.extend(normalised(&pooled.max_pool));
                }
                FeaturePart::Lexicon => row.extend(super::lexicon::lexicon_features(text)),
            }
        }
        Ok(row)
    }
}

fn normalised(v: &[f32]) -> impl Iterator<Item = f32> + '_ {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter().map(move |x| x / norm)
}

impl fmt::Display for FeatureSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|p| match p {
                FeaturePart::Embedding => "embedding".to_string(),
                FeaturePart::LayerMean(n) => format!("layer{n}"),
                FeaturePart::MaxPool => "max_pool".to_string(),
                FeaturePart::Lexicon => "lexicon".to_string(),
            })
            .collect();
        write!(f, "{}", parts.join("+"))
    }
}

impl FromStr for FeatureSpec {
    type Err = NluError;
    fn from_str(s: &str) -> Result<Self, NluError> {
        let parts = s
            .split('+')
            .map(|p| match p.trim() {
                "embedding" => Ok(FeaturePart::Embedding),
                "max_pool" => Ok(FeaturePart::MaxPool),
                "lexicon" => Ok(FeaturePart::Lexicon),
                other => other
                    .strip_prefix("layer")
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| (1..=LAYERS).contains(n))
                    .map(FeaturePart::LayerMean)
                    .ok_or_else(|| {
                        NluError::head(format!(
                            "unknown feature part `{other}` in `{s}` (known: embedding, \
                             layer1..layer{LAYERS}, max_pool, lexicon)"
                        ))
                    }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_through_text() {
        let s: FeatureSpec = "embedding+layer4+max_pool+lexicon".parse().unwrap();
        assert_eq!(s.0.len(), 4);
        assert_eq!(s.to_string(), "embedding+layer4+max_pool+lexicon");
        assert!(s.needs_hidden_states());
        assert!(!FeatureSpec::embedding().needs_hidden_states());
    }

    #[test]
    fn unknown_part_is_named() {
        let e = "embedding+layer9".parse::<FeatureSpec>().unwrap_err();
        assert!(e.to_string().contains("layer9"));
    }

    #[test]
    fn row_concatenates_normalised_parts() {
        let p = Features {
            embedding: vec![1.0, 0.0],
            layer_means: (0..12).map(|i| i as f32).collect(),
            max_pool: vec![3.0, 4.0],
            tokens: vec![],
        };
        let s: FeatureSpec = "embedding+layer2+max_pool".parse().unwrap();
        let r = s.row(&p, "hi").unwrap();
        assert_eq!(r.len(), 6);
        assert!((r[2] - 2.0 / 13f32.sqrt()).abs() < 1e-6);
        assert!((r[4] - 0.6).abs() < 1e-6 && (r[5] - 0.8).abs() < 1e-6);
    }
}
