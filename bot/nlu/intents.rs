//! Intent definitions: the YAML files in `intents/` turned into training examples and the
//! bot's responses.
//!
//! One file per intent, named `<name>.yaml` (or `.yml`):
//!
//! ```yaml
//! name: track_order            # must equal the file name
//! description: The customer wants to know where an order is or when it arrives.
//! examples:                    # at least 5 (the shipped set keeps >= 15), no duplicates
//!   - where is my order
//!   - "track order #10234"
//! response:
//!   text: "Order {order_number} is {status}. {detail}"   # not empty
//!   slots:                     # optional: asked for in order when missing
//!     - name: order_number
//!       entity: order_number   # an EntityKind in snake_case: order_number, email, money, date
//!       prompt: "Happy to check. What's your order number?"
//!   action: order_status       # optional: a named lookup the conversation engine performs
//! ```
//!
//! `{placeholders}` in `text` are filled from slots of that name or from the fields the
//! action returns (see `intents/README.md` for the names the shipped set uses).
//!
//! The special file `_out_of_scope.yaml` has no `name`, no slots and no action: its
//! examples are messages that are not the shop's business (negatives for the classifier)
//! and its response is the honest "I can't help with that here" answer. Other files whose
//! names start with `_`, and files that are not YAML, are ignored.
//!
//! Every problem is reported with the file and, where it has one, the line, and says what
//! to change. Unknown fields are errors so that a typo never silently drops data.
//!
//! (A little over 500 lines because of the format reference above, kept with the code that
//! enforces it; the tests are in `intents_tests.rs`.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::analysis::{EntityKind, OUT_OF_SCOPE};

#[path = "intents_checks.rs"]
mod checks;
use checks::{find_line, is_yaml, parse_intent, parse_out_of_scope};

/// The file holding the out-of-scope examples and answer.
pub const OUT_OF_SCOPE_FILE: &str = "_out_of_scope.yaml";
/// Fewer examples than this is an error.
pub const MIN_EXAMPLES: usize = 5;
/// Fewer examples than this loads, with a warning: the classifier needs variety.
pub const RECOMMENDED_EXAMPLES: usize = 15;

/// All intents of one `intents/` folder, sorted by name.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentSet {
    pub intents: Vec<Intent>,
    /// The examples and answer for messages no intent covers, from `_out_of_scope.yaml`.
    pub out_of_scope: Option<OutOfScope>,
}

/// One thing a customer can ask for, with the examples that teach it and the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub examples: Vec<String>,
    pub response: Response,
}

/// What the bot answers once the intent is recognised and its slots are filled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    pub text: String,
    #[serde(default)]
    pub slots: Vec<Slot>,
    #[serde(default)]
    pub action: Option<String>,
}

/// A piece of information the answer needs, asked for with `prompt` when the message has no
/// entity of kind `entity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slot {
    pub name: String,
    pub entity: EntityKind,
    pub prompt: String,
}

/// Messages that are not the shop's business, and the answer they get.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutOfScope {
    #[serde(default)]
    pub description: String,
    pub examples: Vec<String>,
    pub response: Response,
}

/// Why an intents folder could not be loaded. The display form starts with `file:line:`.
#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    #[error("cannot read intents from {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", location(file, *line))]
    Invalid {
        file: PathBuf,
        /// 1-based line, when the problem sits on one.
        line: Option<usize>,
        message: String,
    },
    #[error("no intent files (*.yaml) in {0}: add one file per intent, see intents/README.md")]
    Empty(PathBuf),
}

impl IntentError {
    /// The file at fault, when there is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            IntentError::Invalid { file, .. } => Some(file),
            IntentError::Io { path, .. } => Some(path),
            IntentError::Empty(_) => None,
        }
    }

    /// The 1-based line at fault, when there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            IntentError::Invalid { line, .. } => *line,
            _ => None,
        }
    }
}

fn location(file: &Path, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{}:{line}", file.display()),
        None => file.display().to_string(),
    }
}

impl IntentSet {
    /// Reads every `*.yaml` / `*.yml` intent file in `dir` plus `_out_of_scope.yaml` when
    /// present, and checks them all. The first problem found is returned.
    pub fn load_dir(dir: &Path) -> Result<IntentSet, IntentError> {
        IntentSet::from_files(dir, &IntentSet::read_files(dir)?)
    }

