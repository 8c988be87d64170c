//! The satisfaction survey after an agent closes a conversation (`[survey]`): the CSAT
//! question (1-5) on the customer's own channel: on Telegram, Discord and the widget an
//! outbox record carrying a [`SurveyAsk`] (an inline keyboard, buttons, stars), queued right
//! after the close's change (a change's own outbox records go out before its messages, and
//! the question must follow the close's line); on REST a message of the conversation in the
//! close's change, answered by typing the number. After a CSAT answer, the NPS question
//! (0-10) when it is switched on. What the survey says on a platform goes out as outbox
//! records only (their order is the order written); on REST it is in the transcript. An answer stores `csat`/`nps` and a `Rated` milestone on
//! the conversation; "skip" ends the survey; at most one reminder goes out
//! ([`remind_due`], from the idle watcher), never after an answer or a skip.
//!
//! Who may answer: only the conversation's own customer identity, only while that
//! conversation's survey is open, and only once per question (the first answer counts; a
//! second press changes nothing). The open survey of an identity is a small record in the
//! store's channel state ([`Pending`], under the REST channel's namespace, which no adapter
//! uses: one place for the reminder to scan), written right after the close; the
//! conversation record stays the authority (a question already answered is refused under
//! the conversation's lock).

mod answers;
mod reminder;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::error::DeskError;
use super::inner::Inner;
use super::locked::locked_action;
use super::record::push_message;
use super::types::{DeskEventKind, Reply, Turn};
use crate::config::{SurveyConfig, SurveyText};
use crate::message::{
    ChannelKind, ConversationId, Identity, Inbound, Outbound, Speaker, Status, Survey, SurveyAsk,
};
use crate::store::{has_outbox, Change, ConversationRecord, MilestoneKind};

pub use answers::{button_data, parse_answer, parse_button, SurveyAnswer};
pub(in crate::desk) use reminder::remind_due;

/// How long a survey waits for its answer; then it is forgotten.
pub const SURVEY_OPEN_FOR: Duration = Duration::days(7);

/// The channel whose state holds the open surveys (see the module's documentation).
const STATE_CHANNEL: ChannelKind = ChannelKind::Rest;
const KEY_PREFIX: &str = "survey:";

/// The open survey of one customer identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pending {
    conversation: ConversationId,
    survey: Survey,
    asked_at: DateTime<Utc>,
    #[serde(default)]
    reminded: bool,
}

fn state_key(identity: &Identity) -> String {
    format!("{KEY_PREFIX}{}", identity.key())
}

/// The survey settings in force ([`crate::desk::Desk::set_survey`], else the defaults).
fn config(inner: &Inner) -> &SurveyConfig {
    static DEFAULT: std::sync::LazyLock<SurveyConfig> =
        std::sync::LazyLock::new(SurveyConfig::default);
    inner.survey.get().unwrap_or(&DEFAULT)
}

/// The question of `survey` as the outbox record that carries it (buttons on the platforms).
fn ask_message(
    r: &ConversationRecord,
    cfg: &SurveyConfig,
    survey: Survey,
    text: String,
    now: DateTime<Utc>,
) -> Outbound {
    Outbound {
        conversation_id: r.id.clone(),
        channel: r.channel,
        channel_user: r.channel_user.clone(),
        text,
        from: Speaker::Bot,
        time: now,
        turn: None,
        survey: Some(SurveyAsk {
            survey,
            skip_label: cfg.text(r.queue.as_deref(), SurveyText::Skip).to_string(),
        }),
    }
}

/// Puts question `survey` (with `text`) in `change`: an outbox record with buttons on a
/// channel with couriers, a message of the conversation on REST (read with the transcript).
fn put_question(
    r: &mut ConversationRecord,
    change: &mut Change,
    cfg: &SurveyConfig,
    survey: Survey,
    text: String,
    now: DateTime<Utc>,
) {
    if has_outbox(r.channel) {
        change.outbox.push(ask_message(r, cfg, survey, text, now));
    } else {
        push_message(r, change, Speaker::Bot, &text, now, None);
    }
}

