//! Embeds the shipped defaults (intents, escalation rules, trained heads, demo shop, help
//! centre and the out-of-scope validation sets) in the binary, so an installed `frontdesk`
//! works from any directory. Writes `$OUT_DIR/defaults.rs`: one `(relative path, bytes)` entry per file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// (folder or file in the repository, where it goes in the defaults folder)
const SHIPPED: [(&str, &str); 6] = [
    ("kb", "kb"),
    ("intents", "intents"),
    ("models", "models"),
    ("rules.toml", "rules.toml"),
    ("data/demo_shop.json", "demo_shop.json"),
    ("tests/data", "validation"),
];

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let mut files = Vec::new();
    for (from, to) in SHIPPED {
        let path = root.join(from);
        // A folder: a file added or removed in it must rebuild the list.
        println!("cargo:rerun-if-changed={}", path.display());
        collect(&path, Path::new(to), &mut files);
    }
    files.sort();
    let mut out =
        String::from("/// Every shipped default: (path in the defaults folder, contents).\n");
    out.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (rel, abs) in &files {
        writeln!(out, "    ({rel:?}, include_bytes!({abs:?})),").unwrap();
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("defaults.rs");
    std::fs::write(dest, out).expect("write defaults.rs");
}

fn collect(path: &Path, rel: &Path, files: &mut Vec<(String, String)>) {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            .map(|e| e.expect("directory entry").path())
            .collect();
        entries.sort();
        for entry in entries {
            let name = entry.file_name().expect("a file name").to_owned();
            let hidden = name.to_string_lossy().starts_with('.');
            // Only the committed heads, never a downloaded base model.
            if hidden || entry.is_dir() {
                continue;
            }
            collect(&entry, &rel.join(name), files);
        }
    } else if path.is_file() {
        files.push((
            rel.to_string_lossy().replace('\\', "/"),
            path.to_string_lossy().into_owned(),
        ));
    } else {
        panic!(
            "{} is missing: the shipped defaults are built into the binary",
            path.display()
        );
    }
}
