//! A question after a delay notice ("when will it arrive now?") is about the order the
//! notice named: answered with the shop's new date. What the notice proves is written in
//! `desk/notice.rs`: nothing. A conversation that may see the order gets the usual answer
//! with the new date; one that may not gets the notice's own words again (nothing the
//! notice did not say), and anything more about the order goes through the usual check.

use super::*;
use crate::desk::notice::{long_date, NoticeContext, CONTEXT_SLOT};

/// Words of a question about when a parcel comes.
const WHEN_WORDS: &[&str] = &[
    "when",
    "arrive",
    "arrives",
    "arriving",
    "date",
    "delivery",
    "deliver",
    "delivered",
    "come",
    "coming",
    "late",
    "delay",
    "delayed",
    "eta",
];

/// Whether `text` asks when something arrives ("when will it arrive now?", "new date?").
fn asks_when(text: &str) -> bool {
    let lower = text.to_lowercase();
    lower
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| WHEN_WORDS.contains(&w))
        || lower.contains("how long")
}

impl Dialogue {
    /// The answer to a question about the order of the conversation's latest delay notice,
    /// when the message is one; `None` leaves it to the intents.
    pub(super) async fn notice_follow_up(
        &self,
        intent: &str,
        analysis: &Analysis,
        record: &mut ConversationRecord,
    ) -> Option<Answer> {
        let context: NoticeContext = serde_json::from_str(record.slots.get(CONTEXT_SLOT)?).ok()?;
        let new_date = context.new_date?;
        if slot_value(analysis, "order_number").is_some_and(|n| n != context.order) {
            return None;
        }
        let status_intent = self.status_intent()?;
        let asks = intent == status_intent
            || intent == "delivery_period"
            || (intent == OUT_OF_SCOPE && asks_when(&analysis.text));
        if !asks {
            return None;
        }
        let order = context.order.clone();
        record.slots.insert("order_number".into(), order.clone());
        let date = long_date(new_date);
        let visible = match self.order(&order, &record.access).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "shop look-up failed");
                None
            }
        };
        let Some(visible) = visible else {
            // Only what the notice said; anything more is asked for, and checked, as usual
            // (no check is started here: "can I cancel it?" next is a request, not an answer).
            return Some(said(
                format!(
                    "As we wrote to you: order {order} should now arrive on {date}. I can tell \
                     you more about it, or change it, once I've checked it's yours: just ask."
                ),
                None,
            ));
        };
        let mut answer = self
            .answer_intent(&status_intent, analysis, record, false)
            .await;
        // The shop's own record may already carry the new date.
        if visible.shipment.as_ref().and_then(|s| s.eta) != Some(new_date) {
            answer.text = format!(
                "{} The shop's latest word: it should now arrive on {date}.",
                answer.text
            );
        }
        Some(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_questions_are_recognised() {
        assert!(asks_when("when will it arrive now?"));
        assert!(asks_when("So what's the new date"));
        assert!(asks_when("how long now?"));
        assert!(!asks_when("thanks"));
        assert!(!asks_when("can I pay by card"));
    }
}
