//! How frustrated the customer is with this conversation as a whole: a score from 0 (calm)
//! to 1 (fed up) and the reasons behind it, in words an agent reads at a glance ("third
//! time asking", "all caps", "waited 12 min").
//!
//! Pure: [`assess`] reads the customer's messages in this conversation (with what the NLU
//! made of each) and what the desk knows around them (earlier conversations, time waited in
//! a queue, turns the bot could not resolve). Each signal gives a contribution between 0
//! and 1; the score is `1 - Π(1 - contribution)`, so one strong signal counts, several weak
//! ones add up, and nothing goes past 1. What a message says fades with every later message
//! (halved per turn), so a grumble about the weather followed by a routine question stays
//! low, while a conversation that sours keeps climbing.
//!
//! Signals:
//! - the message's own reading: the frustration head (`frustrated`, `angry`), negative
//!   sentiment, anger (only with a negative message: the anger head has no neutral class),
//!   several negative messages in a row;
//! - repetition: the same intent asked again in this conversation (small talk aside), and
//!   markers such as "again", "third time", "still", "how many times", "already told you",
//!   "I emailed on monday" ("I'll check again next week" is a plan, not a repetition);
//!   what the customer says about their history with us fades slowly, not like a tone;
//! - the usual route failed: "I've done that", "it says contact support", "nobody replied";
//! - context: earlier conversations of the customer, time waited in a queue, turns the bot
//!   could not resolve;
//! - sarcasm: "thanks for nothing", 🙄, positive words about something gone wrong
//!   ("brilliant, it's late again"), praise once the conversation is about a problem ("top
//!   notch service 👏"); sarcastic twice is a souring conversation by itself;
//! - impatience: "please just close it", "why do you need that";
//! - shouting: capitals and "!!!"/"???", stronger when the customer did not write like that
//!   before;
//! - words of exasperation ("ridiculous", "had enough", "losing patience").

use super::frustration_words::*;
use crate::nlu::{Analysis, OUT_OF_SCOPE};

/// The conversation's frustration: the score and why.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Frustration {
    /// 0 (calm) ..= 1.
    pub score: f32,
    /// Short phrases, strongest first.
    pub reasons: Vec<String>,
}

/// What [`assess`] reads.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The customer's messages in this conversation, oldest first, this one last.
    pub messages: &'a [Analysis],
    /// Conversations the customer had before this one.
    pub earlier_conversations: u32,
    /// Seconds this conversation has waited in a queue (0 when not queued).
    pub waited_secs: u64,
    /// Turns the bot could not resolve in this conversation.
    pub unresolved_turns: u32,
}

/// How much a message's own signals fade per later message.
const FADE: f32 = 0.5;
/// Contributions below this add to the score but are not named as reasons.
const NAMED: f32 = 0.1;

/// Intents that are no question at all: asking them twice is no repetition.
const SMALL_TALK: &[&str] = &["greet", "thanks", "goodbye", OUT_OF_SCOPE];

