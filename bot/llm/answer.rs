//! The answer task's structured output: the model must reply with exactly
//! `{"answer": string, "cited": [passage ids], "handoff": bool}`. Parsed strictly: a reply
//! in prose, with extra fields or with a field missing is an error, and a hand-off is only
//! ever read from `handoff`, never guessed from the words of the answer.

use async_openai::types::{ResponseFormat, ResponseFormatJsonSchema};
use serde::{Deserialize, Serialize};

/// What the model proposes; shown to nobody before the guardrails passed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposedAnswer {
    pub answer: String,
    pub cited: Vec<String>,
    pub handoff: bool,
}

/// A passage of the shop's help texts given to the model, cited by `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passage {
    pub id: String,
    pub text: String,
}

/// The reply was not the JSON object asked for.
#[derive(Debug, thiserror::Error)]
#[error("the model's reply is not the answer object: {0}")]
pub struct MalformedAnswer(String);

/// Parses the model's reply: one JSON object with exactly the three fields, nothing around
/// it but whitespace.
pub fn parse(reply: &str) -> Result<ProposedAnswer, MalformedAnswer> {
    serde_json::from_str(reply.trim()).map_err(|e| MalformedAnswer(e.to_string()))
}

/// The JSON schema of [`ProposedAnswer`], as `response_format` sends it (strict mode, so a
/// server that supports structured output can only produce this shape).
pub fn response_format() -> ResponseFormat {
    ResponseFormat::JsonSchema {
        json_schema: ResponseFormatJsonSchema {
            description: Some("A support answer with the passages it rests on".into()),
            name: "support_answer".into(),
            schema: Some(serde_json::json!({
                "type": "object",
                "properties": {
                    "answer": {"type": "string"},
                    "cited": {"type": "array", "items": {"type": "string"}},
                    "handoff": {"type": "boolean"}
                },
                "required": ["answer", "cited", "handoff"],
                "additionalProperties": false
            })),
            strict: Some(true),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_reply_parses() {
        let a = parse(r#" {"answer": "Hi", "cited": ["p1"], "handoff": false} "#).unwrap();
        assert_eq!(
            a,
            ProposedAnswer {
                answer: "Hi".into(),
                cited: vec!["p1".into()],
                handoff: false
            }
        );
    }

    #[test]
    fn prose_extra_fields_and_missing_fields_are_refused() {
        for reply in [
            "Sure! I will hand you to a human.",
            r#"Here you go: {"answer": "Hi", "cited": [], "handoff": false}"#,
            r#"{"answer": "Hi", "cited": [], "handoff": false, "mood": "happy"}"#,
            r#"{"answer": "Hi", "cited": []}"#,
            r#"{"answer": "Hi", "cited": [], "handoff": "yes"}"#,
            "```json\n{\"answer\": \"Hi\", \"cited\": [], \"handoff\": false}\n```",
        ] {
            assert!(parse(reply).is_err(), "accepted: {reply}");
        }
    }

    #[test]
    fn the_schema_requires_every_field() {
        let ResponseFormat::JsonSchema { json_schema } = response_format() else {
            panic!("not a schema");
        };
        let schema = json_schema.schema.unwrap();
        assert_eq!(
            schema["required"],
            serde_json::json!(["answer", "cited", "handoff"])
        );
        assert_eq!(schema["additionalProperties"], false);
    }
}
