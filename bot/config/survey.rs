//! `[survey]`: the satisfaction questions a customer is asked after an agent closes their
//! conversation (CSAT 1-5, then, when switched on, NPS 0-10), the one reminder, and the
//! texts, with overrides per queue (`[survey.queues.NAME]`). Checked as it is read: an error
//! names its key.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest survey text, in characters (one chat message, well below every platform's limit).
pub const MAX_SURVEY_TEXT: usize = 500;
/// Longest label of the button that declines a survey (Discord allows 80).
pub const MAX_SKIP_LABEL: usize = 40;
/// The latest a reminder may come: a week.
pub const MAX_REMINDER_MINS: u64 = 7 * 24 * 60;

/// The survey after a close.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawSurvey")]
pub struct SurveyConfig {
    /// Ask the 1-5 rating when an agent closes a conversation (never after a block).
    pub csat: bool,
    /// After a CSAT answer, ask the 0-10 "would you recommend us" question too.
    pub nps: bool,
    /// One reminder this many minutes after an unanswered question; 0: none.
    pub reminder_after_mins: u64,
    /// What the customer reads (every queue's unless it has its own).
    pub texts: SurveyTexts,
    /// Texts of one queue (the queue the conversation last waited in): only those given.
    pub queues: BTreeMap<String, QueueTexts>,
}

/// Every text a survey shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SurveyTexts {
    /// The CSAT question (it should say how to answer: REST customers type the number).
    pub csat: String,
    /// The NPS question.
    pub nps: String,
    /// The line above the question when it is asked again.
    pub reminder: String,
    /// After a rating.
    pub thanks: String,
    /// After the customer declined.
    pub skipped: String,
    /// The label of the button that declines.
    pub skip: String,
}

/// A queue's own texts; a missing one is the section's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueTexts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csat: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nps: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thanks: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<String>,
}

impl Default for SurveyConfig {
    fn default() -> Self {
        SurveyConfig {
            csat: true,
            nps: false,
            reminder_after_mins: 60,
            texts: SurveyTexts::default(),
            queues: BTreeMap::new(),
        }
    }
}

impl Default for SurveyTexts {
    fn default() -> Self {
        SurveyTexts {
            csat: "How would you rate the help you got today? Answer 1 (poor) to 5 \
                   (excellent), or skip."
                .into(),
            nps: "How likely are you to recommend us to a friend? Answer 0 (not at all) to 10 \
                  (very likely), or skip."
                .into(),
            reminder: "A quick reminder, in case you missed it:".into(),
            thanks: "Thank you for your rating!".into(),
            skipped: "No problem. Thank you for contacting us.".into(),
            skip: "Skip".into(),
        }
    }
}

/// Which text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurveyText {
    Csat,
    Nps,
    Reminder,
    Thanks,
    Skipped,
    Skip,
}

impl SurveyConfig {
    /// Text `which` for a conversation of `queue` (its own, else the section's).
    pub fn text(&self, queue: Option<&str>, which: SurveyText) -> &str {
        let own = queue.and_then(|q| self.queues.get(q)).and_then(|t| {
            match which {
                SurveyText::Csat => &t.csat,
                SurveyText::Nps => &t.nps,
                SurveyText::Reminder => &t.reminder,
                SurveyText::Thanks => &t.thanks,
                SurveyText::Skipped => &t.skipped,
                SurveyText::Skip => &t.skip,
            }
            .as_deref()
        });
        own.unwrap_or(match which {
            SurveyText::Csat => &self.texts.csat,
            SurveyText::Nps => &self.texts.nps,
            SurveyText::Reminder => &self.texts.reminder,
            SurveyText::Thanks => &self.texts.thanks,
            SurveyText::Skipped => &self.texts.skipped,
            SurveyText::Skip => &self.texts.skip,
        })
    }
}

/// `[survey]` as written, before its checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSurvey {
    csat: bool,
    nps: bool,
    reminder_after_mins: u64,
    texts: SurveyTexts,
    queues: BTreeMap<String, QueueTexts>,
}

impl Default for RawSurvey {
    fn default() -> Self {
        let d = SurveyConfig::default();
        RawSurvey {
            csat: d.csat,
            nps: d.nps,
            reminder_after_mins: d.reminder_after_mins,
            texts: d.texts,
            queues: d.queues,
        }
    }
}

