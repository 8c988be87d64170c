//! The answer task: answering a customer from given passages and shop data, end to end
//! (mask, render, call, parse, unmask, guard), plainly or streamed word by word.

use super::answer::{self, Passage};
use super::client::{Llm, LlmError};
use super::guard::{self, Grounding, Proposal};
use super::pii::Masking;
use super::prompts::{as_data, data_text, PromptName, Prompts};
use async_openai::types::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, CreateChatCompletionRequest,
};
use futures::StreamExt;
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
        let request = self.answer_request(prompts, &input, &mut masking)?;
        let completion = self.complete(input.conversation_id, request).await?;
        self.checked(&completion.text, &input, &masking)
    }

    /// [`Llm::answer`], streamed: `on_draft` gets the answer's text so far, again and
    /// again as it grows, each time only after that text passed every guardrail (words are
    /// shown whole; the model must have named its sources and hand-off before it). A check
    /// that fails mid-stream ends the call with that refusal; the words already shown had
    /// passed. The whole reply is checked again at the end. A hand-off streams nothing.
    pub async fn answer_streaming(
        &self,
        prompts: &Prompts,
        input: AnswerInput<'_>,
        mut on_draft: impl FnMut(&str) + Send,
    ) -> Result<CheckedAnswer, LlmError> {
        let result = async {
            let mut masking = Masking::new();
            let request = self.answer_request(prompts, &input, &mut masking)?;
            let mut stream = self.stream(input.conversation_id, request).await?;
            let mut partial = answer::PartialAnswer::default();
            let mut shown = 0usize;
            let conversation = conversation_of(&input);
            let passage_ids: Vec<String> = input.passages.iter().map(|p| p.id.clone()).collect();
            let passage_text = passage_text_of(&input);
            while let Some(delta) = stream.next().await {
                partial.push(&delta?);
                let (Some((cited, handoff)), Some(text)) =
                    (partial.head(), partial.answer_so_far())
                else {
                    continue;
                };
                if handoff {
                    continue;
                }
                let visible = masking.unmask(answer::showable(&text));
                let visible = visible.trim();
                if visible.len() <= shown {
                    continue;
                }
                guard::check(
                    &Proposal {
                        text: visible,
                        cited: &cited,
                        handoff,
                    },
                    &self.grounding(&input, &conversation, &passage_ids, &passage_text),
                )
                .map_err(LlmError::Blocked)?;
                shown = visible.len();
                on_draft(visible);
            }
            self.checked(partial.text(), &input, &masking)
        }
        .await;
        if let Err(e) = &result {
            crate::metrics::llm_fallback(e.reason());
            tracing::info!(reason = e.reason(), error = %e, "streamed LLM answer not used");
        }
        result
    }

    /// The answer task's request: system and user prompt, the JSON schema of the answer.
    fn answer_request(
        &self,
        prompts: &Prompts,
        input: &AnswerInput<'_>,
        masking: &mut Masking,
    ) -> Result<CreateChatCompletionRequest, LlmError> {
        let (system, user) = render_answer(
            prompts,
            input,
            self.config().mask_personal_data.then_some(masking),
        )?;
        Ok(CreateChatCompletionRequest {
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
        })
    }

    /// What an answer may rest on for `input`.
    fn grounding<'a>(
        &'a self,
        input: &AnswerInput<'a>,
        conversation: &'a [String],
        passage_ids: &'a [String],
        passage_text: &'a str,
    ) -> Grounding<'a> {
        Grounding {
            conversation,
            shop_data: input.shop_data,
            passage_text,
            passage_ids,
            link_allow_list: &self.config().link_allow_list,
            max_chars: self.config().max_answer_chars,
        }
    }

    /// The model's whole reply, parsed, unmasked and passed through every guardrail.
    fn checked(
        &self,
        reply: &str,
        input: &AnswerInput<'_>,
        masking: &Masking,
    ) -> Result<CheckedAnswer, LlmError> {
        let proposed = answer::parse(reply)?;
        let text = masking.unmask(&proposed.answer);
        let conversation = conversation_of(input);
        let passage_ids: Vec<String> = input.passages.iter().map(|p| p.id.clone()).collect();
        let passage_text = passage_text_of(input);
        guard::check(
            &Proposal {
                text: &text,
                cited: &proposed.cited,
                handoff: proposed.handoff,
            },
            &self.grounding(input, &conversation, &passage_ids, &passage_text),
        )
        .map_err(LlmError::Blocked)?;
        Ok(CheckedAnswer {
            text: text.trim().to_string(),
            cited: proposed.cited,
            handoff: proposed.handoff,
        })
    }
}

/// The passages' texts, together.
fn passage_text_of(input: &AnswerInput<'_>) -> String {
    let texts: Vec<&str> = input.passages.iter().map(|p| p.text.as_str()).collect();
    texts.join("\n")
}

/// Every message of the conversation, the customer's latest included.
fn conversation_of(input: &AnswerInput<'_>) -> Vec<String> {
    let mut conversation: Vec<String> = input.history.iter().map(|l| l.text.clone()).collect();
    conversation.push(input.customer_message.to_string());
    conversation
}

/// The system and user prompts of the answer task. With `masking`, personal data in the
/// customer's texts and the shop data is replaced by placeholders first.
pub fn render_answer(
    prompts: &Prompts,
    input: &AnswerInput<'_>,
    mut masking: Option<&mut Masking>,
) -> Result<(String, String), LlmError> {
    let mut data = |text: &str| data_text(masking.as_deref_mut(), text);
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