    /// The intent files of `dir` (`*.yaml` / `*.yml`), by name, with their text, sorted by
    /// name: what [`from_files`](Self::from_files) reads.
    pub fn read_files(dir: &Path) -> Result<Vec<(String, String)>, IntentError> {
        let io = |source| IntentError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io)?
            .into_iter()
            .map(|entry| entry.path())
            .filter(|path| path.is_file() && is_yaml(path))
            .collect();
        paths.sort();
        paths
            .into_iter()
            .map(|path| {
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("")
                    .to_string();
                std::fs::read_to_string(&path)
                    .map(|text| (name, text))
                    .map_err(|source| IntentError::Io { path, source })
            })
            .collect()
    }

    /// Checks the intent files `files` (name, text) as if they were the folder `dir`: the
    /// live reload checks a change before it is put in force. The first problem found is
    /// returned, naming its file and line.
    pub fn from_files(dir: &Path, files: &[(String, String)]) -> Result<IntentSet, IntentError> {
        let mut intents: Vec<Intent> = Vec::new();
        let mut origin: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut out_of_scope = None;
        let mut files: Vec<&(String, String)> = files
            .iter()
            .filter(|(name, _)| is_yaml(Path::new(name)))
            .collect();
        files.sort();
        for (file_name, source) in files {
            let path = dir.join(file_name);
            if file_name == OUT_OF_SCOPE_FILE {
                out_of_scope = Some(parse_out_of_scope(&path, source)?);
                continue;
            }
            if file_name.starts_with('_') {
                continue;
            }
            let intent = parse_intent(&path, source)?;
            if let Some(first) = origin.get(&intent.name) {
                return Err(IntentError::Invalid {
                    file: path.clone(),
                    line: find_line(source, "name:"),
                    message: format!(
                        "intent `{}` is already defined in {}: keep one definition",
                        intent.name,
                        first.display()
                    ),
                });
            }
            origin.insert(intent.name.clone(), path.clone());
            intents.push(intent);
        }
        if intents.is_empty() {
            return Err(IntentError::Empty(dir.to_path_buf()));
        }
        intents.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(IntentSet {
            intents,
            out_of_scope,
        })
    }

    /// The intent called `name`.
    pub fn get(&self, name: &str) -> Option<&Intent> {
        self.intents.iter().find(|intent| intent.name == name)
    }

    /// Intent names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.intents.iter().map(|i| i.name.as_str()).collect()
    }

    /// Every example as `(text, intent name)`, intents in name order, examples in file order.
    /// Out-of-scope examples are not included (see [`IntentSet::out_of_scope_examples`]).
    pub fn training_pairs(&self) -> Vec<(String, String)> {
        self.intents
            .iter()
            .flat_map(|intent| {
                intent
                    .examples
                    .iter()
                    .map(|text| (text.clone(), intent.name.clone()))
            })
            .collect()
    }

    /// The out-of-scope examples (empty when there is no `_out_of_scope.yaml`).
    pub fn out_of_scope_examples(&self) -> &[String] {
        self.out_of_scope
            .as_ref()
            .map(|oos| oos.examples.as_slice())
            .unwrap_or(&[])
    }

    /// sha256 (hex) of a canonical form of the definitions: independent of file order,
    /// file names and YAML formatting; different whenever a name, description, example,
    /// response, slot or action changes. A trained head is keyed by it.
    pub fn hash(&self) -> String {
        #[derive(Serialize)]
        struct Canonical<'a> {
            version: u32,
            intents: &'a [Intent],
            out_of_scope: &'a Option<OutOfScope>,
        }
        // `intents` is kept sorted by name; serde_json writes fields in declaration order.
        let canonical = Canonical {
            version: 1,
            intents: &self.intents,
            out_of_scope: &self.out_of_scope,
        };
        let bytes = serde_json::to_vec(&canonical).expect("intents serialise to JSON");
        hex::encode(Sha256::digest(&bytes))
    }
}

#[cfg(test)]
#[path = "intents_tests.rs"]
mod tests;
