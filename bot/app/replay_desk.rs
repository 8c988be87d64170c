//! The desks `replay`, `eval escalation` and the what-if run recorded conversations on:
//! each on a temporary store, with the configured intents and shop and the rules given.

use std::path::Path;
use std::sync::Arc;

use super::{open_desk_with_help, AppError, Paths};
use crate::config::{Config, EngineConfig};
use crate::desk::{Desk, Understand};
use crate::policy::Rules;

/// A desk on a temporary store with the configured intents and shop, the given rules and
/// (as `serve` has it) the help centre.
pub fn temporary_desk(
    config: &Config,
    rules: Rules,
    nlu: Arc<dyn Understand>,
    help: Option<Arc<crate::kb::HelpCentre>>,
) -> Result<Desk, AppError> {
    let config = patient(config, Vec::new());
    let store = crate::store::temporary().map_err(AppError::Storage)?;
    open_desk_with_help(&config, store, nlu, Some(rules), help)
}

/// The rules to replay with: `path`, else the configured (or built-in) ones.
pub fn replay_rules(config: &Config, path: Option<&Path>) -> Result<Rules, AppError> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => Paths::resolve(config)?.rules,
    };
    Ok(Rules::load(&path)?)
}

/// What the console's what-if builds its desks with: `config`'s intents (or the side's
/// own), shop and help centre, the side's rules and NLU.
pub fn desk_maker(
    config: Config,
    help: Option<Arc<crate::kb::HelpCentre>>,
) -> crate::replay::whatif::DeskMaker {
    Arc::new(move |side| {
        let mut config = config.clone();
        if let Some(dir) = side.intents_dir {
            config.engine.intents_dir = Some(dir);
        }
        temporary_desk(&config, side.rules, side.nlu, help.clone()).map_err(|e| e.to_string())
    })
}

/// A desk for `replay::day` on a temporary store, with `team` as its agents (no password:
/// nobody logs in) and the given rules; returns the store too, which the simulation
/// rewrites into simulated time.
pub fn simulation_desk(
    config: &Config,
    rules: Rules,
    nlu: Arc<dyn Understand>,
    help: Option<Arc<crate::kb::HelpCentre>>,
    team: &[crate::replay::day::SimAgent],
) -> Result<(Desk, Arc<dyn crate::store::Store>), AppError> {
    let agents = team
        .iter()
        .map(|a| {
            serde_json::from_value(serde_json::json!({
                "name": a.name,
                "password_hash": "-",
                "capacity": a.capacity,
            }))
            .expect("a name, a capacity and a hash make an AgentConfig")
        })
        .collect::<Vec<crate::config::AgentConfig>>();
    let mut config = patient(config, agents);
    // The simulated customers answer the NPS question too.
    config.survey.nps = true;
    let store = crate::store::temporary().map_err(AppError::Storage)?;
    let desk = open_desk_with_help(&config, store.clone(), nlu, Some(rules), help)?;
    Ok((desk, store))
}

/// `config` with `agents`, for a desk that waits for the NLU rather than answering "busy"
/// (a replay or a simulation sends every message at once).
fn patient(config: &Config, agents: Vec<crate::config::AgentConfig>) -> Config {
    Config {
        agents,
        engine: EngineConfig {
            busy_wait_ms: 600_000,
            ..config.engine.clone()
        },
        ..config.clone()
    }
}
