//! The answer task's structured output: the model must reply with exactly
//! `{"cited": [passage ids], "handoff": bool, "answer": string}`. Parsed strictly: a reply
//! in prose, with extra fields or with a field missing is an error, and a hand-off is only
//! ever read from `handoff`, never guessed from the words of the answer.
//!
//! The schema lists `cited` and `handoff` first, so a model that keeps the order commits to
//! its sources and its hand-off before it writes the answer: while it streams,
//! [`PartialAnswer`] can check each new word against those sources and show it at once.

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
                    "cited": {"type": "array", "items": {"type": "string"}},
                    "handoff": {"type": "boolean"},
                    "answer": {"type": "string"}
                },
                "required": ["cited", "handoff", "answer"],
                "additionalProperties": false
            })),
            strict: Some(true),
        },
    }
}

/// A streamed reply read as it grows: the head (`cited`, `handoff`) once both are complete
/// before the answer starts, and the answer's text decoded so far.
#[derive(Debug, Default)]
pub struct PartialAnswer {
    buf: String,
}

impl PartialAnswer {
    pub fn push(&mut self, delta: &str) {
        self.buf.push_str(delta);
    }

    /// Everything received so far.
    pub fn text(&self) -> &str {
        &self.buf
    }

    /// Where the answer's string value starts in the buffer (after its opening quote).
    fn answer_start(&self) -> Option<usize> {
        let re = partial_patterns();
        re.answer.find(&self.buf).map(|m| m.end())
    }

    /// `cited` and `handoff`, when both were complete before the answer began (a model
    /// that writes the answer first streams nothing: its reply is checked whole).
    pub fn head(&self) -> Option<(Vec<String>, bool)> {
        let start = self.answer_start()?;
        let head = &self.buf[..start];
        let re = partial_patterns();
        let cited = re.cited.captures(head)?.get(1)?.as_str();
        let cited: Vec<String> = serde_json::from_str(cited).ok()?;
        let handoff = re.handoff.captures(head)?.get(1)?.as_str() == "true";
        Some((cited, handoff))
    }

    /// The answer's text so far, JSON escapes decoded; an escape cut by the end of the
    /// buffer is left for the next delta. `None` before the answer starts.
    pub fn answer_so_far(&self) -> Option<String> {
        let start = self.answer_start()?;
        let mut out = String::new();
        let mut chars = self.buf[start..].chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => {
                    let rest: String = chars.clone().take(5).collect();
                    let Some(kind) = rest.chars().next() else {
                        break;
                    };
                    chars.next();
                    match kind {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => {}
                        'b' | 'f' => out.push(' '),
                        'u' => {
                            let hex: String = rest.chars().skip(1).take(4).collect();
                            if hex.len() < 4 {
                                break;
                            }
                            for _ in 0..4 {
                                chars.next();
                            }
                            match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                                Some(ch) => out.push(ch),
                                // a surrogate pair: shown whole once the reply is complete
                                None => out.push('\u{fffd}'),
                            }
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
        Some(out)
    }
}

struct PartialPatterns {
    answer: regex::Regex,
    cited: regex::Regex,
    handoff: regex::Regex,
}

fn partial_patterns() -> &'static PartialPatterns {
    static P: std::sync::OnceLock<PartialPatterns> = std::sync::OnceLock::new();
    P.get_or_init(|| PartialPatterns {
        answer: regex::Regex::new(r#""answer"\s*:\s*""#).expect("answer"),
        cited: regex::Regex::new(r#""cited"\s*:\s*(\[[^\]]*\])"#).expect("cited"),
        handoff: regex::Regex::new(r#""handoff"\s*:\s*(true|false)"#).expect("handoff"),
    })
}

/// The part of a growing answer that can be shown: up to its last whitespace (a word may
/// still grow), and never half of a `[email 1]`-style placeholder.
pub fn showable(text: &str) -> &str {
    let Some(end) = text.rfind(char::is_whitespace) else {
        return "";
    };
    let cut = &text[..end];
    match (cut.rfind('['), cut.rfind(']')) {
        (Some(open), close) if close.is_none_or(|c| c < open) => &cut[..open],
        _ => cut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_reply_is_read_as_it_grows() {
        let mut p = PartialAnswer::default();
        p.push(r#"{"cited": ["returns"], "hand"#);
        assert_eq!(p.head(), None);
        assert_eq!(p.answer_so_far(), None);
        p.push(r#"off": false, "answer": "Returns are \"free\" wi"#);
        assert_eq!(p.head(), Some((vec!["returns".to_string()], false)));
        assert_eq!(p.answer_so_far().unwrap(), "Returns are \"free\" wi");
        p.push(r#"thin 30 days.\u00e9\"#);
        assert_eq!(
            p.answer_so_far().unwrap(),
            "Returns are \"free\" within 30 days.é"
        );
        p.push(r#"n"}"#);
        assert_eq!(
            p.answer_so_far().unwrap(),
            "Returns are \"free\" within 30 days.é\n"
        );
        assert_eq!(parse(p.text()).unwrap().cited, vec!["returns".to_string()]);
    }

    #[test]
    fn an_answer_written_before_its_head_has_no_head() {
        let mut p = PartialAnswer::default();
        p.push(r#"{"answer": "Hello there", "cited": ["a"], "handoff": false}"#);
        assert_eq!(p.head(), None);
    }

    #[test]
    fn only_whole_words_and_placeholders_are_shown() {
        assert_eq!(showable("We sent it to [email"), "We sent it to");
        assert_eq!(showable("We sent it to [email 1"), "We sent it to ");
        assert_eq!(
            showable("We sent it to [email 1] yest"),
            "We sent it to [email 1]"
        );
        assert_eq!(showable("Hello"), "");
        assert_eq!(showable("Hello wor"), "Hello");
    }

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
            serde_json::json!(["cited", "handoff", "answer"])
        );
        assert_eq!(schema["additionalProperties"], false);
    }
}
