//! The lead's cockpit of a server: which sources it watches (`crate::cockpit`).

use std::sync::Arc;

use tokio::sync::watch;

use super::{AppError, Paths};
use crate::config::Config;
use crate::desk::Desk;
use crate::store::Store;

/// Watches the rules and the intents (the built-in copies when the config names none) and
/// the canned replies, prompts and help centre the config names.
pub(super) async fn start(
    config: &Config,
    desk: &Desk,
    store: Arc<dyn Store>,
    stopping: watch::Receiver<bool>,
) -> Result<crate::cockpit::Cockpit, AppError> {
    use crate::cockpit::{self as c, Source};
    let paths = Paths::resolve(config)?;
    let mut sources: Vec<Arc<dyn Source>> = vec![
        Arc::new(c::RulesSource {
            path: paths.rules,
            desk: Some(desk.clone()),
        }),
        Arc::new(c::IntentsSource {
            dir: paths.intents_dir,
            desk: Some(desk.clone()),
        }),
    ];
    let mut built_in = Vec::new();
    if config.engine.rules.is_none() {
        built_in.push(c::RULES);
    }
    if config.engine.intents_dir.is_none() {
        built_in.push(c::INTENTS);
    }
    if let Some(path) = &config.assist.canned_replies {
        sources.push(Arc::new(c::CannedSource { path: path.clone() }));
    }
    if let Some(dir) = &config.llm.prompts_dir {
        sources.push(Arc::new(c::PromptsSource { dir: dir.clone() }));
    }
    if let Some(dir) = config.kb.dir.as_ref().filter(|_| config.kb.enabled) {
        sources.push(Arc::new(c::HelpCentreSource { dir: dir.clone() }));
    }
    Ok(c::Cockpit::start(sources, built_in, store, stopping).await?)
}
