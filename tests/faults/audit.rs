//! The campaign's verdict, read from the store once the server is stopped, and from what the
//! customers and the fakes saw: every acknowledged inbound message stored exactly once,
//! every reply the store holds for a Telegram or Discord customer delivered exactly once,
//! and the queues intact.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use frontdesk::channels::format::Dialect;
use frontdesk::message::{ChannelKind, ConversationId, Speaker, Status};
use frontdesk::store::{ConversationRecord, QueueEntry, Store, StoredMessage};

use crate::agent;
use crate::customers::Sent;
use crate::outbound;
use crate::plan::{self, Door};
use crate::process::Downtime;
use crate::proxy::SendAttempt;

/// Examples printed per kind of problem.
pub(crate) const EXAMPLES: usize = 12;

/// What the store holds after the campaign.
pub struct Stored {
    pub conversations: Vec<(ConversationRecord, Vec<StoredMessage>)>,
    pub queue: Vec<QueueEntry>,
    /// Replies still waiting in the outbox, and replies a platform refused for good.
    pub outbox: usize,
    pub outbox_failed: usize,
}

impl Stored {
    /// Reads every conversation (listed from the store's records, read through the `Store`
    /// trait, whatever the engine), its messages, and the queues.
    pub async fn read(store: &dyn Store) -> Stored {
        let records = store.records().await.expect("read the store");
        let count = |table: &str| records.iter().filter(|r| r.table == table).count();
        let mut conversations = Vec::new();
        for r in records.iter().filter(|r| r.table == "conversations") {
            let id = ConversationId(r.key.clone());
            let record = store
                .conversation(&id)
                .await
                .expect("read a conversation")
                .expect("a listed conversation exists");
            let messages = store
                .messages(&id)
                .await
                .expect("read a conversation's messages");
            conversations.push((record, messages));
        }
        Stored {
            conversations,
            queue: store.queue_entries().await.expect("read the queues"),
            outbox: count("outbox"),
            outbox_failed: count("outbox_failed"),
        }
    }
}

/// One door's inbound figures.
#[derive(Debug, Default, Clone)]
pub struct InboundRow {
    pub sent: usize,
    pub acked: usize,
    /// Sent messages found in the store (once or more).
    pub stored: usize,
    /// Messages stored more than once, and the extra copies.
    pub duplicated: usize,
    pub extra_copies: usize,
    /// Acknowledged but not in the store.
    pub lost: usize,
    /// Stored under another channel or customer than the one that wrote it.
    pub misfiled: usize,
    /// Deliberate second deliveries.
    pub replays: usize,
    /// Sent again after a failure: REST and widget messages tried more than once, Telegram
    /// updates served more than once (Discord never sends an event again).
    pub retried: usize,
    /// Given up on by the client (REST, widget).
    pub refused: usize,
}

/// One platform's outbound figures, counted in platform messages (a long reply is split).
#[derive(Debug, Default, Clone)]
pub struct OutboundRow {
    /// Pieces of the replies the store holds for this platform's customers.
    pub stored: usize,
    /// Messages the fake received.
    pub delivered: usize,
    pub duplicated: usize,
    pub lost: usize,
    /// Queue-position notices beyond the stored ones (sent live, not part of the record).
    pub notices: usize,
    /// Bot answers not sent because an agent took the conversation after they were queued
    /// (held back by design; stored, written before the agent's last action).
    pub held_back: usize,
}

#[derive(Debug, Default, Clone)]
pub struct Queues {
    pub queued: usize,
    pub entries: usize,
    /// Queued conversations without an entry.
    pub missing: usize,
    /// Conversations with more than one entry.
    pub doubled: usize,
    /// Entries whose conversation is not queued (or does not exist).
    pub orphans: usize,
    /// Entries in another queue than the conversation's.
    pub wrong_queue: usize,
}

/// What was done to the server and the platforms.
#[derive(Debug, Default, Clone)]
pub struct Injected {
    pub kills: usize,
    pub rate_limited: [usize; 2],
    pub server_errors: [usize; 2],
    pub timeouts: [usize; 2],
    /// Send attempts the fakes answered with an error (injected ones, mostly).
    pub refused_attempts: [usize; 2],
}