/// Whole-word, case-insensitive: `phrase` (lower case) in `lower`.
fn has(lower: &str, phrase: &str) -> bool {
    if !phrase.chars().next().is_some_and(char::is_alphanumeric) {
        return lower.contains(phrase);
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '\'';
    let mut from = 0;
    while let Some(pos) = lower[from..].find(phrase) {
        let start = from + pos;
        let end = start + phrase.len();
        let before = lower[..start].chars().next_back();
        let after = lower[end..].chars().next();
        if !before.is_some_and(is_word) && !after.is_some_and(is_word) {
            return true;
        }
        from = end;
    }
    false
}

/// Share of capitals among the letters, when there are enough letters to tell.
fn caps_share(text: &str) -> Option<f32> {
    let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() < 6 {
        return None;
    }
    let upper = letters.iter().filter(|c| c.is_uppercase()).count();
    Some(upper as f32 / letters.len() as f32)
}

/// "!!!", "???", "?!": insistent punctuation.
fn insistent(text: &str) -> Option<&'static str> {
    if text.contains("!!") {
        Some("\"!!!\"")
    } else if text.contains("??") || text.contains("?!") || text.contains("!?") {
        Some("\"???\"")
    } else {
        None
    }
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The strongest contribution of each signal (named by a key), with its reason.
#[derive(Default)]
struct Signals(Vec<(&'static str, f32, String)>);

impl Signals {
    /// Keeps the stronger of two readings of the same signal.
    fn offer(&mut self, key: &'static str, value: f32, reason: String) {
        let value = value.clamp(0.0, 1.0);
        if value <= 0.0 {
            return;
        }
        match self.0.iter_mut().find(|(k, _, _)| *k == key) {
            Some(slot) if slot.1 >= value => {}
            Some(slot) => *slot = (key, value, reason),
            None => self.0.push((key, value, reason)),
        }
    }

    fn finish(mut self) -> Frustration {
        let calm: f32 = self.0.iter().map(|(_, v, _)| 1.0 - v).product();
        self.0.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut reasons: Vec<String> = Vec::new();
        for (_, v, reason) in self.0 {
            if v >= NAMED && !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
        Frustration {
            score: ((1.0 - calm) * 1000.0).round() / 1000.0,
            reasons,
        }
    }
}

/// The conversation's frustration score and its reasons.
pub fn assess(c: &Context) -> Frustration {
    let mut s = Signals::default();
    let n = c.messages.len();
    for (i, m) in c.messages.iter().enumerate() {
        message_signals(&mut s, m, &c.messages[..i], (n - 1 - i) as i32);
    }
    sarcasm(&mut s, c.messages);
    leaving(&mut s, c.messages);
    if c.messages.last().is_some() {
        repeated_intent(&mut s, c.messages);
        negative_run(&mut s, c.messages);
    }
    if c.earlier_conversations > 0 {
        let v = (0.1 * c.earlier_conversations as f32).min(0.3);
        s.offer(
            "contacts",
            v,
            format!("{} contact", ordinal(c.earlier_conversations + 1)),
        );
    }
    if c.waited_secs >= 120 {
        let v = (0.35 * c.waited_secs as f32 / 1800.0).min(0.35);
        s.offer("wait", v, format!("waited {} min", c.waited_secs / 60));
    }
    if c.unresolved_turns > 0 {
        let v = match c.unresolved_turns {
            1 => 0.1,
            2 => 0.25,
            _ => 0.4,
        };
        let times = match c.unresolved_turns {
            1 => "once".to_string(),
            2 => "twice".to_string(),
            k => format!("{k} times"),
        };
        s.offer("failures", v, format!("bot could not help {times}"));
    }
    s.finish()
}

/// What one message says, faded by how many messages came after it (`later`).
fn message_signals(s: &mut Signals, m: &Analysis, before: &[Analysis], later: i32) {
    let fade = FADE.powi(later);
    let lower = m.text.to_lowercase();
    let negative = m.sentiment_scores.negative;
    // The frustration head, negative sentiment and anger read the same tone three ways:
    // one signal, the strongest reading (one message alone does not make a souring
    // conversation unless the head hears real anger).
    let f = m.frustration;
    // "my boss is a nightmare", "locked myself out again": the tone is not about us
    let aim = if aimed_at_lower(m, &lower) { 0.5 } else { 1.0 };
    let fade = fade * aim;
    let head = 0.5 * f.frustrated + 0.85 * f.angry;
    if head > 0.0 {
        let reason = if f.angry >= f.frustrated {
            "sounds angry"
        } else {
            "sounds frustrated"
        };
        s.offer("tone", head * fade, reason.into());
    }
    if negative >= 0.5 {
        s.offer(
            "tone",
            0.45 * (negative - 0.5) / 0.5 * fade,
            "negative tone".into(),
        );
        s.offer("tone", 0.35 * m.anger * fade, "angry words".into());
    }
    let fade = fade / aim;
    // "third time asking", "I messaged on monday", "nobody replied": facts about the
    // customer's history with us, which a later calm message does not undo (slow fade)
    let facts = SLOW_FADE.powi(later);
    if let Some((_, reason)) = REPEAT_STRONG.iter().find(|(p, _)| has(&lower, p)) {
        s.offer("repeat", 0.4 * facts, (*reason).into());
    } else if let Some(w) = REPEAT_WEAK.iter().find(|w| has(&lower, w)) {
        if !FORWARD.iter().any(|f| has(&lower, f)) {
            s.offer("repeat", 0.2 * fade, format!("says \"{w}\""));
        }
    }
    if let Some((_, reason)) = ADVICE_FAILED.iter().find(|(p, _)| has(&lower, p)) {
        s.offer("advice", 0.3 * facts, (*reason).into());
    }
    if let Some(w) = IMPATIENCE.iter().find(|w| has(&lower, w)) {
        s.offer("impatience", 0.2 * fade, format!("says \"{w}\""));
    }
    if let Some(share) = caps_share(&m.text).filter(|v| *v >= 0.7) {
        let earlier: Vec<f32> = before.iter().filter_map(|b| caps_share(&b.text)).collect();
        let louder =
            !earlier.is_empty() && earlier.iter().sum::<f32>() / (earlier.len() as f32) < 0.3;
        let (v, reason) = if louder {
            (0.45, "switched to all caps")
        } else {
            (0.35, "all caps")
        };
        s.offer("caps", v * share.min(1.0) * fade, reason.into());
    }
    if let Some(mark) = insistent(&m.text) {
        let before_too = before.iter().any(|b| insistent(&b.text).is_some());
        let v = if before_too { 0.1 } else { 0.2 };
        s.offer("punctuation", v * fade, mark.into());
    }
    if let Some(w) = EXASPERATION.iter().find(|w| has(&lower, w)) {
        s.offer("exasperation", 0.3 * fade, format!("says \"{w}\""));
    }
}

/// Whether the message tells of the customer's history with us ("fourth time asking", "I
/// emailed on monday", "nobody replied") or of advice that did not work: facts that a first
/// look-up does not answer.
pub(crate) fn tells_history(m: &Analysis) -> bool {
    let lower = m.text.to_lowercase();
    REPEAT_STRONG
        .iter()
        .chain(ADVICE_FAILED)
        // "still not here" is the parcel's state, which the look-up answers
        .filter(|(p, _)| !p.starts_with("still"))
        .any(|(p, _)| has(&lower, p))
}

/// For the escalation rules that read one message's tone: the customer says what the tone is
/// about, and it is not the shop (themselves, their day, someone in their life). Narrower than
/// the frustration score's reading (which also halves an out-of-scope grumble that names
/// nothing of ours): a lone "this is SO frustrating" in a support chat is about us.
pub(crate) fn aimed_elsewhere(m: &Analysis) -> bool {
    let lower = m.text.to_lowercase();
    SELF_DIRECTED.iter().chain(LIFE).any(|p| has(&lower, p))
}

/// The message's tone is aimed at something other than the shop: the customer's day, their
/// boss, themselves ("locked myself out again"), or an out-of-scope grumble naming nothing of
/// ours. Such a grumble still counts towards the frustration score, at half weight.
fn aimed_at_lower(m: &Analysis, lower: &str) -> bool {
    if SELF_DIRECTED.iter().chain(LIFE).any(|p| has(lower, p)) {
        return true;
    }
    m.intent == OUT_OF_SCOPE && !ADDRESSED.iter().any(|w| has(lower, w))
}

/// How much a repeated question or sarcasm fades per later message: slower than a
/// message's tone, since a customer who had to ask twice, or turned sarcastic, stays so.
const SLOW_FADE: f32 = 0.8;

/// The same question again: a message whose intent an earlier one asked (the latest such
/// message counts most; one the customer moved on from fades slowly).
fn repeated_intent(s: &mut Signals, messages: &[Analysis]) {
    let n = messages.len();
    for (i, m) in messages.iter().enumerate() {
        let before = &messages[..i];
        let intent = m.intent.as_str();
        // A bare order number or "yes" continues a question; it does not ask it again.
        let words = m.text.split_whitespace().count();
        if SMALL_TALK.contains(&intent) || words < 3 {
            continue;
        }
        // Nor does a message that brings something new (the order number the bot asked for).
        let new_info = m.entities.iter().any(|e| {
            !before
                .iter()
                .any(|b| b.entities.iter().any(|x| x.value == e.value))
        });
        if new_info {
            continue;
        }
        let times = before
            .iter()
            .filter(|b| b.intent == intent && b.text.split_whitespace().count() >= 3)
            .count();
        let fade = SLOW_FADE.powi((n - 1 - i) as i32);
        match times {
            0 => {}
            1 => s.offer("same", 0.25 * fade, "asked the same question twice".into()),
            k => s.offer(
                "same",
                0.4 * fade,
                format!("asked the same question {} times", k + 1),
            ),
        }
    }
}

/// Sarcasm: unmistakable phrases ("thanks for nothing", 🙄), praise next to something
/// gone wrong ("brilliant, it's late again"), or praise once the conversation has been about
/// something gone wrong ("top notch service as always 👏"). Sarcastic customers are unhappy
/// customers: one sarcastic message about a problem weighs like a souring tone, two more.
fn sarcasm(s: &mut Signals, messages: &[Analysis]) {
    let n = messages.len();
    let mut trouble_before = false;
    let mut strongest: f32 = 0.0;
    let mut sarcastic = 0;
    for (i, m) in messages.iter().enumerate() {
        let lower = m.text.to_lowercase();
        let negative = m.sentiment_scores.negative >= 0.5;
        let trouble_here = negative || TROUBLE.iter().any(|t| has(&lower, t));
        let explicit = SARCASM_EXPLICIT.iter().any(|p| has(&lower, p));
        let praise = PRAISE.iter().any(|p| has(&lower, p));
        let praise_in_trouble = PRAISE_IN_TROUBLE.iter().any(|p| has(&lower, p));
        let grateful = thanks(&lower);
        let words = lower.split_whitespace().count();
        // (weight, whether it is clear enough to count towards "more than once")
        let (v, clear): (f32, bool) = if explicit && (trouble_here || trouble_before) {
            (0.55, true)
        } else if explicit {
            (0.45, true)
        } else if praise && trouble_here && !grateful {
            (0.45, true)
        } else if praise_in_trouble && trouble_before && !grateful {
            (0.35, true)
        } else if praise && trouble_before && !grateful && words >= 4 {
            // "great" alone acknowledges an answer; "top tier service as always" is not that
            (0.25, false)
        } else {
            (0.0, false)
        };
        if v > 0.0 {
            sarcastic += usize::from(clear);
            strongest = strongest.max(v * SLOW_FADE.powi((n - 1 - i) as i32));
        }
        trouble_before |= trouble_here;
    }
    if sarcastic >= 2 {
        strongest = strongest.max(0.65);
    }
    let reason = if sarcastic >= 2 {
        "sarcastic, more than once"
    } else {
        "sarcasm"
    };
    s.offer("sarcasm", strongest, reason.into());
}

/// Leaving friction: a customer who asked to leave and is still at it some messages later
/// (or says in the same breath that the way out is blocked) is having trouble leaving, the
/// moment a person can still save the relationship, or at least end it well. What counts is
/// a later message naming an obstacle (the button does nothing, call us on weekdays, a
/// minimum term, an offer to stay, weeks overdue); a plain follow-up question is no friction
/// (asking the same thing again is counted as a repeat already).
fn leaving(s: &mut Signals, messages: &[Analysis]) {
    let n = messages.len();
    let asks_to_leave = |m: &Analysis, lower: &str| {
        LEAVING_INTENTS.contains(&m.intent.as_str()) || LEAVING.iter().any(|p| has(lower, p))
    };
    let Some(first) = messages
        .iter()
        .position(|m| asks_to_leave(m, &m.text.to_lowercase()))
    else {
        return;
    };
    for (i, m) in messages.iter().enumerate().skip(first) {
        let lower = m.text.to_lowercase();
        let blocked = WAY_OUT_BLOCKED.iter().any(|p| has(&lower, p));
        let fade = SLOW_FADE.powi((n - 1 - i) as i32);
        let (v, reason) = if i == first {
            if !blocked {
                continue;
            }
            (0.3, "the way out is blocked")
        } else if SMALL_TALK.contains(&m.intent.as_str()) || thanks(&lower) {
            continue;
        } else if blocked {
            (0.45, "trying to leave, the way out is blocked")
        } else {
            continue;
        };
        s.offer("leaving", v * fade, reason.into());
    }
}

/// For the escalation rules that read one message's tone: the message takes the bot's answer
/// ("oh ok, so it's just a bit delayed", "Ah OK, so it's normal over the weekend. Thanks for
/// explaining."): the problem's words are in it, the complaint is not. "Thanks for nothing"
/// is no thanks.
pub(crate) fn acknowledges(m: &Analysis) -> bool {
    let lower = m.text.to_lowercase();
    let sarcastic = SARCASM_EXPLICIT.iter().any(|p| has(&lower, p));
    !sarcastic
        && (crate::desk::dialogue::is_acknowledgement(&m.text)
            || (thanks(&lower) && !lower.contains('?')))
}

/// Plain gratitude ("great, thanks"): praise that is no sarcasm.
fn thanks(lower: &str) -> bool {
    ["thanks", "thank you", "thx", "cheers", "ty"]
        .iter()
        .any(|w| has(lower, w))
}

/// Several clearly negative messages in a row, up to this one.
fn negative_run(s: &mut Signals, messages: &[Analysis]) {
    let run = messages
        .iter()
        .rev()
        .take_while(|m| m.sentiment_scores.negative >= 0.6)
        .count();
    if run >= 2 {
        let v = if run == 2 { 0.2 } else { 0.35 };
        s.offer("run", v, format!("{run} negative messages in a row"));
    }
}

#[cfg(test)]
#[path = "frustration_tests.rs"]
mod tests;
