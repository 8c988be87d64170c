//! The stakes head's reading as the desk uses it: whose problem a message is about, and
//! whether a late parcel is told with mild impatience (the bot looks it up before the tone
//! rules may send the customer away).
//!
//! Thresholds chosen on the choosing part of `data/stakes/train.tsv` (every fifth line, which
//! the head was not trained on) and on `data/frustration/val.tsv`; `data/stakes/test.tsv`
//! only measures them (see README.md).

use crate::nlu::Analysis;
use crate::store::ConversationRecord;

/// The look-alikes' share (own life, own mistake, a third party, solved) from which a
/// message's tone is read as aimed elsewhere.
pub(crate) const ELSEWHERE_AT_LEAST: f32 = 0.7;
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
/// about a late parcel in the conversation.
pub(crate) fn awaiting_look_up(record: &ConversationRecord, m: &Analysis) -> bool {
    !record.late_parcel_raised && mild_late_parcel(m)
}