/// The bot's `text` to the customer of `r`, in `change`, the same way as [`put_question`]
/// (after any record already in it); `turn`: the typed answer's turn, which shows it.
fn put_line(
    r: &mut ConversationRecord,
    change: &mut Change,
    text: &str,
    now: DateTime<Utc>,
    turn: Option<&str>,
) {
    if has_outbox(r.channel) {
        change.outbox.push(Outbound {
            conversation_id: r.id.clone(),
            channel: r.channel,
            channel_user: r.channel_user.clone(),
            text: text.to_string(),
            from: Speaker::Bot,
            time: now,
            turn: turn.map(str::to_string),
            survey: None,
        });
    } else {
        push_message(r, change, Speaker::Bot, text, now, None);
    }
}

fn question_text(cfg: &SurveyConfig, queue: Option<&str>, survey: Survey) -> String {
    let which = match survey {
        Survey::Csat => SurveyText::Csat,
        Survey::Nps => SurveyText::Nps,
    };
    cfg.text(queue, which).to_string()
}

/// The close hook (inside the close's change): on REST, asks the CSAT question of `r`,
/// which an agent has just closed, when `[survey] csat` is on (the platforms get theirs
/// from [`remember_asked`]).
pub(super) fn ask_on_close(
    inner: &Inner,
    r: &mut ConversationRecord,
    change: &mut Change,
    now: DateTime<Utc>,
) {
    let cfg = config(inner);
    if !cfg.csat || has_outbox(r.channel) {
        return;
    }
    let text = question_text(cfg, r.queue.as_deref(), Survey::Csat);
    put_question(r, change, cfg, Survey::Csat, text, now);
}

/// After the close is stored: the customer's survey is open (see [`Pending`]), then, on a
/// platform, its question is queued (so no answer can come before the survey is known). A
/// failure is logged: the conversation is closed all the same, without a survey.
pub(super) async fn remember_asked(inner: &Inner, r: &ConversationRecord) {
    let cfg = config(inner);
    if !cfg.csat || r.status != Status::Closed {
        return;
    }
    let now = Utc::now();
    let pending = Pending {
        conversation: r.id.clone(),
        survey: Survey::Csat,
        asked_at: now,
        reminded: false,
    };
    let asked = async {
        save(inner, &r.identity(), Some(&pending)).await?;
        if has_outbox(r.channel) {
            let text = question_text(cfg, r.queue.as_deref(), Survey::Csat);
            let ask = ask_message(r, cfg, Survey::Csat, text, now);
            inner.store.queue_outbox(ask).await?;
            inner.store.flush().await?;
        }
        Ok::<_, DeskError>(())
    };
    if let Err(e) = asked.await {
        tracing::error!(conversation = %r.id, error = %e, "cannot ask the closed conversation's survey");
    }
}

