//! The one reminder an open survey may get, sent by the idle watcher.

use chrono::{DateTime, Duration, Utc};

use super::{
    config, put_question, question_text, save, Pending, KEY_PREFIX, STATE_CHANNEL, SURVEY_OPEN_FOR,
};
use crate::config::SurveyText;
use crate::desk::error::DeskError;
use crate::desk::inner::Inner;
use crate::desk::locked::locked_action;
use crate::message::{Identity, Status, Survey};

/// Sends the one reminder of every open survey asked at least `reminder_after_mins` before
/// `now` and not answered, skipped or reminded yet; forgets surveys past
/// [`SURVEY_OPEN_FOR`] and those whose conversation went on. A customer who has started a
/// new conversation since is not interrupted. Returns the reminders sent.
pub(in crate::desk) async fn remind_due(
    inner: &Inner,
    now: DateTime<Utc>,
) -> Result<usize, DeskError> {
    let cfg = config(inner);
    let after = Duration::minutes(cfg.reminder_after_mins as i64);
    let mut sent = 0;
    for (key, value) in inner.store.channel_states(STATE_CHANNEL).await? {
        let Some(identity) = key.strip_prefix(KEY_PREFIX).and_then(Identity::from_key) else {
            continue;
        };
        let Ok(mut pending) = serde_json::from_str::<Pending>(&value) else {
            continue;
        };
        if now - pending.asked_at > SURVEY_OPEN_FOR {
            save(inner, &identity, None).await?;
            continue;
        }
        if cfg.reminder_after_mins == 0 || pending.reminded || now - pending.asked_at < after {
            continue;
        }
        pending.reminded = true;
        let elsewhere = inner
            .store
            .open_conversation(&identity)
            .await?
            .is_some_and(|open| open != pending.conversation);
        if elsewhere {
            save(inner, &identity, Some(&pending)).await?;
            continue;
        }
        let reminded = locked_action(inner, &pending.conversation, |_, a| {
            let r = a.record;
            let answered = match pending.survey {
                Survey::Csat => r.csat.is_some(),
                Survey::Nps => r.nps.is_some(),
            };
            if r.status != Status::Closed || answered {
                return Err(DeskError::Conflict("the survey is over".into()));
            }
            let queue = r.queue.clone();
            let text = format!(
                "{}\n{}",
                cfg.text(queue.as_deref(), SurveyText::Reminder),
                question_text(cfg, queue.as_deref(), pending.survey)
            );
            put_question(r, a.change, cfg, pending.survey, text, now);
            Ok(None)
        })
        .await;
        match reminded {
            Ok(_) => {
                sent += 1;
                tracing::info!(conversation = %pending.conversation, "survey reminder sent");
                save(inner, &identity, Some(&pending)).await?;
            }
            // Answered, or the conversation went on: nothing more to ask.
            Err(DeskError::Conflict(_) | DeskError::NotFound) => {
                save(inner, &identity, None).await?
            }
            // Tried again at the next tick.
            Err(e) => tracing::warn!(conversation = %pending.conversation, error = %e,
                "cannot send a survey reminder now"),
        }
    }
    Ok(sent)
}
