//! Routine answers: the response of each intent in `intents/`, with slots. An intent that
//! needs an order number asks for it, remembers it across turns, then looks the order up
//! through `Commerce` and answers with its real state.

//!
//! Orders are private. The shop is asked as the conversation's [`Caller`]: its verified
//! shop customer (a shop-signed token) and the orders the bot's own check covered. About
//! any other order the bot says nothing, not even whether it exists: it asks for the email
//! address or postcode on the order (checked by the shop, [`MAX_CHECKS`] tries per
//! conversation, then a person), and asks the very same for a missing order. Cancelling or
//! refunding is restated first and done only on a yes, with an idempotency key, so a
//! question ("can I still cancel...?") or a repeated yes never acts (twice).

mod notice;
mod orders;
mod words;
use super::copy;
use crate::commerce::{Caller, Commerce, CommerceError, Order, RequestOutcome};
use crate::kb::HelpCentre;
use crate::nlu::{Analysis, OUT_OF_SCOPE};
use crate::nlu::{IntentError, IntentSet, Response};
use crate::store::{
    Access, ConversationRecord, IdentityLevel, PendingAction, PendingCheck, PendingSlot,
};
pub use orders::CheckVerdict;
use orders::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
pub use words::*;

/// The intent taken as "the customer asks for a person".
pub const HUMAN_REQUEST: &str = "contact_human_agent";

/// The pending "slot" while the bot waits for the email or postcode of an order.
pub const CHECK_SLOT: &str = "order_check";
/// The pending "slot" while the bot waits for a yes to an action it restated.
pub const CONFIRM_SLOT: &str = "confirmation";
/// Wrong answers to the bot's check allowed per conversation; then a person is offered.
pub const MAX_CHECKS: u32 = 3;

/// Actions that change an order: restated and done only on a yes.
const CONFIRMED_ACTIONS: &[&str] = &["cancel_order", "refund_request"];
/// Actions that read or change an order: only for the order's owner.
const ORDER_ACTIONS: &[&str] = &[
    "order_status",
    "refund_status",
    "cancel_order",
    "refund_request",
];

/// The shop caller of a conversation: its verified customer and checked orders.
pub fn caller(access: &Access) -> Caller {
    Caller {
        customer_id: access.shop_customer_id.clone(),
        verified_orders: access.verified_orders.clone(),
    }
}

/// A customer the shop vouches for (`Customer::shop_customer_id`, set only from a trusted
/// profile) makes the conversation verified as that shop customer.
pub fn trust(record: &mut ConversationRecord, shop_customer_id: Option<&str>) {
    let Some(id) = shop_customer_id else { return };
    let access = &mut record.access;
    if access.shop_customer_id.as_deref() != Some(id) {
        access.shop_customer_id = Some(id.to_string());
        if access.level == IdentityLevel::Anonymous {
            access.level = IdentityLevel::Verified;
        }
    }
}

/// What the bot says to one turn, and what it leaves behind for the next.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub text: String,
    /// False when the bot could not do what was asked (out of scope, unknown order...).
    pub resolved: bool,
    /// The slot the bot just asked for.
    pub pending: Option<PendingSlot>,
    /// The bot offered a human; a "yes" next turn takes it up.
    pub offered_human: bool,
}

/// The answers of one intents folder, bound to a shop (and, when given, a help centre
/// quoted for questions outside the intents).
pub struct Dialogue {
    /// The intents in force; a reload swaps them whole (a turn reads one set).
    intents: std::sync::RwLock<Arc<IntentSet>>,
    commerce: Arc<dyn Commerce>,
    help: Option<Arc<HelpCentre>>,
    /// Where wrong order checks are counted across conversations (the desk's store); without
    /// one, only the per-conversation limit holds.
    ledger: Option<Arc<dyn crate::store::Store>>,
}

impl Dialogue {
    pub fn load(intents_dir: &Path, commerce: Arc<dyn Commerce>) -> Result<Dialogue, IntentError> {
        Ok(Dialogue::new(IntentSet::load_dir(intents_dir)?, commerce))
    }

