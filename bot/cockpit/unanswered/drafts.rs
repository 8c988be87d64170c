//! What a lead makes of a group of the unanswered inbox: a new intent file in the intents
//! folder (the group's messages as its examples), or a help-centre article draft.
//!
//! - An intent file is checked by the intents loader itself (written alone into a scratch
//!   folder and loaded there) before it goes into the folder, so a name or an example the
//!   loader would refuse is refused here with its reason; an existing file of that name is
//!   never replaced. It lands whole (written beside under a name the loader ignores, then
//!   linked in place), so a reload never reads half of it.
//! - An article draft goes to `drafts/` inside the help centre's folder: the help centre
//!   reads only the articles directly in its folder, so a draft (the customers' questions,
//!   no answer yet) is never quoted to a customer. It says so at its top; moving it up one
//!   folder, once written, publishes it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::Group;
use crate::nlu::{IntentError, IntentSet, MIN_EXAMPLES};

/// Longest intent name (it is also the file's name).
pub const MAX_NAME: usize = 64;
/// Most examples written into an intent file from a group.
pub const MAX_EXAMPLES: usize = 100;
/// Longest article title.
pub const MAX_TITLE: usize = 120;
/// The folder of the help centre's folder that drafts go to (not read by the help centre).
pub const DRAFTS: &str = "drafts";

/// Why a draft was not written.
#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    #[error("{0}")]
    Invalid(String),
    #[error("{} already exists: choose another name, or edit that file", .0.display())]
    Exists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> DraftError + '_ {
    move |source| DraftError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// One line, its control characters and runs of spaces folded to one space.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A YAML double-quoted scalar (JSON's string syntax is YAML's).
fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// What a new intent is made of.
#[derive(Debug, Clone)]
pub struct NewIntent<'a> {
    pub name: &'a str,
    /// What the bot answers; `None`: what these customers were told so far (`fallback`).
    pub answer: Option<&'a str>,
    pub description: Option<&'a str>,
    /// Written after the group's own texts (a group with fewer than five needs some).
    pub more_examples: &'a [String],
    pub group: &'a Group,
    /// The answer when `answer` is `None`: the folder's out-of-scope answer.
    pub fallback: &'a str,
    pub author: &'a str,
    pub now: DateTime<Utc>,
}

/// The intent file's text (see `intents/README.md`): the group's texts (most central
/// first) then `more_examples`, each once.
pub fn intent_yaml(new: &NewIntent) -> Result<String, DraftError> {
    let name = new.name.trim();
    if name.is_empty()
        || name.len() > MAX_NAME
        || !name.starts_with(|c: char| c.is_ascii_lowercase())
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(DraftError::Invalid(format!(
            "intent name `{}` must be lower snake_case (letters, digits, _), start with a letter \
             and be at most {MAX_NAME} characters: it is also the file's name",
            one_line(name)
        )));
    }
    let mut seen = std::collections::HashSet::new();
    let examples: Vec<String> = new
        .group
        .texts
        .iter()
        .take(MAX_EXAMPLES)
        .chain(new.more_examples)
        .map(|e| one_line(e))
        .filter(|e| !e.is_empty() && seen.insert(super::normalise(e)))
        .collect();
    if examples.len() < MIN_EXAMPLES {
        return Err(DraftError::Invalid(format!(
            "this group has {} different messages and an intent needs at least {MIN_EXAMPLES} \
             examples: add some in `examples`",
            examples.len()
        )));
    }
    let answer = new.answer.map(str::trim).filter(|a| !a.is_empty());
    let mut y = format!(
        "# Made from the unanswered inbox (group {}, {} messages) by {} on {}.\n\
         # Read the examples (customers' own words) before the next training.\n",
        new.group.id,
        new.group.count,
        one_line(new.author),
        new.now.format("%Y-%m-%d %H:%M UTC"),
    );
    y += &format!("name: {name}\n");
    let description = new
        .description
        .map(one_line)
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| format!("Customers ask things like: {}", examples[0]));
    y += &format!("description: {}\n", quoted(&description));
    y += "examples:\n";
    for e in &examples {
        y += &format!("  - {}\n", quoted(e));
    }
    y += "response:\n";
    if answer.is_none() {
        y += "  # TODO: write the answer; until then the bot says what it said to these customers.\n";
    }
    y += &format!("  text: {}\n", quoted(answer.unwrap_or(new.fallback)));
    Ok(y)
}

/// The file the intent `name` would be in, if one is there already (`.yaml` or `.yml`).
fn existing(dir: &Path, name: &str) -> Option<PathBuf> {
    ["yaml", "yml"]
        .iter()
        .map(|ext| dir.join(format!("{name}.{ext}")))
        .find(|p| p.exists())
}

