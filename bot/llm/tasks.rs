//! The tasks the desk can hand the LLM. Today: answering a customer from given passages and
//! shop data, end to end (mask, render, call, parse, unmask, guard). Summaries and agent
//! reply suggestions have their prompts but no task yet.

use super::answer::{self, Passage};
use super::client::{Llm, LlmError};
use super::guard::{self, Grounding, Proposal};
use super::pii::Masking;
use super::prompts::{as_data, PromptName, Prompts};
use async_openai::types::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, CreateChatCompletionRequest,
};
use serde::Serialize;

/// Who said a line of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    Customer,
    Bot,
    Agent,
}

/// One earlier line of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    pub from: Speaker,
    pub text: String,
}

/// What the prompts may say about the customer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CustomerFacts {
    pub name: Option<String>,
    pub tier: Option<String>,
}

/// Everything the answer task is given for one customer message.
#[derive(Debug, Clone, Copy)]
pub struct AnswerInput<'a> {
    /// Counts the tokens against this conversation's budget.
    pub conversation_id: &'a str,
    /// The conversation before the message.
    pub history: &'a [Line],
    pub customer_message: &'a str,
    pub customer: &'a CustomerFacts,
    /// The shop's data for this customer (their orders, totals, refunds), as text.
    pub shop_data: &'a str,
    pub passages: &'a [Passage],
}

/// An answer that passed every guardrail: safe to show the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedAnswer {
    pub text: String,
    pub cited: Vec<String>,
    /// The model asks for a person; the desk decides what to do with that.
    pub handoff: bool,
}

/// The values the templates see; every customer-written text already escaped as data.
#[derive(Debug, Serialize)]
struct PromptContext<'a> {
    passages: &'a [Passage],
    conversation: Vec<Line>,
    customer_message: String,
    customer: CustomerFacts,
    shop_data: String,
}

impl Llm {
    /// Answers a customer message, or says why not (each refusal counted by reason in
    /// `frontdesk_llm_fallbacks_total`, so the desk falls back to its own answer).
    pub async fn answer(
        &self,
        prompts: &Prompts,
        input: AnswerInput<'_>,
    ) -> Result<CheckedAnswer, LlmError> {
        let result = self.answer_unchecked(prompts, input).await;
        if let Err(e) = &result {
            crate::metrics::llm_fallback(e.reason());
            tracing::info!(reason = e.reason(), error = %e, "LLM answer not used");
        }
        result
    }

    async fn answer_unchecked(
        &self,
        prompts: &Prompts,
        input: AnswerInput<'_>,
    ) -> Result<CheckedAnswer, LlmError> {
        let mut masking = Masking::new();
        let (system, user) = render_answer(
            prompts,
            &input,
            self.config().mask_personal_data.then_some(&mut masking),
        )?;
        let request = CreateChatCompletionRequest {
            model: self.config().model.clone(),
            messages: vec![
                ChatCompletionRequestMessage::from(ChatCompletionRequestSystemMessage::from(
                    system.as_str(),
                )),
                ChatCompletionRequestMessage::from(ChatCompletionRequestUserMessage::from(
                    user.as_str(),
                )),
            ],
            response_format: Some(answer::response_format()),
            ..Default::default()
        };
        let completion = self.complete(input.conversation_id, request).await?;
        let proposed = answer::parse(&completion.text)?;
        let text = masking.unmask(&proposed.answer);
        let mut conversation: Vec<String> = input.history.iter().map(|l| l.text.clone()).collect();
        conversation.push(input.customer_message.to_string());
        let passage_ids: Vec<String> = input.passages.iter().map(|p| p.id.clone()).collect();
        guard::check(
            &Proposal {
                text: &text,
                cited: &proposed.cited,
                handoff: proposed.handoff,
            },
            &Grounding {
                conversation: &conversation,
                shop_data: input.shop_data,
                passage_ids: &passage_ids,
                link_allow_list: &self.config().link_allow_list,
                max_chars: self.config().max_answer_chars,
            },
        )
        .map_err(LlmError::Blocked)?;
        Ok(CheckedAnswer {
            text: text.trim().to_string(),
            cited: proposed.cited,
            handoff: proposed.handoff,
        })
    }
}

/// The system and user prompts of the answer task. With `masking`, personal data in the
/// customer's texts and the shop data is replaced by placeholders first.
pub fn render_answer(
    prompts: &Prompts,
    input: &AnswerInput<'_>,
    mut masking: Option<&mut Masking>,
) -> Result<(String, String), LlmError> {
    let mut data = |text: &str| {
        let text = match masking.as_deref_mut() {
            Some(m) => m.mask(text),
            None => text.to_string(),
        };
        as_data(&text)
    };
    let context = PromptContext {
        passages: input.passages,
        conversation: input
            .history
            .iter()
            .map(|l| Line {
                from: l.from,
                text: data(&l.text),
            })
            .collect(),
        customer_message: data(input.customer_message),
        customer: CustomerFacts {
            name: input.customer.name.as_deref().map(as_data),
            tier: input.customer.tier.as_deref().map(as_data),
        },
        shop_data: data(input.shop_data),
    };
    let system = prompts.render(PromptName::System, &context)?;
    let user = prompts.render(PromptName::Answer, &context)?;
    Ok((system, user))
}
