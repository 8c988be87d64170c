//! What the cockpit watches: one [`Source`] per kind of configuration a lead edits (the
//! rules file, the intents folder, the canned replies, the prompts, the help centre). A
//! source reads its text from disk, checks a text the way the running server would, puts a
//! checked text in force, and writes a text back (a rollback). A folder is one text, its
//! files one after another under a `==> NAME <==` line ([`bundle`], [`unbundle`]), so a
//! version of a folder is diffed, kept and put back whole.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::Serialize;

/// Why a text was not put in force: the file, the 1-based line when it can be told, the
/// reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub file: String,
    pub line: Option<usize>,
    pub reason: String,
}

impl Problem {
    pub fn new(file: impl Into<String>, line: Option<usize>, reason: impl Into<String>) -> Self {
        Problem {
            file: file.into(),
            line,
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.reason),
            None => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

/// One kind of configuration the cockpit keeps versions of and reloads.
#[async_trait]
pub trait Source: Send + Sync + 'static {
    /// The kind of its versions in the store (`rules`, `intents`, ...).
    fn kind(&self) -> &'static str;
    /// The file or folder it reads.
    fn place(&self) -> &Path;
    /// The text on disk now.
    fn read(&self) -> std::io::Result<String>;
    /// Checks `text` as the server would read it; nothing is put in force.
    fn check(&self, text: &str) -> Result<(), Problem>;
    /// Checks `text` and puts it in force here (for the intents, after the new head is
    /// trained: the old one answers meanwhile).
    async fn put_in_force(&self, text: &str) -> Result<(), Problem>;
    /// Writes `text` to disk (a rollback, or an edit from the console), so a restart keeps
    /// it.
    fn write(&self, text: &str) -> std::io::Result<()>;
}

const MARK_OPEN: &str = "==> ";
const MARK_CLOSE: &str = " <==";

/// The files of `dir` whose names `keep` accepts, as one text: each file under a line
/// `==> NAME <==`, in name order. Sub-folders are not read.
pub fn bundle(dir: &Path, keep: fn(&str) -> bool) -> std::io::Result<String> {
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            keep(&name).then_some((name, p))
        })
        .collect();
    files.sort();
    let mut out = String::new();
    for (name, path) in files {
        let text = std::fs::read_to_string(&path)?;
        out.push_str(&format!("{MARK_OPEN}{name}{MARK_CLOSE}\n"));
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// The files of a [`bundle`] text: (name, text). A name with a path in it, or text before
/// the first file, is refused.
pub fn unbundle(text: &str, place: &Path) -> Result<Vec<(String, String)>, Problem> {
    let mut files: Vec<(String, String)> = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        if let Some(name) = bare
            .strip_prefix(MARK_OPEN)
            .and_then(|r| r.strip_suffix(MARK_CLOSE))
        {
            if name.is_empty()
                || name.contains(['/', '\\'])
                || name.starts_with('.')
                || files.iter().any(|(n, _)| n == name)
            {
                return Err(Problem::new(
                    place.display().to_string(),
                    Some(i + 1),
                    format!("`{name}` is not a file name this folder can hold (one name, no path, once)"),
                ));
            }
            files.push((name.to_string(), String::new()));
        } else if let Some((_, body)) = files.last_mut() {
            body.push_str(line);
        } else if !bare.trim().is_empty() {
            return Err(Problem::new(
                place.display().to_string(),
                Some(i + 1),
                "text before the first `==> NAME <==` line: every file starts with one",
            ));
        }
    }
    Ok(files)
}

/// Writes the files of a [`bundle`] text into `dir` and removes the files `keep` accepts
/// that the text no longer holds. Each file is written whole (a temporary file renamed).
pub fn write_bundle(dir: &Path, text: &str, keep: fn(&str) -> bool) -> std::io::Result<()> {
    let files = unbundle(text, dir)
        .map_err(|p| std::io::Error::new(std::io::ErrorKind::InvalidData, p.to_string()))?;
    std::fs::create_dir_all(dir)?;
    for (name, body) in &files {
        write_whole(&dir.join(name), body)?;
    }
    for entry in std::fs::read_dir(dir)?.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_file() && keep(&name) && !files.iter().any(|(n, _)| *n == name) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Writes `text` to `path` through a temporary file beside it, so a reader sees the old
/// text or the new, never half.
pub fn write_whole(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.writing"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(name: &str) -> bool {
        name.ends_with(".yaml")
    }

    #[test]
    fn a_folder_is_one_text_and_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yaml"), "name: b\n").unwrap();
        std::fs::write(dir.path().join("a.yaml"), "name: a").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not read").unwrap();
        let text = bundle(dir.path(), yaml).unwrap();
        assert_eq!(text, "==> a.yaml <==\nname: a\n==> b.yaml <==\nname: b\n");
        let files = unbundle(&text, dir.path()).unwrap();
        assert_eq!(files[0], ("a.yaml".into(), "name: a\n".into()));
        // b.yaml removed, c.yaml added, notes.txt (not a file of this kind) kept
        write_bundle(
            dir.path(),
            "==> a.yaml <==\nname: a2\n==> c.yaml <==\nname: c\n",
            yaml,
        )
        .unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["a.yaml", "c.yaml", "notes.txt"]);
    }

    #[test]
    fn a_name_with_a_path_or_text_before_the_first_file_is_refused() {
        let place = Path::new("intents");
        let p = unbundle("==> ../etc/passwd <==\nx\n", place).unwrap_err();
        assert_eq!(p.line, Some(1));
        let p = unbundle("stray\n==> a.yaml <==\n", place).unwrap_err();
        assert_eq!(p.line, Some(1));
        let p = unbundle("==> a.yaml <==\n==> a.yaml <==\n", place).unwrap_err();
        assert_eq!(p.line, Some(2));
    }
}