/// A delivery a fake received: where it went (chat or channel) and its text, as sent.
pub type Delivery = (u64, String);

pub struct Evidence<'a> {
    pub sent: &'a [Sent],
    pub stored: &'a Stored,
    pub telegram: Vec<Delivery>,
    pub discord: Vec<Delivery>,
    /// Discord user -> their DM channel on the fake.
    pub dm_channel: &'a dyn Fn(u64) -> u64,
    /// When the fake wrote each Discord message id to the gateway.
    pub dispatched: &'a [(u64, Instant)],
    pub downtimes: &'a [Downtime],
    /// Every send each platform answered (Telegram, Discord), as the proxies saw them.
    pub attempts: [&'a [SendAttempt]; 2],
    /// When the campaign began, for times in the examples.
    pub began: Instant,
}

pub struct Report {
    pub inbound: BTreeMap<Door, InboundRow>,
    pub outbound: [OutboundRow; 2],
    pub queues: Queues,
    /// Customer messages in the store without a reference the campaign sent.
    pub strangers: usize,
    pub problems: Vec<String>,
}

impl Report {
    pub fn build(e: &Evidence) -> Report {
        let mut problems = Vec::new();
        let (inbound, strangers) = inbound(e, &mut problems);
        let telegram = outbound::check(
            e,
            ChannelKind::Telegram,
            Dialect::TelegramMarkdownV2,
            &e.telegram,
            e.attempts[0],
            &|user| user.parse::<u64>().ok(),
            &mut problems,
        );
        let discord = outbound::check(
            e,
            ChannelKind::Discord,
            Dialect::Discord,
            &e.discord,
            e.attempts[1],
            &|user| user.parse::<u64>().ok().map(e.dm_channel),
            &mut problems,
        );
        let queues = queues(e.stored, &mut problems);
        Report {
            inbound,
            outbound: [telegram, discord],
            queues,
            strangers,
            problems,
        }
    }

    pub fn lost(&self) -> usize {
        self.inbound.values().map(|r| r.lost).sum::<usize>()
            + self.outbound.iter().map(|r| r.lost).sum::<usize>()
    }

    pub fn duplicated(&self) -> usize {
        self.inbound.values().map(|r| r.duplicated).sum::<usize>()
            + self.outbound.iter().map(|r| r.duplicated).sum::<usize>()
    }

    pub fn damaged(&self) -> usize {
        let q = &self.queues;
        self.inbound.values().map(|r| r.misfiled).sum::<usize>()
            + q.missing
            + q.doubled
            + q.orphans
            + q.wrong_queue
    }

    pub fn print(&self, injected: &Injected, stored: &Stored, agent: &agent::Work) {
        println!();
        println!(
            "inbound      sent  acked  stored  duplicated  lost  misfiled  replays  retried  refused"
        );
        for (door, r) in &self.inbound {
            println!(
                "{:<10} {:>6} {:>6} {:>7} {:>7}/{:<3} {:>5} {:>9} {:>8} {:>8} {:>8}",
                door.name(),
                r.sent,
                r.acked,
                r.stored,
                r.duplicated,
                r.extra_copies,
                r.lost,
                r.misfiled,
                r.replays,
                r.retried,
                r.refused
            );
        }
        println!("  (duplicated: messages stored more than once / extra copies; replays: delivered twice on purpose;");
        println!(
            "   retried: sent again after a kill or error, by the client or by the Telegram fake)"
        );
        println!();
        println!(
            "outbound     stored  delivered  duplicated  lost  notices  held-back  429s  500s  timeouts  refused-attempts"
        );
        for (i, name) in ["telegram", "discord"].iter().enumerate() {
            let r = &self.outbound[i];
            println!(
                "{:<10} {:>8} {:>10} {:>11} {:>5} {:>8} {:>10} {:>5} {:>5} {:>9} {:>17}",
                name,
                r.stored,
                r.delivered,
                r.duplicated,
                r.lost,
                r.notices,
                r.held_back,
                injected.rate_limited[i],
                injected.server_errors[i],
                injected.timeouts[i],
                injected.refused_attempts[i]
            );
        }
        println!(
            "  (platform messages; notices: live queue-position updates the store does not keep;\n   held-back: bot answers an agent's takeover superseded before they were sent)"
        );
        println!();
        let q = &self.queues;
        println!(
            "queues: {} queued conversations, {} entries; missing {}, doubled {}, orphans {}, wrong queue {}",
            q.queued, q.entries, q.missing, q.doubled, q.orphans, q.wrong_queue
        );
        println!(
            "store: {} conversations, {} replies still in the outbox, {} refused for good, {} customer messages without a campaign reference",
            stored.conversations.len(),
            stored.outbox,
            stored.outbox_failed,
            self.strangers
        );
        println!(
            "agent {}: {} claims, {} replies, {} closes ({} calls failed or were cut by a kill)",
            agent::NAME,
            agent.claims,
            agent.replies,
            agent.closes,
            agent.failed
        );
        println!(
            "kills: {} SIGKILL; duplicate deliveries replayed: {}",
            injected.kills,
            self.inbound.values().map(|r| r.replays).sum::<usize>()
        );
        if !self.problems.is_empty() {
            println!();
            println!("problems (up to {EXAMPLES} examples of each kind):");
            for p in &self.problems {
                println!("  {p}");
            }
        }
    }
}

