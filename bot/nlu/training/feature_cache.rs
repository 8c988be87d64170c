//! A disk cache of encoder outputs for labelled data files, so training experiments do not
//! re-run the encoder over thousands of texts: `<cache_dir>/features/<key>.safetensors`,
//! keyed by the file's bytes and the model folder.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Progress;
use crate::encoder::{int8_guard, Encoder, Features, WeightFormat};
use crate::error::{chain, Source};
use crate::NluError;

/// Encoder outputs for every text of a data file, cached under
/// `<cache>/features/<sha256 of file and model>.safetensors`.
pub(crate) fn cached_encode(
    encoder: &Encoder,
    model_dir: &Path,
    cache_dir: &Path,
    data_file: &Path,
    variant: &str,
    texts: &[&str],
    progress: &dyn Progress,
) -> Result<Vec<Features>, NluError> {
    let key = cache_key("pooled-v1", encoder, model_dir, data_file, variant)?;
    let path = features_dir(cache_dir).join(format!("{key}.safetensors"));
    if let Ok(p) = read_cache(&path, texts.len()) {
        progress.inc(texts.len() as u64);
        return Ok(p);
    }
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(64) {
        out.extend(encoder.encode_features(chunk)?);
        progress.inc(chunk.len() as u64);
    }
    if let Err(e) = write_cache(&path, &out) {
        tracing::warn!(path = %path.display(), "feature cache not written: {}", chain(&*e));
    }
    Ok(out)
}

/// The name of a data file's cache entry of kind `kind` (e.g. `pooled-v1`): a digest of the
/// kind, the model folder, the file's bytes and `variant` (empty, or what tells entries of
/// the same file apart: normalised texts, a layer), and the encoder's weight format when it
/// is not the default f16 (whose entries keep the key they always had).
pub(super) fn cache_key(
    kind: &str,
    encoder: &Encoder,
    model_dir: &Path,
    data_file: &Path,
    variant: &str,
) -> Result<String, NluError> {
    let bytes = std::fs::read(data_file)
        .map_err(|e| NluError::data_from(format!("cannot read {}", data_file.display()), e))?;
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update(b"\0");
    h.update(model_dir.to_string_lossy().as_bytes());
    h.update(b"\0");
    h.update(&bytes);
    if !variant.is_empty() {
        h.update(b"\0");
        h.update(variant.as_bytes());
    }
    match encoder.weights() {
        WeightFormat::F16 => {}
        WeightFormat::F32 => h.update(b"\0weights=F32"),
        // A change to how int8 quantises changes every feature: the scheme names it.
        WeightFormat::Int8 => h.update(format!("\0weights={}", int8_guard::scheme()).as_bytes()),
    }
    Ok(hex::encode(h.finalize())[..24].to_string())
}

pub(super) fn features_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("features")
}

fn write_cache(path: &Path, rows: &[Features]) -> Result<(), Source> {
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    let n = rows.len();
    let field = |f: fn(&Features) -> &Vec<f32>| -> (Vec<u8>, Vec<usize>) {
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
        .collect::<Result<Vec<_>, _>>()?;
    let tmp = path.with_extension("tmp");
    safetensors::serialize_to_file(views, None, &tmp)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn read_cache(path: &Path, n: usize) -> Result<Vec<Features>, Source> {
    let bytes = std::fs::read(path)?;
    let st = safetensors::SafeTensors::deserialize(&bytes)?;
    let field = |name: &str| -> Result<Vec<Vec<f32>>, Source> {
        let t = st.tensor(name)?;
        let s = t.shape();
        if s.len() != 2 || s[0] != n {
            return Err(format!("{name} has shape {s:?}, expected {n} rows").into());
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
        .map(|((embedding, layer_means), max_pool)| Features {
            embedding,
            layer_means,
            max_pool,
            tokens: Vec::new(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let rows = vec![
            Features {
                embedding: vec![1.0, 2.0],
                layer_means: vec![],
                max_pool: vec![],
                tokens: vec![],
            };
            3
        ];
        write_cache(&path, &rows).unwrap();
        assert_eq!(read_cache(&path, 3).unwrap(), rows);
        assert!(read_cache(&path, 4).is_err());
    }
}
