//! Where the intents, rules, demo shop, heads and caches are: the config's paths, the
//! built-in defaults for the rest.

use std::path::PathBuf;

use super::AppError;
use crate::config::Config;
use crate::defaults::{self, DefaultPaths};

/// The files every part reads, after the built-in defaults filled what the config leaves
/// unset.
#[derive(Debug, Clone)]
pub struct Paths {
    pub intents_dir: PathBuf,
    pub rules: PathBuf,
    pub demo_file: PathBuf,
    pub models_dir: PathBuf,
    pub validation_dir: PathBuf,
    pub cache_dir: PathBuf,
}

impl Paths {
    /// Fills what the config leaves unset with the built-in defaults (written once into
    /// the cache, see [`defaults::materialize`]).
    pub fn resolve(config: &Config) -> Result<Paths, AppError> {
        let cache_dir = config.nlu.cache();
        let built_in: DefaultPaths = defaults::materialize(&cache_dir)?;
        let or = |set: &Option<PathBuf>, default: &PathBuf| set.clone().unwrap_or(default.clone());
        Ok(Paths {
            intents_dir: or(&config.engine.intents_dir, &built_in.intents_dir),
            rules: or(&config.engine.rules, &built_in.rules),
            demo_file: or(&config.commerce.demo_file, &built_in.demo_shop),
            models_dir: or(&config.nlu.models_dir, &built_in.models_dir),
            // The shipped validation sets only match the shipped intents; with other
            // intents the trainer notices and keeps its default threshold.
            validation_dir: built_in.validation_dir,
            cache_dir,
        })
    }
}
