//! What an LLM task may be told about a conversation, gathered in one place so every task
//! (answer, summary, suggested reply) sees the same, privacy-checked facts: the transcript,
//! the customer's name and tier, the shop's data on orders this conversation may see (never
//! another customer's), and the help centre's best passages for the latest question.

use crate::commerce::{money, Order};
use crate::kb::Hit;
use crate::llm::{CustomerFacts, Line, Passage, Speaker as LlmSpeaker};
use crate::message::Speaker;
use crate::store::{ConversationRecord, Customer};

use super::inner::Inner;

/// How many earlier messages a prompt carries.
pub const HISTORY: usize = 12;
/// How many passages a prompt carries.
pub const PASSAGES: usize = 3;

/// The facts of one conversation for an LLM task.
#[derive(Debug, Clone, Default)]
pub struct Grounding {
    /// Messages before the latest customer message, oldest first.
    pub history: Vec<Line>,
    /// The latest customer message ("" when the customer has not written).
    pub customer_message: String,
    pub customer: CustomerFacts,
    /// The shop's data on the orders this conversation may see, as text.
    pub shop_data: String,
    /// The order the conversation is about, when it may see it.
    pub order: Option<Order>,
    /// The help centre's best passages for the latest customer message, best first.
    pub hits: Vec<Hit>,
}

impl Grounding {
    /// The passages as the prompts cite them (id: the article).
    pub fn passages(&self) -> Vec<Passage> {
        self.hits
            .iter()
            .map(|h| Passage {
                id: h.article.clone(),
                text: passage_text(h),
            })
            .collect()
    }

    /// The best passage's score (0 without any).
    pub fn best_score(&self) -> f32 {
        self.hits.first().map_or(0.0, |h| h.score)
    }
}

/// A passage as the model reads it: title, section, text and link.
fn passage_text(h: &Hit) -> String {
    let heading = if h.section.is_empty() {
        h.title.clone()
    } else {
        format!("{} — {}", h.title, h.section)
    };
    format!("{heading}: {} (link: {})", h.passage, h.url)
}

/// Gathers the facts of `record` for an LLM task; `question` (the latest customer message
/// by default) is what the help centre is searched for. `unsaved`: the customer's message
/// of a turn not yet stored, the latest one.
pub(super) async fn gather(
    inner: &Inner,
    record: &ConversationRecord,
    customer: Option<&Customer>,
    question: Option<&str>,
    unsaved: Option<&str>,
) -> Result<Grounding, super::DeskError> {
    let mut lines: Vec<Line> = inner
        .store
        .recent_messages(&record.id, HISTORY + 1)
        .await?
        .into_iter()
        .map(line_of)
        .collect();
    let last_customer = lines.iter().rposition(|l| l.from == LlmSpeaker::Customer);
    let customer_message = match (unsaved, last_customer) {
        (Some(text), _) => text.to_string(),
        (None, Some(i)) if i + 1 == lines.len() => lines.pop().map(|l| l.text).unwrap_or_default(),
        (None, Some(i)) => lines[i].text.clone(),
        (None, None) => String::new(),
    };
    if lines.len() > HISTORY {
        lines.drain(..lines.len() - HISTORY);
    }
    let order = match record.slots.get("order_number") {
        Some(n) => match inner.dialogue.order(n, &record.access).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "order look-up for the LLM's shop data failed");
                None
            }
        },
        None => None,
    };
    let question = question.unwrap_or(&customer_message);
    let hits = match inner.dialogue.help() {
        Some(help) if !question.trim().is_empty() => help.search(question, PASSAGES).await,
        _ => Vec::new(),
    };
    Ok(Grounding {
        history: lines,
        customer_message,
        customer: CustomerFacts {
            name: customer.and_then(|c| c.name.clone()),
            tier: customer.and_then(|c| c.tier.clone()),
        },
        shop_data: order.as_ref().map(shop_text).unwrap_or_default(),
        order,
        hits,
    })
}

/// One order as the model reads it: number, state, placed, total, items, shipment, refund.
pub fn shop_text(o: &Order) -> String {
    let items: Vec<String> = o
        .items
        .iter()
        .map(|i| {
            format!(
                "{} x {} at {}",
                i.quantity,
                i.name,
                money(i.price, &o.currency)
            )
        })
        .collect();
    let mut text = format!(
        "Order {}: {}; placed {}; total {}; items: {}. {}",
        o.number,
        o.state.words(),
        o.placed_on,
        money(o.total, &o.currency),
        items.join(", "),
        o.status_detail()
    );
    if o.refund.is_none() {
        text.push_str(" Nothing has been paid back on this order.");
    }
    text
}

/// A stored message as the prompts show it.
pub(super) fn line_of(m: crate::store::StoredMessage) -> Line {
    Line {
        from: match m.from {
            Speaker::Customer => LlmSpeaker::Customer,
            Speaker::Bot => LlmSpeaker::Bot,
            Speaker::Agent(_) => LlmSpeaker::Agent,
        },
        text: m.text,
    }
}