impl TryFrom<RawSurvey> for SurveyConfig {
    type Error = String;

    fn try_from(raw: RawSurvey) -> Result<Self, String> {
        if raw.reminder_after_mins > MAX_REMINDER_MINS {
            return Err(format!(
                "survey.reminder_after_mins must be at most {MAX_REMINDER_MINS} (a week); \
                 0 sends no reminder"
            ));
        }
        let t = &raw.texts;
        for (name, text) in [
            ("csat", &t.csat),
            ("nps", &t.nps),
            ("reminder", &t.reminder),
            ("thanks", &t.thanks),
            ("skipped", &t.skipped),
            ("skip", &t.skip),
        ] {
            check_text(&format!("survey.texts.{name}"), name, text)?;
        }
        for (queue, t) in &raw.queues {
            if queue.is_empty() || queue.chars().count() > 64 {
                return Err(format!(
                    "survey.queues: a queue name must be 1-64 characters, as in rules.toml \
                     (got {queue:?})"
                ));
            }
            for (name, text) in [
                ("csat", &t.csat),
                ("nps", &t.nps),
                ("reminder", &t.reminder),
                ("thanks", &t.thanks),
                ("skipped", &t.skipped),
                ("skip", &t.skip),
            ] {
                if let Some(text) = text {
                    check_text(&format!("survey.queues.{queue}.{name}"), name, text)?;
                }
            }
        }
        Ok(SurveyConfig {
            csat: raw.csat,
            nps: raw.nps,
            reminder_after_mins: raw.reminder_after_mins,
            texts: raw.texts,
            queues: raw.queues,
        })
    }
}

/// A survey text is not blank and fits one message (a button label: one short line).
fn check_text(key: &str, name: &str, text: &str) -> Result<(), String> {
    let most = if name == "skip" {
        MAX_SKIP_LABEL
    } else {
        MAX_SURVEY_TEXT
    };
    if text.trim().is_empty() || text.chars().count() > most {
        return Err(format!(
            "{key} must be 1-{most} characters (remove the key to use the built-in text)"
        ));
    }
    if name == "skip" && text.contains('\n') {
        return Err(format!("{key} is a button label: write it on one line"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SurveyConfig, String> {
        #[derive(Deserialize)]
        struct Doc {
            #[serde(default)]
            survey: SurveyConfig,
        }
        toml::from_str::<Doc>(text)
            .map(|d| d.survey)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_ask_csat_only_and_remind_after_an_hour() {
        let c = parse("").unwrap();
        assert_eq!(c, SurveyConfig::default());
        assert!(c.csat && !c.nps);
        assert_eq!(c.reminder_after_mins, 60);
        assert!(c.text(None, SurveyText::Csat).contains("1 (poor) to 5"));
    }

    #[test]
    fn a_queue_overrides_only_the_texts_it_gives() {
        let c =
            parse("[survey]\nnps = true\n[survey.queues.care]\ncsat = \"How did Care do? 1-5\"\n")
                .unwrap();
        assert!(c.nps);
        assert_eq!(
            c.text(Some("care"), SurveyText::Csat),
            "How did Care do? 1-5"
        );
        assert_eq!(
            c.text(Some("care"), SurveyText::Thanks),
            c.texts.thanks.as_str()
        );
        assert_eq!(
            c.text(Some("general"), SurveyText::Csat),
            c.texts.csat.as_str()
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = parse("[survey.queues.care]\ncsat = \"  \"\n").unwrap_err();
        assert!(e.contains("survey.queues.care.csat"), "{e}");
        let e = parse("[survey.texts]\nskip = \"Skip\\nit\"\n").unwrap_err();
        assert!(e.contains("survey.texts.skip"), "{e}");
        let e = parse("[survey]\nreminder_after_mins = 999999\n").unwrap_err();
        assert!(e.contains("survey.reminder_after_mins"), "{e}");
        let long = "x".repeat(MAX_SURVEY_TEXT + 1);
        let e = parse(&format!("[survey.texts]\nthanks = \"{long}\"\n")).unwrap_err();
        assert!(e.contains("survey.texts.thanks"), "{e}");
        assert!(
            parse("[survey]\ncolour = 1\n").is_err(),
            "unknown keys are refused"
        );
    }
}
