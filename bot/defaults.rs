//! The shipped defaults, built into the binary: intents, escalation rules, trained heads,
//! the demo shop and the out-of-scope validation sets (see `build.rs`). Components read
//! files, so the defaults are written once into a folder of the cache named by their
//! contents' hash, and found there by every later start of the same build.
//! `frontdesk init DIR` writes an editable copy for a support lead.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

mod files {
    include!(concat!(env!("OUT_DIR"), "/defaults.rs"));
}

/// Where each default lives once written out.
#[derive(Debug, Clone)]
pub struct DefaultPaths {
    pub root: PathBuf,
    pub intents_dir: PathBuf,
    pub models_dir: PathBuf,
    pub rules: PathBuf,
    pub demo_shop: PathBuf,
    pub validation_dir: PathBuf,
}

impl DefaultPaths {
    fn under(root: PathBuf) -> DefaultPaths {
        DefaultPaths {
            intents_dir: root.join("intents"),
            models_dir: root.join("models"),
            rules: root.join("rules.toml"),
            demo_shop: root.join("demo_shop.json"),
            validation_dir: root.join("validation"),
            root,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DefaultsError {
    #[error("cannot write the built-in defaults to {path}: {source} (set nlu.cache_dir or FRONTDESK_CACHE to a writable folder)")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} already exists: `frontdesk init` never overwrites; choose an empty or new folder"
    )]
    Exists { path: PathBuf },
}

/// Every default file: (path relative to the defaults folder, contents).
pub fn files() -> &'static [(&'static str, &'static [u8])] {
    files::FILES
}

/// The built-in rules (`rules.toml`) as text.
pub fn rules_text() -> &'static str {
    text("rules.toml")
}

/// The documented example configuration.
pub const EXAMPLE_CONFIG: &str = include_str!("../frontdesk.example.toml");

fn text(name: &str) -> &'static str {
    files()
        .iter()
        .find(|(path, _)| *path == name)
        .and_then(|(_, bytes)| std::str::from_utf8(bytes).ok())
        .unwrap_or_default()
}

/// Short hash of every default's path and contents: a new build with other defaults writes
/// a new folder, and never mixes its files with an older build's.
fn fingerprint() -> String {
    let mut h = Sha256::new();
    for (path, bytes) in files() {
        h.update(path.as_bytes());
        h.update([0]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    hex::encode(&h.finalize()[..6])
}

/// The defaults written under `cache/defaults/<hash>` (once per build; later calls only
/// check that the folder is there).
pub fn materialize(cache: &Path) -> Result<DefaultPaths, DefaultsError> {
    let root = cache.join("defaults").join(fingerprint());
    let paths = DefaultPaths::under(root.clone());
    if root.join(".complete").is_file() {
        return Ok(paths);
    }
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DefaultsError::Write { path, source }
    };
    // Written aside and renamed into place, so a crash or a second process never leaves a
    // half-written folder that looks complete.
    let staging = cache.join("defaults").join(format!(
        ".staging-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    write_all(&staging).map_err(write_err(&staging))?;
    std::fs::write(staging.join(".complete"), b"").map_err(write_err(&staging))?;
    match std::fs::rename(&staging, &root) {
        Ok(()) => {}
        // Another process finished first: theirs is identical.
        Err(_) if root.join(".complete").is_file() => {
            let _ = std::fs::remove_dir_all(&staging);
        }
        Err(e) => return Err(write_err(&root)(e)),
    }
    tracing::debug!(path = %root.display(), "built-in defaults written");
    Ok(paths)
}

fn write_all(dir: &Path) -> std::io::Result<()> {
    for (rel, bytes) in files() {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes)?;
    }
    Ok(())
}

/// What `frontdesk init` wrote.
#[derive(Debug, Clone)]
pub struct Initialised {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub files: usize,
}

/// Writes an editable copy of the defaults into `dir` (intents, rules, heads, demo shop,
/// validation sets) and a `frontdesk.toml` that points at them and lists `agents`
/// (name, argon2 hash; the caller made their passwords and shows them once). Refuses to
/// overwrite.
pub fn init(dir: &Path, agents: &[(String, String)]) -> Result<Initialised, DefaultsError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DefaultsError::Write { path, source }
    };
    let config = dir.join("frontdesk.toml");
    for existing in [
        "intents",
        "models",
        "rules.toml",
        "demo_shop.json",
        "validation",
    ]
    .iter()
    .map(|p| dir.join(p))
    .chain([config.clone()])
    {
        if existing.exists() {
            return Err(DefaultsError::Exists { path: existing });
        }
    }
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    write_all(dir).map_err(err(dir))?;
    std::fs::write(&config, init_config(agents)).map_err(err(&config))?;
    Ok(Initialised {
        dir: dir.to_path_buf(),
        config,
        files: files().len() + 1,
    })
}

