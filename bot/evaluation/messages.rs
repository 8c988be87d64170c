//! Labelled single messages as one-message conversations, so `eval escalation` scores them
//! through the full desk like any conversation: `data/stakes/*.tsv`
//! (`person|bot<TAB>kind<TAB>text`) and `data/frustration/*.tsv`
//! (`calm|frustrated|angry<TAB>text`: calm stays with the bot, the others go to a person).

use super::EvaluationError;
use crate::replay::Recorded;
use std::io::BufRead;
use std::path::Path;

/// Each line of a message file as its own labelled conversation (`m0001`, ...; `why` is
/// the kind, or the tone label).
pub fn read_message_set(path: &Path) -> Result<Vec<Recorded>, EvaluationError> {
    let read = |source| EvaluationError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut records = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(read)?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |what: &str| EvaluationError::Label {
            conversation: format!("{}:{}", path.display(), i + 1),
            message: format!(
                "{what}: expected `person|bot<TAB>kind<TAB>text` or \
                 `calm|frustrated|angry<TAB>text`"
            ),
        };
        let fields: Vec<&str> = line.splitn(3, '\t').collect();
        let (expected, why, text) = match fields.as_slice() {
            [label @ ("person" | "bot"), kind, text] => {
                let expected = if *label == "person" {
                    "escalate"
                } else {
                    "bot"
                };
                (expected, *kind, *text)
            }
            [tone @ ("calm" | "frustrated" | "angry"), text] => {
                let expected = if *tone == "calm" { "bot" } else { "escalate" };
                (expected, *tone, *text)
            }
            [label, ..] => return Err(bad(&format!("unknown label `{label}`"))),
            [] => return Err(bad("empty line")),
        };
        if text.trim().is_empty() {
            return Err(bad("no text"));
        }
        let conversation = format!("m{:04}", i + 1);
        records.push(Recorded {
            user_id: format!("u-{conversation}"),
            conversation,
            text: text.to_string(),
            profile: None,
            expected: Some(expected.to_string()),
            why: Some(why.to_string()),
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_message_formats_become_labelled_conversations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("set.tsv");
        std::fs::write(
            &path,
            "person\tsafety\tthe heater sparked\nbot\tsolved\tfound it, thanks\n\n\
             calm\twhere is 10002\nangry\tgive me my money\n",
        )
        .unwrap();
        let r = read_message_set(&path).unwrap();
        let got: Vec<(&str, &str, &str)> = r
            .iter()
            .map(|r| {
                (
                    r.expected.as_deref().unwrap(),
                    r.why.as_deref().unwrap(),
                    r.text.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("escalate", "safety", "the heater sparked"),
                ("bot", "solved", "found it, thanks"),
                ("bot", "calm", "where is 10002"),
                ("escalate", "angry", "give me my money"),
            ]
        );
        assert_eq!(
            super::super::labels_of(&r).unwrap().len(),
            4,
            "each line is its own conversation"
        );
        std::fs::write(&path, "maybe\tsafety\tx\n").unwrap();
        let e = read_message_set(&path).unwrap_err().to_string();
        assert!(
            e.contains("set.tsv:1") && e.contains("unknown label `maybe`"),
            "{e}"
        );
    }
}
