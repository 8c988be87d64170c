//! The [`Source`]s a server watches: the rules file and the intents folder (put in force
//! here: the rules for the next turn, the intents once their head is trained), and the
//! canned replies, the LLM prompts and the help centre, which reload themselves (see
//! `desk/assist/canned.rs`, `llm/prompts.rs`, `kb/`): for those the cockpit checks a change
//! the same way, keeps its versions and puts an old one back by writing it.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::source::{bundle, unbundle, write_bundle, write_whole, Problem, Source};
use crate::desk::Desk;
use crate::nlu::{IntentError, IntentSet};
use crate::policy::Rules;

/// The kinds, in the order the cockpit lists them.
pub const RULES: &str = "rules";
pub const INTENTS: &str = "intents";
pub const CANNED: &str = "canned";
pub const PROMPTS: &str = "prompts";
pub const HELP_CENTRE: &str = "help_centre";

/// `rules.toml`: escalation rules and queues.
pub struct RulesSource {
    pub path: PathBuf,
    /// Where they are put in force; `None`: checked only (the command line).
    pub desk: Option<Desk>,
}

#[async_trait]
impl Source for RulesSource {
    fn kind(&self) -> &'static str {
        RULES
    }
    fn place(&self) -> &Path {
        &self.path
    }
    fn read(&self) -> std::io::Result<String> {
        std::fs::read_to_string(&self.path)
    }
    fn check(&self, text: &str) -> Result<(), Problem> {
        self.parse(text).map(|_| ())
    }
    async fn put_in_force(&self, text: &str) -> Result<(), Problem> {
        let rules = self.parse(text)?;
        if let Some(desk) = &self.desk {
            desk.set_rules(rules);
        }
        Ok(())
    }
    fn write(&self, text: &str) -> std::io::Result<()> {
        write_whole(&self.path, text)
    }
}

impl RulesSource {
    fn parse(&self, text: &str) -> Result<Rules, Problem> {
        Rules::parse(text, &self.path)
            .map_err(|e| Problem::new(self.path.display().to_string(), e.line(text), e.reason()))
    }
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// The intents folder: one YAML file per intent (and `_out_of_scope.yaml`). A change is
/// put in force once the intent head for it is trained (or found in the models folder);
/// the head in force answers meanwhile.
pub struct IntentsSource {
    pub dir: PathBuf,
    pub desk: Option<Desk>,
}

impl IntentsSource {
    /// The intents of a folder text, checked as the loader checks a folder.
    pub fn parse(&self, text: &str) -> Result<IntentSet, Problem> {
        let files = unbundle(text, &self.dir)?;
        IntentSet::from_files(&self.dir, &files).map_err(|e| self.problem(&e))
    }

    fn problem(&self, e: &IntentError) -> Problem {
        let file = e
            .file()
            .map_or(self.dir.display().to_string(), |f| f.display().to_string());
        let reason = match e {
            IntentError::Invalid { message, .. } => message.clone(),
            other => other.to_string(),
        };
        Problem::new(file, e.line(), reason)
    }
}

#[async_trait]
impl Source for IntentsSource {
    fn kind(&self) -> &'static str {
        INTENTS
    }
    fn place(&self) -> &Path {
        &self.dir
    }
    fn read(&self) -> std::io::Result<String> {
        bundle(&self.dir, is_yaml)
    }
    fn check(&self, text: &str) -> Result<(), Problem> {
        self.parse(text).map(|_| ())
    }
    async fn put_in_force(&self, text: &str) -> Result<(), Problem> {
        let set = self.parse(text)?;
        if let Some(desk) = &self.desk {
            desk.set_intents(set).await.map_err(|e| {
                Problem::new(
                    self.dir.display().to_string(),
                    None,
                    format!("the intent head for this change could not be made: {e}"),
                )
            })?;
        }
        Ok(())
    }
    fn write(&self, text: &str) -> std::io::Result<()> {
        write_bundle(&self.dir, text, is_yaml)
    }
}

/// `assist.canned_replies`: the agents' canned replies (one TOML file).
pub struct CannedSource {
    pub path: PathBuf,
}

#[async_trait]
impl Source for CannedSource {
    fn kind(&self) -> &'static str {
        CANNED
    }
    fn place(&self) -> &Path {
        &self.path
    }
    fn read(&self) -> std::io::Result<String> {
        std::fs::read_to_string(&self.path)
    }
    fn check(&self, text: &str) -> Result<(), Problem> {
        let file = self.path.display().to_string();
        crate::desk::assist::canned::CannedReplies::parse(text, &file)
            .map(|_| ())
            .map_err(|e| Problem::new(file, e.line, e.message))
    }
    async fn put_in_force(&self, text: &str) -> Result<(), Problem> {
        // The replies read their file again when it changes.
        self.check(text)
    }
    fn write(&self, text: &str) -> std::io::Result<()> {
        write_whole(&self.path, text)
    }
}

fn is_markdown(name: &str) -> bool {
    name.ends_with(".md")
}

/// `llm.prompts_dir`: the LLM's prompt templates (minijinja, one `*.md` file each).
pub struct PromptsSource {
    pub dir: PathBuf,
}

#[async_trait]
impl Source for PromptsSource {
    fn kind(&self) -> &'static str {
        PROMPTS
    }
    fn place(&self) -> &Path {
        &self.dir
    }
    fn read(&self) -> std::io::Result<String> {
        bundle(&self.dir, is_markdown)
    }
    fn check(&self, text: &str) -> Result<(), Problem> {
        let mut env = minijinja::Environment::new();
        for (name, body) in unbundle(text, &self.dir)? {
            let file = self.dir.join(&name).display().to_string();
            env.add_template_owned(name, body)
                .map_err(|e| Problem::new(file, e.line(), e.to_string()))?;
        }
        Ok(())
    }
    async fn put_in_force(&self, text: &str) -> Result<(), Problem> {
        // The prompts read their files again when they change.
        self.check(text)
    }
    fn write(&self, text: &str) -> std::io::Result<()> {
        write_bundle(&self.dir, text, is_markdown)
    }
}

/// `kb.dir`: the help centre's articles (one markdown file each, `# Title` first).
pub struct HelpCentreSource {
    pub dir: PathBuf,
}

#[async_trait]
impl Source for HelpCentreSource {
    fn kind(&self) -> &'static str {
        HELP_CENTRE
    }
    fn place(&self) -> &Path {
        &self.dir
    }
    fn read(&self) -> std::io::Result<String> {
        bundle(&self.dir, is_markdown)
    }
    fn check(&self, text: &str) -> Result<(), Problem> {
        for (name, body) in unbundle(text, &self.dir)? {
            let id = name.trim_end_matches(".md");
            if id.eq_ignore_ascii_case("readme") {
                continue;
            }
            if crate::kb::articles::Article::parse(id, &body).is_none() {
                return Err(Problem::new(
                    self.dir.join(&name).display().to_string(),
                    Some(1),
                    "an article starts with its title as a `# Title` line",
                ));
            }
        }
        Ok(())
    }
    async fn put_in_force(&self, text: &str) -> Result<(), Problem> {
        // The help centre reads its folder again when an article changes.
        self.check(text)
    }
    fn write(&self, text: &str) -> std::io::Result<()> {
        write_bundle(&self.dir, text, is_markdown)
    }
}