    pub fn new(intents: IntentSet, commerce: Arc<dyn Commerce>) -> Dialogue {
        Dialogue {
            intents: std::sync::RwLock::new(Arc::new(intents)),
            commerce,
            help: None,
            ledger: None,
        }
    }

    /// Counts wrong order checks in `store`, per order and per shop customer, whatever
    /// conversation or address they come from (see [`ORDER_CHECK_FAILURES`]).
    pub fn with_ledger(mut self, store: Arc<dyn crate::store::Store>) -> Dialogue {
        self.ledger = Some(store);
        self
    }

    /// Out-of-scope questions are first looked up in `help`: a confident passage is the
    /// answer (with its article's title and link).
    pub fn with_help_centre(mut self, help: Option<Arc<HelpCentre>>) -> Dialogue {
        self.help = help;
        self
    }

    /// The help centre, when one is configured.
    pub fn help(&self) -> Option<&Arc<HelpCentre>> {
        self.help.as_ref()
    }

    pub fn commerce(&self) -> &Arc<dyn Commerce> {
        &self.commerce
    }

    /// The intents in force.
    pub fn intents(&self) -> Arc<IntentSet> {
        self.intents.read().expect("intents lock").clone()
    }

    /// Puts `intents` in force from the next answer on: the live reload of the intents.
    pub fn set_intents(&self, intents: IntentSet) {
        *self.intents.write().expect("intents lock") = Arc::new(intents);
    }

    fn response(&self, intent: &str) -> Option<Response> {
        self.intents().get(intent).map(|i| i.response.clone())
    }

    /// The intent this turn is about. A message that gives the slot the bot asked for
    /// continues that intent; a "yes" to the offer of a human is a request for one.
    pub fn effective_intent(
        &self,
        analysis: &Analysis,
        pending: Option<&PendingSlot>,
        offered_human: bool,
    ) -> String {
        let own_slots = self
            .response(&analysis.intent)
            .is_some_and(|r| !r.slots.is_empty());
        if let Some(p) = pending {
            // While checking who they are, the message is the answer (unless they ask for
            // a person); while waiting for a yes, a yes belongs to the action restated.
            if p.slot == CHECK_SLOT
                && (analysis.intent != HUMAN_REQUEST || looks_like_check_answer(&analysis.text))
            {
                return p.intent.clone();
            }
            if p.slot == CONFIRM_SLOT && is_affirmative(&analysis.text) {
                return p.intent.clone();
            }
            if !own_slots && slot_value(analysis, &p.slot).is_some() {
                return p.intent.clone();
            }
        }
        if offered_human && is_affirmative(&analysis.text) {
            return HUMAN_REQUEST.to_string();
        }
        // "order 10014", "and 10040": a bare order number asks after that order
        if analysis.intent == OUT_OF_SCOPE && is_bare_order_number(analysis) {
            if let Some(status) = self.status_intent() {
                return status;
            }
        }
        analysis.intent.clone()
    }

    /// The intent whose answer is an order's status (action `order_status`), if any.
    fn status_intent(&self) -> Option<String> {
        self.intents()
            .intents
            .iter()
            .find(|i| i.response.action.as_deref() == Some("order_status"))
            .map(|i| i.name.clone())
    }

    /// Answers `intent` in the conversation `record`: a yes to a restated action does it,
    /// an answer to the bot's check is checked, anything else is answered from the
    /// intents, filling the slots from this message first and remembering them.
    pub async fn answer(
        &self,
        intent: &str,
        analysis: &Analysis,
        record: &mut ConversationRecord,
    ) -> Answer {
        let waiting = record.pending.as_ref().map(|p| p.slot.clone());
        let waiting = waiting.as_deref();
        let action = record.access.pending_action.take();
        let check = record.access.checking.take();
        if let Some(action) = action.filter(|_| waiting == Some(CONFIRM_SLOT)) {
            if intent == action.intent && is_affirmative(&analysis.text) {
                return self.perform(&action, record).await;
            }
            let dropped = copy::action_dropped(&action.action, &action.order);
            // "no", "don't cancel it": nothing more. Another request (another order, or
            // another question) is answered after saying so.
            let other_order =
                slot_value(analysis, "order_number").is_some_and(|n| n != action.order);
            if intent == OUT_OF_SCOPE || (intent == action.intent && !other_order) {
                return said(dropped, None);
            }
            let mut next = self.answer_intent(intent, analysis, record, true).await;
            next.text = format!("{dropped} {}", next.text);
            return next;
        }
        if let Some(check) = check.filter(|c| waiting == Some(CHECK_SLOT) && intent == c.intent) {
            return self.check(check, analysis, record).await;
        }
        if let Some(answer) = self.notice_follow_up(intent, analysis, record).await {
            return answer;
        }
        self.answer_intent(intent, analysis, record, true).await
    }

