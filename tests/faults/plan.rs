//! What the campaign does, fixed by its seed: how many kills and when, what each customer
//! writes and when, which messages are delivered twice, which platform calls fail. Only the
//! interleaving with the server's own timing is left to chance.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;

/// The campaign's settings, from the environment.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// `FAULT_KILLS` (default 20): SIGKILLs while the load runs.
    pub kills: usize,
    /// `FAULT_SEED` (default: from the clock, printed so a run can be repeated).
    pub seed: u64,
}

impl Settings {
    pub fn from_env() -> Settings {
        let number = |name: &str| {
            std::env::var(name).ok().map(|v| {
                v.trim()
                    .parse::<u64>()
                    .unwrap_or_else(|_| panic!("{name} must be a whole number, not {v:?}"))
            })
        };
        let seed = number("FAULT_SEED").unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 % 1_000_000)
                .unwrap_or(1)
        });
        Settings {
            kills: number("FAULT_KILLS").unwrap_or(20) as usize,
            seed,
        }
    }
}

/// The four doors a customer can knock on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Door {
    Rest,
    Widget,
    Telegram,
    Discord,
}

impl Door {
    pub const ALL: [Door; 4] = [Door::Rest, Door::Widget, Door::Telegram, Door::Discord];

    pub fn name(self) -> &'static str {
        match self {
            Door::Rest => "rest",
            Door::Widget => "widget",
            Door::Telegram => "telegram",
            Door::Discord => "discord",
        }
    }

    /// The letter of this door in a message's reference (`(ref w3.17)`).
    pub fn letter(self) -> char {
        match self {
            Door::Rest => 'r',
            Door::Widget => 'w',
            Door::Telegram => 't',
            Door::Discord => 'd',
        }
    }
}

/// Simulated customers on each door.
pub const CUSTOMERS_PER_DOOR: usize = 4;

/// How often customer `i` is upset: half the customers never are (their conversations
/// stay with the bot), the others now and then (queued, then taken by the agent).
pub fn upset_chance(i: usize) -> f64 {
    if i.is_multiple_of(2) {
        0.0
    } else {
        0.15
    }
}
/// How often a customer's message is deliberately delivered a second time.
pub const REPLAY_CHANCE: f64 = 0.12;

/// An independent random stream for one part of the plan.
pub fn rng(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// The stream of customer `i` on `door`.
pub fn customer_rng(seed: u64, door: Door, i: usize) -> StdRng {
    rng(seed, 1 + door as u64 * 1000 + i as u64)
}

/// The stream of the kill schedule and the platform failures.
pub fn campaign_rng(seed: u64) -> StdRng {
    rng(seed, 0)
}

/// A customer's message: routine questions, and for some customers now and then an upset
/// one that goes to a queue. The reference at the end makes every message unique, so that
/// a copy is visible in the store.
const ROUTINE: [&str; 10] = [
    "where is my order 10001",
    "has order 10002 shipped yet",
    "I want to return the shoes I bought",
    "how do I reset my password",
    "what is your refund policy",
    "can I change my delivery address",
    "do you have this jacket in blue",
    "how long does delivery take",
    "I would like to cancel order 10003",
    "thanks, that helps",
];
const UPSET: [&str; 3] = [
    "this is the third time I ask and nobody helps, I am furious, get me a human now",
    "I want to talk to a real person immediately, this is unacceptable",
    "you people are useless, my money is gone and I am angry",
];

/// The reference of message `m` of customer `i` on `door`.
pub fn reference(door: Door, i: usize, m: usize) -> String {
    format!("{}{i}.{m}", door.letter())
}

pub fn text(rng: &mut StdRng, reference: &str, upset: f64) -> String {
    let base = if rng.gen_bool(upset) {
        UPSET[rng.gen_range(0..UPSET.len())]
    } else {
        ROUTINE[rng.gen_range(0..ROUTINE.len())]
    };
    format!("{base} (ref {reference})")
}

/// The references in a stored message's text: one, or several when the server merged a
/// burst of messages into one (their texts one per line).
pub fn references_in(text: &str) -> Vec<&str> {
    text.match_indices("(ref ")
        .filter_map(|(at, open)| {
            let start = at + open.len();
            let end = start + text[start..].find(')')?;
            Some(&text[start..end])
        })
        .collect()
}

/// A pause drawn from `ms` milliseconds.
pub fn pause(rng: &mut StdRng, ms: std::ops::Range<u64>) -> Duration {
    Duration::from_millis(rng.gen_range(ms))
}

/// What a platform answers instead of success in one kill round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    None,
    /// 429 with `retry_after` 1 s.
    RateLimited,
    /// 500, `n` times in a row.
    ServerErrors(usize),
}

/// One round of the campaign: how long the server runs before its SIGKILL, and what each
/// platform answers its next sends with.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    pub run_for: Duration,
    pub telegram: Trouble,
    pub discord: Trouble,
}

pub fn rounds(seed: u64, kills: usize) -> Vec<Round> {
    let mut rng = campaign_rng(seed);
    let trouble = |rng: &mut StdRng| match rng.gen_range(0..6) {
        0 | 1 => Trouble::RateLimited,
        2 => Trouble::ServerErrors(1),
        3 => Trouble::ServerErrors(2),
        _ => Trouble::None,
    };
    (0..kills)
        .map(|_| Round {
            run_for: pause(&mut rng, 200..1500),
            telegram: trouble(&mut rng),
            discord: trouble(&mut rng),
        })
        .collect()
}