async fn load(inner: &Inner, identity: &Identity) -> Result<Option<Pending>, DeskError> {
    let text = inner
        .store
        .channel_state(STATE_CHANNEL, &state_key(identity))
        .await?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

async fn save(
    inner: &Inner,
    identity: &Identity,
    pending: Option<&Pending>,
) -> Result<(), DeskError> {
    let text = pending.map(|p| serde_json::to_string(p).expect("a survey record serialises"));
    inner
        .store
        .set_channel_state(STATE_CHANNEL, &state_key(identity), text.as_deref())
        .await?;
    Ok(inner.store.flush().await?)
}

/// What one answer changed: the bot's replies to show the customer, and the conversation.
pub(super) struct Answered {
    pub(super) replies: Vec<String>,
    pub(super) conversation: ConversationId,
}

/// `identity` answers its open survey: `expected` (a button's conversation and question)
/// must be the open one. `typed`: the customer's own message (kept in the transcript, its
/// ids recorded as handled, its turn naming the replies). `None`: not an answer that counts
/// (no open survey, another conversation's or question's button, already answered).
async fn answer(
    inner: &Inner,
    identity: &Identity,
    expected: Option<(&ConversationId, Survey)>,
    given: SurveyAnswer,
    typed: Option<(&Inbound, &str)>,
) -> Result<Option<Answered>, DeskError> {
    let Some(pending) = load(inner, identity).await? else {
        return Ok(None);
    };
    let now = Utc::now();
    if now - pending.asked_at > SURVEY_OPEN_FOR {
        save(inner, identity, None).await?;
        return Ok(None);
    }
    if let Some((id, survey)) = expected {
        if *id != pending.conversation || survey != pending.survey {
            tracing::info!(identity = %identity, conversation = %id,
                "survey answer for a question this customer was not asked; ignored");
            return Ok(None);
        }
    }
    if let SurveyAnswer::Score(n) = given {
        if !pending.survey.scores().contains(&n) {
            return Ok(None);
        }
    }
    let cfg = config(inner);
    let survey = pending.survey;
    let follow_up = matches!(given, SurveyAnswer::Score(_)) && survey == Survey::Csat && cfg.nps;
    let mut replies = Vec::new();
    let stored = locked_action(inner, &pending.conversation, |_, a| {
        let r = a.record;
        // Checked under the conversation's lock: the record is the authority.
        if r.identity() != *identity {
            return Err(DeskError::Forbidden(
                "only the conversation's customer answers its survey".into(),
            ));
        }
        let answered = match survey {
            Survey::Csat => r.csat.is_some(),
            Survey::Nps => r.nps.is_some(),
        };
        if r.status != Status::Closed || answered {
            return Err(DeskError::Conflict("the survey is over".into()));
        }
        let queue = r.queue.clone();
        if let Some((msg, turn)) = typed {
            push_message(r, a.change, Speaker::Customer, &msg.text, now, None);
            a.change.turn = Some(turn.to_string());
        }
        let note = match given {
            SurveyAnswer::Score(n) => {
                match survey {
                    Survey::Csat => r.csat = Some(n),
                    Survey::Nps => r.nps = Some(n),
                }
                r.note(
                    now,
                    MilestoneKind::Rated {
                        survey: survey.as_str().into(),
                        score: n,
                    },
                );
                cfg.text(queue.as_deref(), SurveyText::Thanks).to_string()
            }
            SurveyAnswer::Skip => cfg.text(queue.as_deref(), SurveyText::Skipped).to_string(),
        };
        put_line(r, a.change, &note, now, typed.map(|(_, turn)| turn));
        a.events
            .push(DeskEventKind::BotReply { text: note.clone() });
        replies.push(note);
        if follow_up {
            let text = question_text(cfg, queue.as_deref(), Survey::Nps);
            // REST reads the question in its answer; the platforms get it with its buttons.
            if !has_outbox(r.channel) {
                replies.push(text.clone());
            }
            put_question(r, a.change, cfg, Survey::Nps, text, now);
        }
        Ok(None)
    })
    .await;
    match stored {
        Ok(_) => {}
        Err(DeskError::Forbidden(why) | DeskError::Conflict(why)) => {
            tracing::info!(identity = %identity, conversation = %pending.conversation, why,
                "survey answer refused");
            if why == "the survey is over" {
                save(inner, identity, None).await?;
            }
            return Ok(None);
        }
        Err(e) => return Err(e),
    }
    let next = follow_up.then(|| Pending {
        conversation: pending.conversation.clone(),
        survey: Survey::Nps,
        asked_at: now,
        reminded: false,
    });
    save(inner, identity, next.as_ref()).await?;
    tracing::info!(conversation = %pending.conversation, survey = survey.as_str(), answer = ?given, "survey answered");
    Ok(Some(Answered {
        replies,
        conversation: pending.conversation,
    }))
}

/// `msg` as a typed answer ("4", "skip") to its customer's open survey, when it is one
/// and the customer has no other conversation going: the turn (the bot's thanks, and on
/// REST the next question). `None`: a normal message, for the desk. A message handled
/// before gets its first outcome back.
pub(super) async fn typed_reply(inner: &Inner, msg: &Inbound) -> Result<Option<Turn>, DeskError> {
    // Most messages are not a number or "skip": they cost no store read here.
    if parse_answer(&msg.text, Survey::Nps).is_none() {
        return Ok(None);
    }
    let identity = msg.identity();
    let Some(pending) = load(inner, &identity).await? else {
        return Ok(None);
    };
    let Some(given) = parse_answer(&msg.text, pending.survey) else {
        return Ok(None);
    };
    if let Some(id) = &msg.message_id {
        if inner.store.seen_inbound(&identity, id).await?.is_some() {
            return Ok(None); // the desk answers a repeat with its first outcome
        }
    }
    let open = inner.store.open_conversation(&identity).await?;
    if open.is_some_and(|open| open != pending.conversation) {
        return Ok(None);
    }
    let turn_id = super::new_turn_id();
    let Some(answered) =
        answer(inner, &identity, None, given, Some((msg, turn_id.as_str()))).await?
    else {
        return Ok(None);
    };
    let turn = Turn {
        conversation_id: answered.conversation,
        status: Status::Closed,
        replies: answered
            .replies
            .into_iter()
            .map(|text| Reply { text })
            .collect(),
        queue: None,
        id: Some(turn_id),
    };
    // A repeat of this message (a retry, a platform's redelivery) gets this turn back.
    let ids = msg.message_id.iter().chain(msg.merged_ids.iter());
    let outcome = serde_json::to_value(&turn).expect("a turn serialises");
    let change = Change {
        inbound: ids
            .map(|id| (identity.clone(), id.clone(), outcome.clone()))
            .collect(),
        ..Change::default()
    };
    if !change.inbound.is_empty() {
        inner.store.apply(change).await?;
        inner.store.flush().await?;
    }
    Ok(Some(turn))
}

impl super::Desk {
    /// Puts the `[survey]` settings in force (once, before customers write; without it the
    /// defaults hold: CSAT on, NPS off, a reminder after an hour).
    pub fn set_survey(&self, config: SurveyConfig) {
        if self.inner.survey.set(config).is_err() {
            tracing::warn!("the survey settings were already set; the first ones stay");
        }
    }

    /// `identity` pressed an answer button (a Telegram callback, a Discord component, the
    /// widget's stars) for question `survey` of conversation `id`. Returns whether it
    /// counted: only the conversation's customer, only its open question, only once.
    pub async fn answer_survey(
        &self,
        identity: &Identity,
        id: &ConversationId,
        survey: Survey,
        given: SurveyAnswer,
    ) -> Result<bool, DeskError> {
        let answered = answer(&self.inner, identity, Some((id, survey)), given, None).await?;
        Ok(answered.is_some())
    }

    /// The open survey question of `identity`, if any: its conversation, what it asks and
    /// its text (the widget shows it again after a reload).
    pub async fn open_survey(
        &self,
        identity: &Identity,
    ) -> Result<Option<(ConversationId, SurveyAsk, String)>, DeskError> {
        let inner = &self.inner;
        let Some(pending) = load(inner, identity).await? else {
            return Ok(None);
        };
        if Utc::now() - pending.asked_at > SURVEY_OPEN_FOR {
            return Ok(None);
        }
        let Some(r) = inner.store.conversation(&pending.conversation).await? else {
            return Ok(None);
        };
        let answered = match pending.survey {
            Survey::Csat => r.csat.is_some(),
            Survey::Nps => r.nps.is_some(),
        };
        if answered || r.status != Status::Closed || r.identity() != *identity {
            return Ok(None);
        }
        let cfg = config(inner);
        let text = question_text(cfg, r.queue.as_deref(), pending.survey);
        let ask = SurveyAsk {
            survey: pending.survey,
            skip_label: cfg.text(r.queue.as_deref(), SurveyText::Skip).to_string(),
        };
        Ok(Some((pending.conversation, ask, text)))
    }

    /// Sends the survey reminders due by `now` (the desk does this by itself every few
    /// seconds); returns how many went out.
    pub async fn remind_surveys(&self, now: DateTime<Utc>) -> Result<usize, DeskError> {
        remind_due(&self.inner, now).await
    }
}