/// The example configuration with the paths to the copied defaults switched on, and the
/// agents given as (name, hash) listed, the first an admin.
fn init_config(agents: &[(String, String)]) -> String {
    let mut out = String::from(
        "# Written by `frontdesk init`: the files beside this one are yours to edit.\n\
         # Start with `frontdesk serve` in this folder (or `frontdesk serve --config PATH`).\n\n",
    );
    for line in EXAMPLE_CONFIG.lines() {
        let replaced = match line.trim_start() {
            l if l.starts_with("# intents_dir =") => "intents_dir = \"intents\"",
            l if l.starts_with("# rules =") => "rules = \"rules.toml\"",
            l if l.starts_with("# demo_file =") => "demo_file = \"demo_shop.json\"",
            l if l.starts_with("# models_dir =") => "models_dir = \"models\"",
            _ => line,
        };
        out.push_str(replaced);
        out.push('\n');
    }
    out.push_str(
        "\n# Written by `frontdesk init` with generated passwords (printed once by init).\n",
    );
    for (i, (name, hash)) in agents.iter().enumerate() {
        let mut display = name.clone();
        display[..1].make_ascii_uppercase();
        let role = if i == 0 { "admin" } else { "agent" };
        out.push_str(&format!(
            "[[agents]]\nname = \"{name}\"\ndisplay_name = \"{display}\"\npassword_hash = \"{hash}\"\ncapacity = 3\nrole = \"{role}\"\n\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_kind_is_built_in() {
        let names: Vec<&str> = files().iter().map(|(p, _)| *p).collect();
        assert!(names.contains(&"rules.toml"));
        assert!(names.contains(&"demo_shop.json"));
        assert!(names.contains(&"models/sentiment.safetensors"));
        assert!(names.contains(&"models/anger.safetensors"));
        assert!(names.contains(&"models/frustration.safetensors"));
        assert!(names.contains(&"models/stakes.safetensors"));
        assert!(names.iter().any(|n| n.starts_with("models/intents-")));
        assert!(names.contains(&"intents/track_order.yaml"));
        assert!(names.contains(&"validation/out_of_scope_val.txt"));
    }

    #[test]
    fn materialize_writes_once_and_is_found_again() {
        let cache = tempfile::tempdir().unwrap();
        let a = materialize(cache.path()).unwrap();
        assert!(a.intents_dir.join("track_order.yaml").is_file());
        assert!(a.rules.is_file());
        let b = materialize(cache.path()).unwrap();
        assert_eq!(a.root, b.root);
    }

    #[test]
    fn init_refuses_to_overwrite_and_points_the_config_at_the_copies() {
        let dir = tempfile::tempdir().unwrap();
        let agents = [("ana".to_string(), "$argon2id$v=19$made-up".to_string())];
        let done = init(dir.path(), &agents).unwrap();
        let text = std::fs::read_to_string(&done.config).unwrap();
        assert!(
            text.contains("password_hash = \"$argon2id$v=19$made-up\""),
            "{text}"
        );
        assert!(text.contains("\nintents_dir = \"intents\""), "{text}");
        assert!(text.contains("\nrules = \"rules.toml\""), "{text}");
        let config = crate::config::Config::load_with_env(Some(&done.config), |_| None).unwrap();
        assert_eq!(config.engine.intents_dir, Some(dir.path().join("intents")));
        assert!(matches!(
            init(dir.path(), &agents),
            Err(DefaultsError::Exists { .. })
        ));
    }
}
