//! Reading one intent file: the YAML parsed, then checked (names, examples, slots,
//! answers), each problem named with its file and line. Split from `intents.rs`.

use std::collections::HashSet;
use std::path::Path;

use super::*;

pub(super) fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml") | Some("yml")
    )
}

pub(super) fn parse_intent(path: &Path, source: &str) -> Result<Intent, IntentError> {
    let mut intent: Intent = parse_yaml(path, source)?;
    let invalid = |line: Option<usize>, message: String| IntentError::Invalid {
        file: path.to_path_buf(),
        line,
        message,
    };
    intent.name = intent.name.trim().to_string();
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let name_line = find_line(source, "name:");
    if intent.name.is_empty() {
        return Err(invalid(
            name_line,
            "`name` is empty: give the intent a name equal to the file name".into(),
        ));
    }
    if intent.name == OUT_OF_SCOPE {
        return Err(invalid(
            name_line,
            format!("`{OUT_OF_SCOPE}` is reserved for messages no intent fits: put such examples in {OUT_OF_SCOPE_FILE}"),
        ));
    }
    if !is_snake_case(&intent.name) {
        return Err(invalid(
            name_line,
            format!(
                "intent name `{}` must be lower snake_case (letters, digits, _)",
                intent.name
            ),
        ));
    }
    if intent.name != stem {
        return Err(invalid(
            name_line,
            format!(
                "intent `{}` is in a file named `{stem}`: rename the file to `{}.yaml` or change `name`",
                intent.name, intent.name
            ),
        ));
    }
    intent.examples = check_examples(path, source, &intent.examples)?;
    check_response(path, source, &intent.response, true)?;
    if intent.examples.len() < RECOMMENDED_EXAMPLES {
        tracing::warn!(
            file = %path.display(),
            examples = intent.examples.len(),
            "intent `{}` has fewer than {RECOMMENDED_EXAMPLES} examples; add varied ones for better accuracy",
            intent.name
        );
    }
    Ok(intent)
}

pub(super) fn parse_out_of_scope(path: &Path, source: &str) -> Result<OutOfScope, IntentError> {
    let mut oos: OutOfScope = parse_yaml(path, source)?;
    oos.examples = check_examples(path, source, &oos.examples)?;
    check_response(path, source, &oos.response, false)?;
    Ok(oos)
}

pub(super) fn parse_yaml<T: serde::de::DeserializeOwned>(
    path: &Path,
    source: &str,
) -> Result<T, IntentError> {
    serde_yaml::from_str(source).map_err(|err| {
        let line = err.location().map(|loc| loc.line());
        let mut message = err.to_string();
        // serde_yaml appends " at line N column M"; the line is already in front.
        if let Some(cut) = message.find(" at line ") {
            message.truncate(cut);
        }
        IntentError::Invalid {
            file: path.to_path_buf(),
            line,
            message: format!("{message} (see intents/README.md for the fields an intent file has)"),
        }
    })
}

/// Trims the examples and rejects too few, empty or repeated ones.
pub(super) fn check_examples(
    path: &Path,
    source: &str,
    examples: &[String],
) -> Result<Vec<String>, IntentError> {
    let invalid = |line: Option<usize>, message: String| IntentError::Invalid {
        file: path.to_path_buf(),
        line,
        message,
    };
    let examples_line = find_line(source, "examples:");
    if examples.len() < MIN_EXAMPLES {
        return Err(invalid(
            examples_line,
            format!(
                "only {} examples: write at least {MIN_EXAMPLES} (better {RECOMMENDED_EXAMPLES} or more, varied)",
                examples.len()
            ),
        ));
    }
    if let Some(line) = comment_in_plain_item(source) {
        return Err(invalid(
            Some(line),
            "` #` starts a YAML comment, so the rest of this example would be lost: put the example in quotes".into(),
        ));
    }
    let mut seen = HashSet::new();
    let mut cleaned = Vec::with_capacity(examples.len());
    for example in examples {
        let text = example.trim();
        if text.is_empty() {
            return Err(invalid(
                find_line(source, "- \"\"").or(examples_line),
                "an example is empty: remove it".into(),
            ));
        }
        let key = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        if !seen.insert(key) {
            let line = find_example_line(source, text, 2).or(examples_line);
            return Err(invalid(
                line,
                format!("example `{text}` appears twice: remove one"),
            ));
        }
        cleaned.push(text.to_string());
    }
    Ok(cleaned)
}

