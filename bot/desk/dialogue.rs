//! Routine answers: the response of each intent in `intents/`, with slots. An intent that
//! needs an order number asks for it, remembers it across turns, then looks the order up
//! through `Commerce` and answers with its real state.

use super::copy;
use crate::commerce::{Commerce, CommerceError, Order, RequestOutcome};
use crate::nlu::{Analysis, EntityKind, OUT_OF_SCOPE};
use crate::nlu::{IntentError, IntentSet, Response};
use crate::store::PendingSlot;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The intent taken as "the customer asks for a person".
pub const HUMAN_REQUEST: &str = "contact_human_agent";

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

/// The answers of one intents folder, bound to a shop.
pub struct Dialogue {
    intents: IntentSet,
    commerce: Arc<dyn Commerce>,
}

impl Dialogue {
    pub fn load(intents_dir: &Path, commerce: Arc<dyn Commerce>) -> Result<Dialogue, IntentError> {
        Ok(Dialogue::new(IntentSet::load_dir(intents_dir)?, commerce))
    }

    pub fn new(intents: IntentSet, commerce: Arc<dyn Commerce>) -> Dialogue {
        Dialogue { intents, commerce }
    }

    pub fn commerce(&self) -> &Arc<dyn Commerce> {
        &self.commerce
    }

    fn response(&self, intent: &str) -> Option<&Response> {
        self.intents.get(intent).map(|i| &i.response)
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
            if !own_slots && slot_value(analysis, &p.slot).is_some() {
                return p.intent.clone();
            }
        }
        if offered_human && is_affirmative(&analysis.text) {
            return HUMAN_REQUEST.to_string();
        }
        analysis.intent.clone()
    }

    /// Answers `intent`, filling `slots` from this message first and remembering them.
    pub async fn answer(
        &self,
        intent: &str,
        analysis: &Analysis,
        slots: &mut BTreeMap<String, String>,
    ) -> Answer {
        if intent == OUT_OF_SCOPE {
            let text = self
                .intents
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
        for slot in &response.slots {
            if let Some(v) = slot_value(analysis, &slot.name) {
                slots.insert(slot.name.clone(), v);
            }
        }
        if let Some(missing) = response.slots.iter().find(|s| !slots.contains_key(&s.name)) {
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
        match self.act(response, slots).await {
            Ok(Acted::Fill(values)) => Answer {
                text: render(&response.text, slots, &values),
                resolved: true,
                pending: None,
                offered_human: false,
            },
            Ok(Acted::Say(text)) => Answer {
                text,
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

    /// The order the conversation is about, for the order-value rule.
    pub async fn order(&self, number: &str) -> Result<Option<Order>, CommerceError> {
        self.commerce.order(number).await
    }

    async fn act(
        &self,
        response: &Response,
        slots: &BTreeMap<String, String>,
    ) -> Result<Acted, CommerceError> {
        let Some(action) = response.action.as_deref() else {
            return Ok(Acted::Fill(BTreeMap::new()));
        };
        let number = slots.get("order_number").cloned().unwrap_or_default();
        let values = |status: String, detail: String| {
            Acted::Fill(BTreeMap::from([
                ("status".to_string(), status),
                ("detail".to_string(), detail),
            ]))
        };
        Ok(match action {
            "order_status" => match self.commerce.order(&number).await? {
                Some(o) => values(o.state.words().into(), o.status_detail()),
                None => Acted::UnknownOrder(number),
            },
            "refund_status" => match self.commerce.order(&number).await? {
                Some(o) => {
                    let (status, detail) = o.refund_detail();
                    values(status, detail)
                }
                None => Acted::UnknownOrder(number),
            },
            "refund_request" => match self.commerce.request_refund(&number).await? {
                Some(RequestOutcome::Accepted { order }) => values(
                    order.state.words().into(),
                    copy::refund_covers(order.total, &order.currency),
                ),
                Some(RequestOutcome::Refused { why }) => {
                    Acted::Say(copy::shop_refused(&number, &why))
                }
                None => Acted::UnknownOrder(number),
            },
            "cancel_order" => match self.commerce.cancel_order(&number).await? {
                Some(RequestOutcome::Accepted { .. }) => {
                    values("cancelled".into(), copy::order_cancelled())
                }
                Some(RequestOutcome::Refused { why }) => {
                    Acted::Say(copy::shop_refused(&number, &why))
                }
                None => Acted::UnknownOrder(number),
            },
            other => {
                tracing::debug!(action = other, "action needs no shop call");
                Acted::Fill(BTreeMap::new())
            }
        })
    }
}

enum Acted {
    /// Fill the intent's text with these values (and the slots).
    Fill(BTreeMap<String, String>),
    /// Say this instead of the intent's text (the shop refused).
    Say(String),
    UnknownOrder(String),
}

/// The value this message gives for `slot`: an entity of the slot's kind, or for an order
/// number a bare number of 4 to 12 digits.
pub fn slot_value(analysis: &Analysis, slot: &str) -> Option<String> {
    let kind = match slot {
        "order_number" => EntityKind::OrderNumber,
        "email" => EntityKind::Email,
        "amount" => EntityKind::Money,
        "date" => EntityKind::Date,
        _ => return None,
    };
    if let Some(e) = analysis.entities.iter().find(|e| e.kind == kind) {
        return Some(e.value.clone());
    }
    if kind == EntityKind::OrderNumber {
        return analysis
            .text
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| (4..=12).contains(&w.len()))
            .map(str::to_string);
    }
    None
}

/// "yes", "sure, please", "ok go ahead": a short agreement.
pub fn is_affirmative(text: &str) -> bool {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    const YES: &[&str] = &[
        "yes",
        "yeah",
        "yep",
        "yup",
        "sure",
        "ok",
        "okay",
        "please",
        "y",
        "definitely",
        "absolutely",
    ];
    !words.is_empty() && words.len() <= 6 && YES.contains(&words[0]) && !words.contains(&"not")
}

/// Replaces `{name}` with slot or action values; unknown placeholders are dropped.
pub fn render(
    template: &str,
    slots: &BTreeMap<String, String>,
    values: &BTreeMap<String, String>,
) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                if let Some(v) = slots.get(name).or_else(|| values.get(name)) {
                    out.push_str(v);
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    // A dropped placeholder can leave doubled spaces or a space before a full stop.
    let mut cleaned = out.split_whitespace().collect::<Vec<_>>().join(" ");
    while cleaned.contains(" .") {
        cleaned = cleaned.replace(" .", ".");
    }
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_slots_and_values() {
        let slots = BTreeMap::from([("order_number".to_string(), "10001".to_string())]);
        let values = BTreeMap::from([
            ("status".to_string(), "on its way".to_string()),
            ("detail".to_string(), "It left on Monday.".to_string()),
        ]);
        assert_eq!(
            render(
                "Order {order_number} is {status}. {detail}",
                &slots,
                &values
            ),
            "Order 10001 is on its way. It left on Monday."
        );
    }

    #[test]
    fn render_drops_unknown_placeholders_cleanly() {
        let none = BTreeMap::new();
        assert_eq!(render("Done {detail}.", &none, &none), "Done.");
    }

    #[test]
    fn short_agreement_is_affirmative() {
        assert!(is_affirmative("yes please"));
        assert!(is_affirmative("Sure!"));
        assert!(!is_affirmative("no thanks"));
        assert!(!is_affirmative(
            "yes I do not want that at all, just tell me"
        ));
    }
}
