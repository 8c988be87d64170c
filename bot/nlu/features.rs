//! What a head reads: a feature spec names the parts of the encoder's one pass (and the text
//! itself) that are concatenated into the head's input row, e.g. `embedding+max_pool+lexicon`.
//! Heads store their spec, so the facade builds exactly the row each head was trained on.
//!
//! Also a disk cache of encoder outputs for labelled data files, so training experiments
//! do not re-run the encoder over thousands of texts.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest, Sha256};

use super::encoder::Encoder;
use super::NluError;

/// Number of transformer layers whose mean-pooled outputs the encoder reports.
pub const LAYERS: usize = 6;

/// Everything one encoder pass yields for one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Pooled {
    /// L2-normalised mean-pooled last layer (the sentence embedding).
    pub embedding: Vec<f32>,
    /// Mean-pooled hidden state after each layer, `LAYERS * dim`, empty when not computed.
    pub layer_means: Vec<f32>,
    /// Max-pooled last layer, empty when not computed.
    pub max_pool: Vec<f32>,
}

/// One part of a feature row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeaturePart {
    Embedding,
    /// Mean-pooled output of layer `n` (1-based, 1..=6), L2-normalised.
    LayerMean(usize),
    MaxPool,
    /// Hand-written sentiment cues (see `sentiment.rs`).
    Lexicon,
}

/// An ordered list of parts, written `part+part+...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureSpec(pub Vec<FeaturePart>);

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
    pub fn row(&self, pooled: &Pooled, text: &str) -> Result<Vec<f32>, NluError> {
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
                                NluError::Encode(format!("layer {n} means were not computed"))
                            })?;
                    row.extend(normalised(slice));
                }
                FeaturePart::MaxPool => {
                    if pooled.max_pool.len() != dim {
                        return Err(NluError::Encode("max pooling was not computed".into()));
                    }
                    row.extend(normalised(&pooled.max_pool));
                }
                FeaturePart::Lexicon => row.extend(super::sentiment::lexicon_features(text)),
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
                        NluError::Head(format!(
                            "unknown feature part `{other}` in `{s}` (known: embedding, \
                             layer1..layer{LAYERS}, max_pool, lexicon)"
                        ))
                    }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(parts))
    }
}

/// Run the encoder once over `texts`; the hidden-state pools are kept only when asked, so
/// callers that need only the embedding do not carry 3 KB more per message.
pub fn encode(encoder: &Encoder, texts: &[&str], hidden: bool) -> Result<Vec<Pooled>, NluError> {
    Ok(encoder
        .encode_features(texts)?
        .into_iter()
        .map(|f| Pooled {
            embedding: f.embedding,
            layer_means: if hidden { f.layer_means } else { Vec::new() },
            max_pool: if hidden { f.max_pool } else { Vec::new() },
        })
        .collect())
}

/// Encoder outputs for every text of a data file, cached under
/// `<cache>/features/<sha256 of file and model>.safetensors`.
pub fn cached_encode(
    encoder: &Encoder,
    model_dir: &Path,
    data_file: &Path,
    texts: &[&str],
    progress: &indicatif::ProgressBar,
) -> Result<Vec<Pooled>, NluError> {
    let bytes = std::fs::read(data_file)
        .map_err(|e| NluError::Other(format!("cannot read {}: {e}", data_file.display())))?;
    let mut h = Sha256::new();
    h.update(b"pooled-v1\0");
    h.update(model_dir.to_string_lossy().as_bytes());
    h.update(b"\0");
    h.update(&bytes);
    let key = hex::encode(h.finalize());
    let path = cache_dir().join(format!("{}.safetensors", &key[..24]));
    if let Ok(p) = read_cache(&path, texts.len()) {
        progress.inc(texts.len() as u64);
        return Ok(p);
    }
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(64) {
        out.extend(encode(encoder, chunk, true)?);
        progress.inc(chunk.len() as u64);
    }
    if let Err(e) = write_cache(&path, &out) {
        tracing::warn!(path = %path.display(), "feature cache not written: {e}");
    }
    Ok(out)
}

fn cache_dir() -> PathBuf {
    super::model::cache_root().join("features")
}

fn write_cache(path: &Path, rows: &[Pooled]) -> Result<(), String> {
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).map_err(|e| e.to_string())?;
    let n = rows.len();
    let field = |f: fn(&Pooled) -> &Vec<f32>| -> (Vec<u8>, Vec<usize>) {
        let w = rows.first().map(|r| f(r).len()).unwrap_or(0);
        let bytes = rows
            .iter()
            .flat_map(|r| f(r).iter().flat_map(|v| v.to_le_bytes()))
            .collect();
        (bytes, vec![n, w])
    };
    let fields = [
        ("embedding", field(|p| &p.embedding)),
        ("layer_means", field(|p| &p.layer_means)),
        ("max_pool", field(|p| &p.max_pool)),
    ];
    let views = fields
        .iter()
        .map(|(name, (b, s))| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .map(|v| (name.to_string(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let tmp = path.with_extension("tmp");
    safetensors::serialize_to_file(views, None, &tmp).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}

fn read_cache(path: &Path, n: usize) -> Result<Vec<Pooled>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| e.to_string())?;
    let field = |name: &str| -> Result<Vec<Vec<f32>>, String> {
        let t = st.tensor(name).map_err(|e| e.to_string())?;
        let s = t.shape();
        if s.len() != 2 || s[0] != n {
            return Err(format!("{name} has shape {s:?}, expected {n} rows"));
        }
        let vals: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(if s[1] == 0 {
            vec![Vec::new(); n]
        } else {
            vals.chunks(s[1]).map(<[f32]>::to_vec).collect()
        })
    };
    let (e, l, m) = (
        field("embedding")?,
        field("layer_means")?,
        field("max_pool")?,
    );
    Ok(e.into_iter()
        .zip(l)
        .zip(m)
        .map(|((embedding, layer_means), max_pool)| Pooled {
            embedding,
            layer_means,
            max_pool,
        })
        .collect())
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
        let p = Pooled {
            embedding: vec![1.0, 0.0],
            layer_means: (0..12).map(|i| i as f32).collect(),
            max_pool: vec![3.0, 4.0],
        };
        let s: FeatureSpec = "embedding+layer2+max_pool".parse().unwrap();
        let r = s.row(&p, "hi").unwrap();
        assert_eq!(r.len(), 6);
        assert!((r[2] - 2.0 / 13f32.sqrt()).abs() < 1e-6);
        assert!((r[4] - 0.6).abs() < 1e-6 && (r[5] - 0.8).abs() < 1e-6);
    }

    #[test]
    fn cache_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let rows = vec![
            Pooled {
                embedding: vec![1.0, 2.0],
                layer_means: vec![],
                max_pool: vec![],
            };
            3
        ];
        write_cache(&path, &rows).unwrap();
        assert_eq!(read_cache(&path, 3).unwrap(), rows);
        assert!(read_cache(&path, 4).is_err());
    }
}
