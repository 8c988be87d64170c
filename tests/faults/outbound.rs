//! The outbound half of the verdict: the replies the store holds for Telegram and Discord
//! customers, rendered as the platform gets them, against what each fake received, per chat
//! and text (a text the bot says often is counted, not just seen). Queue-position notices
//! are sent live and not kept, so any surplus of them is counted apart.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use frontdesk::channels::format::Dialect;
use frontdesk::desk::copy;
use frontdesk::message::{ChannelKind, Outbound, Speaker};

use crate::agent;
use crate::audit::{example, Delivery, Evidence, OutboundRow};
use crate::proxy::SendAttempt;

/// One platform's figures: the stored replies of its conversations (`chat_of` finds the
/// chat a conversation's user is answered in) against the fake's `deliveries`; the
/// proxy's `attempts` place a duplicate next to the kills.
pub fn check(
    e: &Evidence,
    kind: ChannelKind,
    dialect: Dialect,
    deliveries: &[Delivery],
    attempts: &[SendAttempt],
    chat_of: &dyn Fn(&str) -> Option<u64>,
    problems: &mut Vec<String>,
) -> OutboundRow {
    let mut row = OutboundRow::default();
    let mut expected: HashMap<(u64, String), usize> = HashMap::new();
    // Bot answers written before an agent's last action in their conversation: the outbox
    // holds one back when the agent took over before it was sent (by design).
    let mut supersedable: HashMap<(u64, String), usize> = HashMap::new();
    for (c, messages) in e
        .stored
        .conversations
        .iter()
        .filter(|(c, _)| c.channel == kind)
    {
        let Some(chat) = chat_of(&c.channel_user) else {
            example(
                problems,
                "outbound unroutable:",
                format!("{kind} conversation {} of {:?}", c.id, c.channel_user),
            );
            continue;
        };
        for m in messages.iter().filter(|m| m.from != Speaker::Customer) {
            // The store names the agent by login, the platform shows the display name.
            let from = match &m.from {
                Speaker::Agent(name) if name == agent::NAME => {
                    Speaker::Agent(agent::DISPLAY_NAME.to_string())
                }
                other => other.clone(),
            };
            let message = Outbound {
                conversation_id: c.id.clone(),
                channel: kind,
                channel_user: c.channel_user.clone(),
                text: m.text.clone(),
                from,
                time: m.time,
                turn: None,
                survey: None,
            };
            let before_agent =
                m.from == Speaker::Bot && c.last_agent_at.is_some_and(|t| t > m.time);
            for piece in dialect.render(&message) {
                row.stored += 1;
                if before_agent {
                    *supersedable.entry((chat, piece.clone())).or_default() += 1;
                }
                *expected.entry((chat, piece)).or_default() += 1;
            }
        }
    }
    let mut delivered: HashMap<(u64, String), usize> = HashMap::new();
    for (chat, text) in deliveries {
        row.delivered += 1;
        *delivered.entry((*chat, text.clone())).or_default() += 1;
    }
    let notices: HashSet<String> = (0..=2000)
        .map(|n| dialect.escape(&copy::queue_position(n)))
        .collect();
    let mut keys: Vec<&(u64, String)> = expected.keys().chain(delivered.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let want = expected.get(key).copied().unwrap_or(0);
        let got = delivered.get(key).copied().unwrap_or(0);
        if got > want {
            if notices.contains(&key.1) {
                row.notices += got - want;
            } else {
                row.duplicated += got - want;
                example(
                    problems,
                    &format!("outbound {kind} duplicated:"),
                    format!(
                        "chat {} got {got}x (store holds {want}x) {:?}{}",
                        key.0,
                        short(&key.1),
                        accepted_near_kills(e, attempts, key)
                    ),
                );
            }
        }
        let excused = (want.saturating_sub(got)).min(supersedable.get(key).copied().unwrap_or(0));
        row.held_back += excused;
        let want = want - excused;
        if want > got {
            row.lost += want - got;
            example(
                problems,
                &format!("outbound {kind} lost:"),
                format!(
                    "chat {} got {got}x (store holds {want}x) {:?}",
                    key.0,
                    short(&key.1)
                ),
            );
        }
    }
    row
}

/// Where the platform accepted `key` (chat, text) again after a kill: each pair of
/// acceptances with a kill in between, in seconds since the campaign began. None means the
/// copies did not straddle a kill.
fn accepted_near_kills(e: &Evidence, attempts: &[SendAttempt], key: &(u64, String)) -> String {
    let secs = |t: Instant| t.duration_since(e.began).as_secs_f64();
    let times: Vec<Instant> = attempts
        .iter()
        .filter(|a| (200..300).contains(&a.status) && a.to == key.0 && a.text == key.1)
        .map(|a| a.at)
        .collect();
    let mut pairs = Vec::new();
    for pair in times.windows(2) {
        for (k, d) in e.downtimes.iter().enumerate() {
            if pair[0] <= d.from && d.from <= pair[1] {
                pairs.push((
                    d.from - pair[0],
                    format!(
                        "accepted at {:.3} s, {} at {:.3} s, accepted again at {:.3} s",
                        secs(pair[0]),
                        d.name(k),
                        secs(d.from),
                        secs(pair[1])
                    ),
                ));
            }
        }
    }
    // A text the bot says often straddles many kills; the acceptance closest before a
    // kill is the telling one.
    pairs.sort();
    match pairs.first() {
        Some((_, pair)) => format!("; {pair}"),
        None => {
            let times: Vec<String> = times.iter().map(|t| format!("{:.3}", secs(*t))).collect();
            format!(
                "; no kill between two acceptances (accepted at {} s)",
                times.join(", ")
            )
        }
    }
}

fn short(text: &str) -> String {
    let t: String = text.chars().take(70).collect();
    if t.len() < text.len() {
        format!("{t}...")
    } else {
        t
    }
}