    /// Answers `intent` from the intents; `fill`: take slot values from this message.
    async fn answer_intent(
        &self,
        intent: &str,
        analysis: &Analysis,
        record: &mut ConversationRecord,
        fill: bool,
    ) -> Answer {
        if intent == OUT_OF_SCOPE {
            if let Some(help) = &self.help {
                if let Some(hit) = help.answer(&analysis.text).await {
                    return said(hit.answer_text(), None);
                }
            }
            let text = self
                .intents()
                .out_of_scope
                .as_ref()
                .map(|o| o.response.text.clone())
                .unwrap_or_else(copy::out_of_scope);
            return Answer {
                text,
                resolved: false,
                pending: None,
                offered_human: true,
            };
        }
        let Some(response) = self.response(intent) else {
            tracing::warn!(intent, "no response defined for intent");
            return Answer {
                text: copy::generic_help(),
                resolved: false,
                pending: None,
                offered_human: false,
            };
        };
        if fill {
            for slot in &response.slots {
                if let Some(v) = slot_value(analysis, &slot.name) {
                    record.slots.insert(slot.name.clone(), v);
                }
            }
        }
        if let Some(missing) = response
            .slots
            .iter()
            .find(|s| !record.slots.contains_key(&s.name))
        {
            return Answer {
                text: missing.prompt.clone(),
                resolved: true,
                pending: Some(PendingSlot {
                    intent: intent.to_string(),
                    slot: missing.name.clone(),
                }),
                offered_human: false,
            };
        }
        let action = response.action.as_deref().unwrap_or_default();
        if ORDER_ACTIONS.contains(&action) {
            let number = record
                .slots
                .get("order_number")
                .cloned()
                .unwrap_or_default();
            let order = match self.owned_order(intent, &number, record).await {
                Ok(Owned::Yes(order)) => order,
                Ok(Owned::Ask(answer)) => return answer,
                Err(e) => {
                    tracing::warn!(intent, error = %e, "shop look-up failed");
                    return offer_person(copy::shop_unreachable());
                }
            };
            if CONFIRMED_ACTIONS.contains(&action) {
                return self.confirm(intent, action, &order, analysis, record);
            }
        }
        let slots = &mut record.slots;
        match self.act(&response, slots, &record.access).await {
            Ok(Acted::Fill(values)) => Answer {
                text: render(&response.text, slots, &values),
                resolved: true,
                pending: None,
                offered_human: false,
            },
            Ok(Acted::UnknownOrder(number)) => {
                slots.remove("order_number");
                Answer {
                    text: copy::unknown_order(&number),
                    resolved: false,
                    pending: Some(PendingSlot {
                        intent: intent.to_string(),
                        slot: "order_number".into(),
                    }),
                    offered_human: false,
                }
            }
            Err(e) => {
                tracing::warn!(intent, error = %e, "shop look-up failed");
                Answer {
                    text: copy::shop_unreachable(),
                    resolved: false,
                    pending: None,
                    offered_human: true,
                }
            }
        }
    }
}

fn values(status: String, detail: String) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("status".to_string(), status),
        ("detail".to_string(), detail),
    ])
}

/// A resolved answer.
fn said(text: String, pending: Option<PendingSlot>) -> Answer {
    Answer {
        text,
        resolved: true,
        pending,
        offered_human: false,
    }
}

/// An answer that offers a person (a yes next turn takes it up).
fn offer_person(text: String) -> Answer {
    Answer {
        text,
        resolved: false,
        pending: None,
        offered_human: true,
    }
}

#[cfg(test)]
mod tests;
