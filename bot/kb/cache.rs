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
        std::fs::rename(&staging, &target)?;
        prune(dir, KEPT);
        Ok(())
    })();
    if let Err(e) = result {
        tracing::warn!(path = %target.display(), error = %e, "cannot cache the help centre's embeddings");
    }
}

/// How many sets of embeddings the cache keeps (each edit of the articles writes one; a
/// few folders, e.g. `eval answers --kb`, may share the cache).
const KEPT: usize = 4;

/// Deletes all but the `keep` newest cache files of `dir`.
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (_, old) in files.into_iter().skip(keep) {
        let _ = std::fs::remove_file(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_the_newest_sets_only() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..(KEPT + 3) {
            write(dir.path(), &format!("k{n}"), &[vec![n as f32]]);
            std::thread::sleep(std::time::Duration::from_millis(15));
        }
        let left = std::fs::read_dir(dir.path().join("kb")).unwrap().count();
        assert_eq!(left, KEPT);
        let newest = format!("k{}", KEPT + 2);
        assert_eq!(
            read(dir.path(), &newest, 1),
            Some(vec![vec![(KEPT + 2) as f32]])
        );
        assert_eq!(read(dir.path(), "k0", 1), None);
    }
}