fn expected_kind(door: Door) -> ChannelKind {
    match door {
        Door::Rest => ChannelKind::Rest,
        Door::Widget => ChannelKind::Web,
        Door::Telegram => ChannelKind::Telegram,
        Door::Discord => ChannelKind::Discord,
    }
}

/// Whether a stored conversation's channel user is the customer who sent `s`.
fn same_customer(s: &Sent, channel: ChannelKind, user: &str) -> bool {
    channel == expected_kind(s.door)
        && match s.door {
            // Filed under the API key: "{key id}:{user_id}".
            Door::Rest => user.ends_with(&format!(":{}", s.user)),
            _ => user == s.user,
        }
}

/// Pushes `line` unless `EXAMPLES` of its kind are there already.
pub(crate) fn example(problems: &mut Vec<String>, kind: &str, line: String) {
    if problems.iter().filter(|p| p.starts_with(kind)).count() < EXAMPLES {
        problems.push(format!("{kind} {line}"));
    }
}

fn inbound(e: &Evidence, problems: &mut Vec<String>) -> (BTreeMap<Door, InboundRow>, usize) {
    // reference -> where each stored copy is filed
    let mut copies: HashMap<&str, Vec<(ChannelKind, &str, &ConversationId)>> = HashMap::new();
    let mut strangers = 0;
    for (c, messages) in &e.stored.conversations {
        for m in messages.iter().filter(|m| m.from == Speaker::Customer) {
            let references = plan::references_in(&m.text);
            if references.is_empty() {
                strangers += 1;
            }
            for r in references {
                copies
                    .entry(r)
                    .or_default()
                    .push((c.channel, &c.channel_user, &c.id));
            }
        }
    }
    let sent: HashSet<&str> = e.sent.iter().map(|s| s.reference.as_str()).collect();
    for r in copies.keys().filter(|r| !sent.contains(*r)) {
        example(
            problems,
            "inbound stranger:",
            format!("{r} is stored but no customer sent it"),
        );
    }
    let mut rows: BTreeMap<Door, InboundRow> = Door::ALL
        .into_iter()
        .map(|d| (d, InboundRow::default()))
        .collect();
    for s in e.sent {
        let row = rows.get_mut(&s.door).unwrap();
        row.sent += 1;
        row.acked += usize::from(s.acked);
        row.replays += s.replays as usize;
        row.retried += usize::from(s.tries > 1);
        row.refused += usize::from(s.refused.is_some());
        let found = copies
            .get(s.reference.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if !found.is_empty() {
            row.stored += 1;
        }
        if found.len() > 1 {
            row.duplicated += 1;
            row.extra_copies += found.len() - 1;
            let conversations: HashSet<_> = found.iter().map(|(_, _, id)| *id).collect();
            example(
                problems,
                "inbound duplicated:",
                format!(
                    "{} {} stored {} times ({} conversation(s)); acked {}, tries {}, replays {}{}",
                    s.door.name(),
                    s.reference,
                    found.len(),
                    conversations.len(),
                    s.acked,
                    s.tries,
                    s.replays,
                    discord_timing(e, s)
                ),
            );
        }
        if !s.acked && s.refused.is_none() {
            example(
                problems,
                "note, not acknowledged:",
                format!(
                    "{} {} (stored {}x){}",
                    s.door.name(),
                    s.reference,
                    found.len(),
                    discord_timing(e, s)
                ),
            );
        }
        if s.acked && found.is_empty() {
            row.lost += 1;
            example(
                problems,
                "inbound lost:",
                format!(
                    "{} {} acknowledged, not stored; tries {}{}",
                    s.door.name(),
                    s.reference,
                    s.tries,
                    discord_timing(e, s)
                ),
            );
        }
        if found
            .iter()
            .any(|(channel, user, _)| !same_customer(s, *channel, user))
        {
            row.misfiled += 1;
            example(
                problems,
                "inbound misfiled:",
                format!("{} {} filed under {:?}", s.door.name(), s.reference, found),
            );
        }
    }
    (rows, strangers)
}

/// For a Discord message: when the fake wrote it to the gateway, relative to the kills
/// around it (the gateway never sends an event again, so one caught by a kill is gone).
fn discord_timing(e: &Evidence, s: &Sent) -> String {
    let Some(id) = s.platform_id.filter(|_| s.door == Door::Discord) else {
        return String::new();
    };
    let times: Vec<Instant> = e
        .dispatched
        .iter()
        .filter(|(d, _)| *d == id)
        .map(|(_, t)| *t)
        .collect();
    let Some(first) = times.first().copied() else {
        return "; never dispatched".into();
    };
    let ms = |d: std::time::Duration| d.as_millis();
    let before = e
        .downtimes
        .iter()
        .enumerate()
        .rfind(|(_, d)| d.from <= first);
    let after = e.downtimes.iter().enumerate().find(|(_, d)| d.from > first);
    let mut when = Vec::new();
    if let Some((k, d)) = before {
        when.push(format!("{} ms after {}", ms(first - d.from), d.name(k)));
    }
    if let Some((k, d)) = after {
        when.push(format!("{} ms before {}", ms(d.from - first), d.name(k)));
    }
    format!(
        "; dispatched {} time(s), first {}",
        times.len(),
        when.join(" and ")
    )
}

fn queues(stored: &Stored, problems: &mut Vec<String>) -> Queues {
    let records: HashMap<&ConversationId, &ConversationRecord> = stored
        .conversations
        .iter()
        .map(|(c, _)| (&c.id, c))
        .collect();
    let mut entries: HashMap<&ConversationId, Vec<&QueueEntry>> = HashMap::new();
    for q in &stored.queue {
        entries.entry(&q.conversation_id).or_default().push(q);
    }
    let mut out = Queues {
        entries: stored.queue.len(),
        ..Queues::default()
    };
    for (c, _) in &stored.conversations {
        if c.status != Status::Queued {
            continue;
        }
        out.queued += 1;
        match entries.get(&c.id).map(Vec::len).unwrap_or(0) {
            0 => {
                out.missing += 1;
                example(
                    problems,
                    "queue missing:",
                    format!("{} is queued ({:?}) with no entry", c.id, c.queue),
                );
            }
            1 => {}
            n => {
                out.doubled += 1;
                example(
                    problems,
                    "queue doubled:",
                    format!("{} has {n} entries", c.id),
                );
            }
        }
    }
    for q in &stored.queue {
        match records.get(&q.conversation_id) {
            Some(c) if c.status == Status::Queued => {
                if c.queue.as_deref() != Some(q.queue.as_str()) {
                    out.wrong_queue += 1;
                    example(
                        problems,
                        "queue wrong:",
                        format!("{} waits in {} but names {:?}", c.id, q.queue, c.queue),
                    );
                }
            }
            Some(c) => {
                out.orphans += 1;
                example(
                    problems,
                    "queue orphan:",
                    format!("entry in {} for {} which is {}", q.queue, c.id, c.status),
                );
            }
            None => {
                out.orphans += 1;
                example(
                    problems,
                    "queue orphan:",
                    format!("entry in {} for unknown {}", q.queue, q.conversation_id),
                );
            }
        }
    }
    out
}
