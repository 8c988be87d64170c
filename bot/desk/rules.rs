//! Asking the escalation rules about a turn: the situation they see (the order's size, the
//! stakes head's reading as the desk uses it: whose problem a message is about, whether a late
//! parcel is told with mild impatience, so the bot looks it up before the tone rules may send
//! the customer away) and, when the local reading is unsure, the LLM judge.
//!
//! Thresholds chosen on the choosing part of `data/stakes/train.tsv` (every fifth line, which
//! the head was not trained on) and on `data/frustration/val.tsv`; `data/stakes/test.tsv`
//! only measures them (see README.md).

use std::time::Duration;

use super::error::DeskError;
use super::inner::Inner;
use crate::llm::Line;
use crate::nlu::Analysis;
use crate::policy::{self, Condition, Escalation, JudgeSaid, Situation, ELSEWHERE_AT_LEAST};
use crate::store::{ConversationRecord, Customer};

/// The mild-late-parcel probability from which a first message about a late parcel waits for
/// the bot's look-up.
pub(crate) const MILD_LATE_PARCEL_AT_LEAST: f32 = 0.5;
/// A message this angry is never made to wait (the frustration head's `angry`).
const CLEARLY_ANGRY: f32 = 0.9;

/// Whether the message's negative words are about something other than the shop: the
/// customer says so in words (`frustration::aimed_elsewhere`), or the stakes head reads one
/// of the look-alikes and no stake.
pub(crate) fn aimed_elsewhere(m: &Analysis) -> bool {
    super::frustration::aimed_elsewhere(m)
        || (m.stakes.elsewhere() >= ELSEWHERE_AT_LEAST && m.stakes.at_stake() < 0.5)
}

/// Whether the message reads as a late parcel told with mild impatience.
pub(crate) fn mild_late_parcel(m: &Analysis) -> bool {
    m.stakes.late_parcel_mild >= MILD_LATE_PARCEL_AT_LEAST && m.frustration.angry < CLEARLY_ANGRY
}

/// Whether the tone rules wait for the bot's look-up on this turn: the first mild message
/// about a late parcel in the conversation, telling no history with us ("fourth time
/// asking", "nobody replied": a look-up does not answer that).
pub(crate) fn awaiting_look_up(record: &ConversationRecord, m: &Analysis) -> bool {
    !record.late_parcel_raised && mild_late_parcel(m) && !super::frustration::tells_history(m)
}

/// The band of the stakes head's "something is at stake" probability in which the local
/// reading is unsure and the LLM judge is asked (when configured and a rule listens to it).
/// Chosen on the choosing sets (README.md, "Escalation by stakes"): 14 of 135 messages of the
/// stakes choosing part fall in it (7 of them need a person), 43 of 339 of
/// data/frustration/val.tsv (22).
pub(crate) const JUDGE_BAND: std::ops::Range<f32> = 0.2..0.8;

/// Earlier lines of the conversation the judge reads.
const JUDGE_HISTORY: usize = 6;

/// Whether the local reading of the message is unsure: a stake half seen, or an upset tone
/// the desk took as aimed elsewhere.
pub(crate) fn unsure(m: &Analysis) -> bool {
    JUDGE_BAND.contains(&m.stakes.at_stake())
        || (aimed_elsewhere(m) && m.frustration.upset() >= 0.9)
}

/// The rules kept this turn with the bot: when the local reading is unsure, the LLM is
/// configured with a judge and a rule listens to it (`when = "llm_judge"`), ask it within
/// `llm.judge_ms` and put its verdict to the rules. No verdict in time: the local decision.
pub(super) async fn ask_judge(
    inner: &Inner,
    record: &ConversationRecord,
    customer: &Customer,
    analysis: &Analysis,
    intent: &str,
    unresolved: u32,
) -> Result<Option<Escalation>, DeskError> {
    let Some(llm) = inner.llm.as_ref() else {
        return Ok(None);
    };
    let budget = llm.llm.config().judge_ms;
    let listened = inner
        .rules()
        .rules
        .iter()
        .any(|r| r.condition == Condition::LlmJudge);
    if budget == 0 || !listened || !unsure(analysis) {
        return Ok(None);
    }
    let earlier: Vec<Line> = inner
        .store
        .recent_messages(&record.id, JUDGE_HISTORY)
        .await?
        .into_iter()
        .map(super::grounding::line_of)
        .collect();
    let verdict = llm
        .llm
        .judge_escalation(
            &llm.prompts,
            record.id.as_str(),
            &earlier,
            &analysis.text,
            Duration::from_millis(budget),
        )
        .await;
    let Ok(verdict) = verdict else {
        crate::metrics::llm_judge("none");
        return Ok(None);
    };
    llm.llm.count_judged(verdict.tokens);
    let j = &verdict.judgement;
    crate::metrics::llm_judge(if j.person { "person" } else { "bot" });
    if !j.person {
        return Ok(None);
    }
    let said = JudgeSaid {
        stakes: &j.stakes,
        reason: &j.reason,
    };
    Ok(ask_rules(
        inner,
        record,
        customer,
        analysis,
        intent,
        unresolved,
        Some(said),
    )
    .await)
}

/// What the escalation rules make of this turn (`None`: the bot answers), with the LLM
/// judge's verdict when it was asked.
pub(super) async fn ask_rules(
    inner: &Inner,
    record: &ConversationRecord,
    customer: &Customer,
    analysis: &Analysis,
    intent: &str,
    unresolved_turns: u32,
    judge: Option<JudgeSaid<'_>>,
) -> Option<Escalation> {
    let (order_value, order_units) = order_size(inner, record).await.unzip();
    let situation = Situation {
        analysis,
        intent,
        negative_history: &record.sentiment_trajectory,
        tier: customer.tier.as_deref(),
        lifetime_value: customer.lifetime_value,
        order_value,
        unresolved_turns,
        frustration: record.frustration,
        frustration_reasons: &record.frustration_reasons,
        order_units,
        aimed_elsewhere: aimed_elsewhere(analysis),
        acknowledgement: super::frustration::acknowledges(analysis),
        awaiting_look_up: awaiting_look_up(record, analysis),
        judge,
    };
    policy::decide(&inner.rules(), &situation)
}

/// The value and item count of the order under discussion, when a rule looks at them.
async fn order_size(inner: &Inner, record: &ConversationRecord) -> Option<(f64, u32)> {
    let wanted = inner.rules().rules.iter().any(|r| {
        matches!(
            r.condition,
            Condition::OrderValue { .. } | Condition::LargeOrderProblem { .. }
        )
    });
    let number = record.slots.get("order_number")?;
    if !wanted {
        return None;
    }
    match inner.dialogue.order(number, &record.access).await {
        Ok(order) => order.map(|o| {
            let units = o.items.iter().map(|i| i.quantity).sum();
            (o.total, units)
        }),
        Err(e) => {
            tracing::warn!(error = %e, "order look-up for the order-size rules failed");
            None
        }
    }
}