pub(super) fn check_response(
    path: &Path,
    source: &str,
    response: &Response,
    slots_allowed: bool,
) -> Result<(), IntentError> {
    let invalid = |line: Option<usize>, message: String| IntentError::Invalid {
        file: path.to_path_buf(),
        line,
        message,
    };
    if response.text.trim().is_empty() {
        return Err(invalid(
            find_line(source, "text:"),
            "response `text` is empty: write what the bot answers".into(),
        ));
    }
    if !slots_allowed && (!response.slots.is_empty() || response.action.is_some()) {
        return Err(invalid(
            find_line(source, "slots:").or(find_line(source, "action:")),
            format!("{OUT_OF_SCOPE_FILE} answers with text only: remove `slots` and `action`"),
        ));
    }
    let mut slot_names = HashSet::new();
    for slot in &response.slots {
        let line = find_line(source, &slot.name);
        if !is_snake_case(&slot.name) {
            return Err(invalid(
                line,
                format!("slot name `{}` must be lower snake_case", slot.name),
            ));
        }
        if !slot_names.insert(slot.name.as_str()) {
            return Err(invalid(
                line,
                format!("slot `{}` is listed twice: keep one", slot.name),
            ));
        }
        if slot.prompt.trim().is_empty() {
            return Err(invalid(
                line,
                format!(
                    "slot `{}` has an empty `prompt`: write the question the bot asks",
                    slot.name
                ),
            ));
        }
    }
    if let Some(action) = &response.action {
        if !is_snake_case(action) {
            return Err(invalid(
                find_line(source, "action:"),
                format!("action `{action}` must be lower snake_case"),
            ));
        }
    }
    Ok(())
}

pub(super) fn is_snake_case(name: &str) -> bool {
    !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// 1-based line of the first unquoted list item that has ` #` in it (`- invoice #123`):
/// YAML reads the rest as a comment, which silently cuts the example short.
pub(super) fn comment_in_plain_item(source: &str) -> Option<usize> {
    source
        .lines()
        .position(|line| {
            let item = line.trim_start();
            item.strip_prefix("- ").is_some_and(|value| {
                let value = value.trim_start();
                !value.starts_with(['"', '\'', '#']) && value.contains(" #")
            })
        })
        .map(|index| index + 1)
}

/// 1-based number of the first line containing `needle`.
pub(super) fn find_line(source: &str, needle: &str) -> Option<usize> {
    find_nth_line(source, needle, 1)
}

/// 1-based number of the `nth` list item (`- ...`) containing `example` (case-insensitive).
pub(super) fn find_example_line(source: &str, example: &str, nth: usize) -> Option<usize> {
    let example = example.to_lowercase();
    source
        .lines()
        .enumerate()
        .filter(|(_, line)| {
            line.trim_start().starts_with('-') && line.to_lowercase().contains(&example)
        })
        .nth(nth.saturating_sub(1))
        .map(|(index, _)| index + 1)
}

/// 1-based number of the `nth` line containing `needle` (case-insensitive).
pub(super) fn find_nth_line(source: &str, needle: &str, nth: usize) -> Option<usize> {
    let needle = needle.to_lowercase();
    source
        .lines()
        .enumerate()
        .filter(|(_, line)| line.to_lowercase().contains(&needle))
        .nth(nth.saturating_sub(1))
        .map(|(index, _)| index + 1)
}
