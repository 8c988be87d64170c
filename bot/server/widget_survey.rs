//! The satisfaction survey on the widget's socket (`desk/survey.rs`): a question arrives as a
//! courier line carrying its ask and goes to the page as a `survey` frame (stars, or 0-10,
//! and the declining button); a click comes back as a `survey` frame, answered to the desk as
//! the socket's own visitor (never an identity the page names) and acknowledged with
//! `survey_answered`. The frame counts against the same allowances as a message.

use super::frames::{SurveyQuestion, ToPage};
use super::{Session, SocketResult};
use crate::desk::survey::SurveyAnswer;
use crate::message::{ChannelKind, ConversationId, Identity, Survey};

/// The page's answer to a survey question: its conversation, which question, the score or
/// the skip.
pub(super) struct PageAnswer {
    pub(super) conversation_id: String,
    pub(super) survey: String,
    pub(super) score: Option<u8>,
    pub(super) skip: bool,
}

/// Conversation ids are UUIDs: anything longer is not one of ours.
const MAX_ID: usize = 64;

impl Session {
    /// Answers the survey for the socket's visitor; tells the page whether it counted.
    pub(super) async fn on_survey_answer(&mut self, page: PageAnswer) -> SocketResult {
        if let Err(limited) = self.allowance() {
            return self.slow_down(None, limited).await;
        }
        let given = match (page.score, page.skip) {
            (_, true) => Some(SurveyAnswer::Skip),
            (Some(n), false) => Some(SurveyAnswer::Score(n)),
            (None, false) => None,
        };
        let survey = Survey::parse(&page.survey);
        let (Some(given), Some(survey)) = (given, survey) else {
            return self
                .send(&ToPage::Error {
                    id: None,
                    message: "a survey answer needs \"survey\" (csat or nps) and a \"score\" \
                              in its range, or \"skip\": true"
                        .into(),
                })
                .await;
        };
        if page.conversation_id.is_empty() || page.conversation_id.len() > MAX_ID {
            return self.send(&ToPage::SurveyAnswered { counted: false }).await;
        }
        let visitor = Identity::new(ChannelKind::Web, &self.user);
        let id = ConversationId(page.conversation_id);
        let counted = match self
            .state
            .desk
            .answer_survey(&visitor, &id, survey, given)
            .await
        {
            Ok(counted) => counted,
            Err(e) => {
                return self
                    .send(&ToPage::Error {
                        id: None,
                        message: format!("the answer was not stored ({e}); please try again"),
                    })
                    .await
            }
        };
        self.send(&ToPage::SurveyAnswered { counted }).await
    }
}

/// The frame of a courier line that asks a survey question.
pub(super) fn question(
    conversation_id: ConversationId,
    ask: crate::message::SurveyAsk,
    text: String,
) -> ToPage {
    ToPage::Survey(SurveyQuestion::new(conversation_id, ask, text))
}
