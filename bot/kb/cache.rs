//! Passage embeddings on disk: `<cache>/kb/<key>.json`, where the key hashes every article
//! (id and text) and the model, so a changed file or model is embedded again on load.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub fn key<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>, model: &str) -> String {
    let mut h = Sha256::new();
    h.update(model.as_bytes());
    for (id, text) in files {
        h.update([0]);
        h.update(id.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

fn path(cache: &Path, key: &str) -> PathBuf {
    cache.join("kb").join(format!("{key}.json"))
}

/// The cached vectors, when there are `count` of them.
pub fn read(cache: &Path, key: &str, count: usize) -> Option<Vec<Vec<f32>>> {
    let bytes = std::fs::read(path(cache, key)).ok()?;
    let vectors: Vec<Vec<f32>> = serde_json::from_slice(&bytes).ok()?;
    (vectors.len() == count).then_some(vectors)
}

/// Keeps the vectors for the next start; a cache that cannot be written only costs time.
pub fn write(cache: &Path, key: &str, vectors: &[Vec<f32>]) {
    let target = path(cache, key);
    let result = (|| -> std::io::Result<()> {
        let dir = target.parent().expect("a folder");
        std::fs::create_dir_all(dir)?;
        let staging = dir.join(format!(".{key}.{}", std::process::id()));
        std::fs::write(
            &staging,
            serde_json::to_vec(vectors).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&staging, &target)
    })();
    if let Err(e) = result {
        tracing::warn!(path = %target.display(), error = %e, "cannot cache the help centre's embeddings");
    }
}
