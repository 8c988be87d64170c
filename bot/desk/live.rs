//! What the lead's cockpit swaps while the desk runs (`crate::cockpit`): the escalation
//! rules and the intents, each put in force whole for the next turn.

use std::sync::Arc;

use super::{Desk, Understand};
use crate::policy::Rules;

impl Desk {
    /// The understanding this desk reads messages with (the what-if replays with it).
    pub fn nlu(&self) -> Arc<dyn Understand> {
        self.inner.nlu.clone()
    }

    /// The escalation rules and queues in force now.
    pub fn rules(&self) -> Arc<Rules> {
        self.inner.rules()
    }

    /// Puts `rules` in force from the next turn on (a turn already running finishes on the
    /// rules it started with): the live reload of `rules.toml`.
    pub fn set_rules(&self, rules: Rules) {
        self.inner.set_rules(rules)
    }

    /// The intents whose answers are in force.
    pub fn intents(&self) -> Arc<crate::nlu::IntentSet> {
        self.inner.dialogue.intents()
    }

    /// Puts a new set of intents in force: the NLU's intent head first (trained in the
    /// background when new; the old one answers meanwhile), then their answers. A turn that
    /// started before reads the set it started with.
    pub async fn set_intents(
        &self,
        intents: crate::nlu::IntentSet,
    ) -> Result<(), crate::nlu::NluError> {
        self.inner.nlu.reload_intents(intents.clone()).await?;
        self.inner.dialogue.set_intents(intents);
        Ok(())
    }
}