/// Checks `yaml` as the intents loader does, alone in a scratch folder.
fn check_intent(name: &str, yaml: &str) -> Result<(), DraftError> {
    let scratch = std::env::temp_dir().join(format!(
        "frontdesk-intent-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&scratch).map_err(write_error(&scratch))?;
    let file = scratch.join(format!("{name}.yaml"));
    let checked = std::fs::write(&file, yaml)
        .map_err(write_error(&file))
        .map(|()| IntentSet::load_dir(&scratch));
    let _ = std::fs::remove_dir_all(&scratch);
    match checked? {
        Ok(_) => Ok(()),
        Err(IntentError::Invalid { line, message, .. }) => Err(DraftError::Invalid(match line {
            Some(line) => format!("the intent file would be refused (its line {line}): {message}"),
            None => format!("the intent file would be refused: {message}"),
        })),
        Err(e) => Err(DraftError::Invalid(format!(
            "the intent file would be refused: {e}"
        ))),
    }
}

/// Writes `yaml` as intent `name` into `dir`, never over an existing file; returns its path.
pub fn write_intent(dir: &Path, name: &str, yaml: &str) -> Result<PathBuf, DraftError> {
    let path = dir.join(format!("{name}.yaml"));
    if let Some(there) = existing(dir, name) {
        return Err(DraftError::Exists(there));
    }
    check_intent(name, yaml)?;
    // Not `.yaml`: the loader and the live reload skip it until it is linked in place.
    let partial = dir.join(format!(".{name}.{}.partial", uuid::Uuid::new_v4().simple()));
    let written = std::fs::File::create(&partial)
        .and_then(|mut f| f.write_all(yaml.as_bytes()).and_then(|()| f.sync_all()))
        .map_err(write_error(&partial));
    let linked = written.and_then(|()| {
        std::fs::hard_link(&partial, &path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => DraftError::Exists(path.clone()),
            _ => write_error(&path)(e),
        })
    });
    let _ = std::fs::remove_file(&partial);
    linked.map(|()| path)
}

/// The file name of an article titled `title`: lower case words joined by `-`.
pub fn slug(title: &str) -> String {
    let mut s = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            s.push(c);
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    let mut s: String = s.trim_end_matches('-').chars().take(60).collect();
    while s.ends_with('-') {
        s.pop();
    }
    s
}

/// An article draft for `group`: its title, a clear draft note, the customers' questions.
pub fn article_markdown(title: &str, group: &Group, author: &str, now: DateTime<Utc>) -> String {
    let mut md = format!(
        "<!-- DRAFT from the unanswered inbox (group {}, {} messages), made by {} on {}.\n\
         It is not served: the help centre reads only the articles directly in its folder.\n\
         Write the answer, remove this note and the questions, then move the file up one\n\
         folder to publish it. -->\n\n",
        group.id,
        group.count,
        one_line(author).replace("--", "- -"),
        now.format("%Y-%m-%d %H:%M UTC"),
    );
    md += &format!("# {}\n\n", one_line(title));
    md += "DRAFT: the answer goes here.\n\n## What customers asked\n\n";
    for q in group.texts.iter().take(MAX_EXAMPLES) {
        md += &format!("- {}\n", one_line(q));
    }
    md
}

/// Writes an article draft titled `title` into `kb_dir/drafts/`, never over an existing
/// draft nor under the name of an article already published; returns its path.
pub fn write_article(
    kb_dir: &Path,
    title: &str,
    group: &Group,
    author: &str,
    now: DateTime<Utc>,
) -> Result<PathBuf, DraftError> {
    let title = one_line(title);
    if title.chars().count() > MAX_TITLE {
        return Err(DraftError::Invalid(format!(
            "the title is longer than {MAX_TITLE} characters: shorten it"
        )));
    }
    let id = slug(&title);
    if id.is_empty() {
        return Err(DraftError::Invalid(
            "the title needs letters or digits (it names the article's file and link)".into(),
        ));
    }
    let published = kb_dir.join(format!("{id}.md"));
    if published.exists() {
        return Err(DraftError::Exists(published));
    }
    let dir = kb_dir.join(DRAFTS);
    std::fs::create_dir_all(&dir).map_err(write_error(&dir))?;
    let path = dir.join(format!("{id}.md"));
    let text = article_markdown(&title, group, author, now);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => DraftError::Exists(path.clone()),
            _ => write_error(&path)(e),
        })?
        .write_all(text.as_bytes())
        .map_err(write_error(&path))?;
    Ok(path)
}

#[cfg(test)]
mod tests;
