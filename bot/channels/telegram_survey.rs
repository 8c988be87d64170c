//! The satisfaction survey on Telegram (`desk/survey.rs`): a question goes out with an inline
//! keyboard (the scores, then the button that declines), and a press comes back as a
//! `callback_query` update (long polling and webhook alike), answered to the desk as the
//! presser's own identity and acknowledged with `answerCallbackQuery` (Telegram shows a
//! spinner on the button until then).

use teloxide::payloads::AnswerCallbackQuerySetters;
use teloxide::requests::Requester;
use teloxide::types::{CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup};

use super::Telegram;
use crate::channels::InboundError;
use crate::desk::survey::{button_data, parse_button, SurveyAnswer};
use crate::intake::Pressed;
use crate::message::{ChannelKind, Identity, Outbound, Survey};

/// The keyboard of a survey question: CSAT 1-5 on one row; NPS 0-10 on two (0-5, 6-10);
/// the declining button on a row of its own. `None` for any other message.
pub(super) fn keyboard(message: &Outbound) -> Option<InlineKeyboardMarkup> {
    let ask = message.survey.as_ref()?;
    let id = &message.conversation_id;
    let button = |n: u8| {
        InlineKeyboardButton::callback(
            n.to_string(),
            button_data(id, ask.survey, SurveyAnswer::Score(n)),
        )
    };
    let mut rows: Vec<Vec<InlineKeyboardButton>> = match ask.survey {
        Survey::Csat => vec![ask.survey.scores().map(button).collect()],
        Survey::Nps => vec![
            (0..=5).map(button).collect(),
            (6..=10).map(button).collect(),
        ],
    };
    rows.push(vec![InlineKeyboardButton::callback(
        ask.skip_label.clone(),
        button_data(id, ask.survey, SurveyAnswer::Skip),
    )]);
    Some(InlineKeyboardMarkup::new(rows))
}

/// A button press: the answer counts only when the presser is the conversation's customer
/// and the question is their open one (the desk checks); the press is acknowledged either
/// way, so the button stops spinning.
pub(super) async fn on_callback(
    telegram: &Telegram,
    q: &CallbackQuery,
) -> Result<(), InboundError> {
    let presser = Identity::new(ChannelKind::Telegram, &q.from.id.0.to_string());
    let pressed = match q.data.as_deref().and_then(parse_button) {
        Some((conversation, survey, answer)) => {
            telegram
                .intake
                .answer_press(&presser, &conversation, survey, answer)
                .await?
        }
        None => {
            tracing::info!(identity = %presser, "Telegram button press with an unknown payload ignored");
            Pressed::NotCounted
        }
    };
    let mut ack = telegram.bot.answer_callback_query(q.id.clone());
    match pressed {
        Pressed::Counted => {}
        Pressed::NotCounted => ack = ack.text("This question is closed."),
        Pressed::TooFast => ack = ack.text("Too many presses at once: try again in a minute."),
    }
    if let Err(e) = ack.await {
        // The answer is stored; only the button's spinner stays a while.
        tracing::warn!(error = %e, "cannot acknowledge a Telegram button press");
    }
    Ok(())
}
