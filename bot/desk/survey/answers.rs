//! A customer's answer to a survey question, read from outside: a typed message ("4",
//! "skip") or an answer button's payload (`fd:csat:4:{conversation}`), which a forger may
//! write too (a well-formed one is still checked against the open survey, `mod.rs`).

use crate::message::{ConversationId, Survey};

/// Longest button payload we read (Discord's custom ids are at most 100 characters).
const MAX_BUTTON_DATA: usize = 100;

/// What a customer answered to a survey question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurveyAnswer {
    Score(u8),
    Skip,
}

/// A typed answer to `survey`: the score alone ("4", " 4 ", "4."), or "skip" in any case.
/// Anything else is a normal message.
pub fn parse_answer(text: &str, survey: Survey) -> Option<SurveyAnswer> {
    let t = text.trim().trim_end_matches(['.', '!']).trim();
    if t.eq_ignore_ascii_case("skip") {
        return Some(SurveyAnswer::Skip);
    }
    if t.is_empty() || t.len() > 2 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u8 = t.parse().ok()?;
    survey
        .scores()
        .contains(&n)
        .then_some(SurveyAnswer::Score(n))
}

/// The payload of one answer button (Telegram's `callback_data`, Discord's `custom_id`, at
/// most 64 bytes for a conversation id of 36): `fd:csat:4:{conversation}`.
pub fn button_data(conversation: &ConversationId, survey: Survey, answer: SurveyAnswer) -> String {
    let answer = match answer {
        SurveyAnswer::Score(n) => n.to_string(),
        SurveyAnswer::Skip => "skip".into(),
    };
    format!("fd:{}:{answer}:{}", survey.as_str(), conversation.as_str())
}

/// A button payload read back; `None` for anything [`button_data`] did not write (it comes
/// from outside: a forged one is refused here or, when well formed, by `survey::answer`).
pub fn parse_button(data: &str) -> Option<(ConversationId, Survey, SurveyAnswer)> {
    if data.len() > MAX_BUTTON_DATA {
        return None;
    }
    let mut parts = data.splitn(4, ':');
    if parts.next()? != "fd" {
        return None;
    }
    let survey = Survey::parse(parts.next()?)?;
    let answer = match parts.next()? {
        "skip" => SurveyAnswer::Skip,
        n if !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()) => {
            let n: u8 = n.parse().ok()?;
            survey
                .scores()
                .contains(&n)
                .then_some(SurveyAnswer::Score(n))?
        }
        _ => return None,
    };
    let id = parts.next()?;
    let well_formed =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    well_formed.then(|| (ConversationId(id.to_string()), survey, answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_answers_are_a_score_in_range_or_skip() {
        assert_eq!(
            parse_answer(" 4 ", Survey::Csat),
            Some(SurveyAnswer::Score(4))
        );
        assert_eq!(
            parse_answer("5.", Survey::Csat),
            Some(SurveyAnswer::Score(5))
        );
        assert_eq!(parse_answer("SKIP", Survey::Csat), Some(SurveyAnswer::Skip));
        assert_eq!(parse_answer("0", Survey::Csat), None);
        assert_eq!(parse_answer("6", Survey::Csat), None);
        assert_eq!(parse_answer("0", Survey::Nps), Some(SurveyAnswer::Score(0)));
        assert_eq!(
            parse_answer("10", Survey::Nps),
            Some(SurveyAnswer::Score(10))
        );
        assert_eq!(parse_answer("11", Survey::Nps), None);
        for normal in [
            "",
            "4 stars",
            "order 4",
            "-1",
            "+4",
            "٤",
            "04x",
            "where is 10001",
        ] {
            assert_eq!(parse_answer(normal, Survey::Csat), None, "{normal:?}");
        }
    }

    #[test]
    fn buttons_read_back_what_was_written_and_nothing_else() {
        let id = ConversationId("0b5e6c1e-3f0a-4f57-9d3c-2a7d1c7f2e11".into());
        for (survey, answer) in [
            (Survey::Csat, SurveyAnswer::Score(1)),
            (Survey::Csat, SurveyAnswer::Skip),
            (Survey::Nps, SurveyAnswer::Score(10)),
        ] {
            let data = button_data(&id, survey, answer);
            assert!(data.len() <= 64, "Telegram takes 64 bytes: {data}");
            assert_eq!(parse_button(&data), Some((id.clone(), survey, answer)));
        }
        for forged in [
            "fd:csat:6:0b5e6c1e",
            "fd:nps:11:0b5e6c1e",
            "fd:csat:4:",
            "fd:csat:4:../../x",
            "fd:csat:4:0b5e:6c1e",
            "xx:csat:4:0b5e6c1e",
            "fd:ces:4:0b5e6c1e",
            "fd:csat:-1:0b5e6c1e",
            "fd:csat",
            "",
        ] {
            assert_eq!(parse_button(forged), None, "{forged:?}");
        }
        let long = format!("fd:csat:4:{}", "a".repeat(200));
        assert_eq!(parse_button(&long), None);
    }
}
