//! What every target shares: the budget, the runner that counts and reports, and the
//! generators (arbitrary text with the characters that break parsers, JSON of arbitrary
//! shape or of a given one, edits that damage a valid input).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::BoxedStrategy;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use serde_json::{Map, Number, Value};

/// Inputs per target when `FUZZ_CASES` is not set.
pub const DEFAULT_CASES: u32 = 2_000;

/// Inputs per target: `FUZZ_CASES`, else [`DEFAULT_CASES`].
pub fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// The run's seed: `FUZZ_SEED`, else a random one (printed, so that a run can be repeated).
pub fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        std::env::var("FUZZ_SEED")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(rand::random)
    })
}

/// A target's own seed, derived from the run's and its name, so targets draw different inputs.
fn target_seed(name: &str) -> u64 {
    name.bytes().fold(seed() ^ 0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs `test` on `cases` inputs drawn from `strategy`. A panic or a failed check is shrunk
/// to a minimal input and fails the test with it; at the end the target prints what it
/// tried, and how long it took.
pub fn fuzz<S>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value, &Tally) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: Debug,
{
    let config = Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(target_seed(name)),
        max_shrink_time: 120_000,
        max_global_rejects: cases.saturating_mul(4).max(1024),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let tried = AtomicUsize::new(0);
    let tally = Tally::default();
    let started = Instant::now();
    let result = runner.run(&strategy, |input| {
        tried.fetch_add(1, Ordering::Relaxed);
        test(input, &tally)
    });
    // Straight to stderr, not `eprintln!`: the test harness captures the latter for passing
    // tests, and the budget report is wanted on every run.
    let _ = writeln!(
        std::io::stderr(),
        "fuzz {name}: {} inputs tried in {:.2} s ({} cases asked; FUZZ_SEED={}){}",
        tried.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        cases,
        seed(),
        tally.summary()
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, input)) => panic!(
            "fuzz {name} failed: {why}\nminimal input: {input:#?}\nrepeat with FUZZ_SEED={}",
            seed()
        ),
        Err(TestError::Abort(why)) => panic!("fuzz {name} stopped: {why}"),
    }
}

/// How a target's inputs fared (parsed, refused, answered 200...), printed with its
/// summary: it shows how deep the inputs went, not only that nothing panicked.
/// With `FUZZ_VERBOSE=1`, a few examples of each outcome noted with [`Tally::note_with`]
/// are printed too (to see why inputs are refused when tuning a generator).
#[derive(Default)]
pub struct Tally {
    counts: Mutex<BTreeMap<&'static str, usize>>,
    examples: Mutex<BTreeMap<&'static str, Vec<String>>>,
}

impl Tally {
    pub fn note(&self, outcome: &'static str) {
        *self.counts.lock().unwrap().entry(outcome).or_default() += 1;
    }

    /// Notes `outcome` and keeps `detail` as an example of it (only with `FUZZ_VERBOSE`).
    pub fn note_with(&self, outcome: &'static str, detail: impl FnOnce() -> String) {
        self.note(outcome);
        if std::env::var_os("FUZZ_VERBOSE").is_some() {
            let mut examples = self.examples.lock().unwrap();
            let kept = examples.entry(outcome).or_default();
            if kept.len() < 5 {
                kept.push(detail());
            }
        }
    }

    fn summary(&self) -> String {
        let counts = self.counts.lock().unwrap();
        if counts.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let mut out = format!(": {}", parts.join(", "));
        for (outcome, examples) in self.examples.lock().unwrap().iter() {
            for e in examples {
                out.push_str(&format!("\n    {outcome}: {e}"));
            }
        }
        out
    }
}

/// Fails the case with `what` unless `ok`.
pub fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if ok {
        Ok(())
    } else {
        Err(TestCaseError::fail(what()))
    }
}

/// The real server (keyword NLU) on `dir`, its abuse limits off: the targets fuzz what the
/// server reads, and every input must reach the parsers rather than a 429.
pub async fn serve(dir: &std::path::Path) -> crate::support::server::TestServer {
    let mut config = crate::support::server::config(dir);
    config.limits = frontdesk::config::LimitsConfig::unlimited();
    crate::support::server::serve_with(config, crate::support::nlu::KeywordNlu).await
}

/// A multi-threaded runtime for the targets that drive a real server.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ------------------------------------------------------------------------------ text

/// Words that make parsers of customer text, tokens and files take unusual paths: commands,
/// order numbers, money, dates (with case-folding look-alikes such as the long s `ſ`),
/// digits of other scripts, invisible and right-to-left characters, combining marks,
/// emoji, quotes and the syntax of JSON, YAML and TOML.
const WORDS: &[&str] = &[
    "/link",
    "/link@frontdesk_bot",
    "/LINK",
    "/start",
    "/start@shop_bot",
    "/linking",
    "123456",
    "order",
    "order no.",
    "#10234",
    "ORD-10234",
    "ord_99999",
    "10234",
    "٣٤٥٦٧",
    "１２３４５",
    "$12.50",
    "12,50 €",
    "1.200,50",
    "US$",
    "£",
    "¥",
    "€",
    "usd",
    "bucks",
    "quid",
    "tomorrow",
    "tmrw",
    "yeſterday",
    "day after tomorrow",
    "next",
    "last",
    "monday",
    "MONDAY",
    "ſunday",
    "tueſday",
    "wedneſday",
    "in",
    "3",
    "999",
    "days",
    "weeks",
    "wee\u{212a}s",
    "ago",
    "2026-02-30",
    "2026-13-01",
    "0000-01-01",
    "31/12/2026",
    "29.02.2023",
    "12/03/26",
    "march",
    "3rd of",
    "ſep",
    "the",
    "ada@example.com",
    "x@y",
    "@",
    "+49 170 1234567",
    "zip",
    "invoice",
    "refund",
    "agent",
    "furious",
    "!!!",
    "\u{0}",
    "\u{7f}",
    "\u{200b}",
    "\u{202e}",
    "\u{feff}",
    "\u{fffd}",
    "\u{10ffff}",
    "😡",
    "👩\u{200d}👩\u{200d}👧",
    "é",
    "e\u{301}",
    "İ",
    "ß",
    "ǅ",
    "\r\n",
    "\t",
    "  ",
    "\"",
    "'",
    "\\",
    "\\u0000",
    "{",
    "}",
    "{{",
    "}}",
    "{order_number}",
    "[",
    "]",
    "#",
    ": ",
    "- ",
    "=",
    "&anchor",
    "*anchor",
    "!!binary",
    "---",
    "null",
    "true",
    "0",
    "-1",
    "99999999999999999999",
    "1e400",
    "NaN",
];

/// One of [`WORDS`].
pub fn word() -> BoxedStrategy<String> {
    proptest::sample::select(WORDS)
        .prop_map(str::to_string)
        .boxed()
}

/// Characters from the whole of Unicode (controls, surrogate neighbours, private use and
/// unassigned code points included).
pub fn any_chars(max: usize) -> BoxedStrategy<String> {
    prop::collection::vec(any::<char>(), 0..=max)
        .prop_map(String::from_iter)
        .boxed()
}

/// Words of [`WORDS`] and arbitrary ones, glued by separators.
pub fn phrase() -> BoxedStrategy<String> {
    let piece = prop_oneof![3 => word(), 1 => "\\PC{1,8}", 1 => any_chars(3)];
    let sep = proptest::sample::select(&[" ", " ", " ", "", "\n", ",", ".", "/", "-", ":"][..]);
    prop::collection::vec((piece, sep), 0..12)
        .prop_map(|parts| {
            parts
                .into_iter()
                .flat_map(|(p, s)| [p, s.to_string()])
                .collect()
        })
        .boxed()
}

/// Text a customer, a platform or a file might send: arbitrary Unicode, printable text,
/// phrases of tricky words, and long runs (over the length limits).
pub fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => phrase(),
        2 => any_chars(40),
        2 => "\\PC{0,40}",
        1 => ("[a-z !?.]{1,3}", 600usize..2_400).prop_map(|(s, n)| s.repeat(n / s.len().max(1))),
    ]
    .boxed()
}

// ------------------------------------------------------------------------------ JSON

/// Numbers at the edges of what JSON readers map to integers and floats.
pub fn odd_number() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::from(0)),
        Just(Value::from(-1)),
        Just(Value::from(1)),
        Just(Value::from(i64::MIN)),
        Just(Value::from(i64::MAX)),
        Just(Value::from(u64::MAX)),
        Just(Value::from(i32::MAX as i64 + 1)),
        Just(Value::from(u32::MAX as u64 + 1)),
        Just(Value::from((1u64 << 53) + 1)),
        Just(Value::from(0.5)),
        Just(Value::from(-0.0)),
        Just(Value::from(1e300)),
        Just(Value::from(f64::MIN_POSITIVE)),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
    ]
    .boxed()
}

/// An object key: one a parser knows (so that values of the wrong kind meet its fields),
/// or an arbitrary one.
pub fn key() -> BoxedStrategy<String> {
    const KEYS: &[&str] = &[
        "type",
        "id",
        "text",
        "token",
        "customer_token",
        "user_id",
        "name",
        "password",
        "scope",
        "customer_id",
        "exp",
        "kind",
        "sub",
        "iat",
        "message",
        "chat",
        "date",
        "update_id",
        "message_id",
        "from",
        "op",
        "t",
        "s",
        "d",
        "content",
        "author",
        "channel_id",
        "guild_id",
        "timestamp",
        "bot",
        "username",
    ];
    prop_oneof![
        3 => proptest::sample::select(KEYS).prop_map(str::to_string),
        1 => "\\PC{0,8}",
        1 => any_chars(4),
    ]
    .boxed()
}

/// A JSON value of any shape, up to a few levels deep.
pub fn json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => odd_number(),
        3 => text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A string value (mostly [`text`]).
pub fn string() -> BoxedStrategy<Value> {
    text().prop_map(Value::String).boxed()
}

/// Values of some shape (an object of given fields, a list of them): `valid` ones, with
/// everything the parser needs present and of the right kind, nested shapes valid too (so
/// that inputs get past the parser to the code that reads what it parsed), and `any` ones,
/// damaged at any level. [`Shape::mixed`] draws half from each.
#[derive(Clone)]
pub struct Shape {
    valid: BoxedStrategy<Value>,
    any: BoxedStrategy<Value>,
}

impl Shape {
    pub fn valid(&self) -> BoxedStrategy<Value> {
        self.valid.clone()
    }

    pub fn mixed(&self) -> BoxedStrategy<Value> {
        prop_oneof![self.valid.clone(), self.any.clone()].boxed()
    }
}

/// A value strategy as a shape: whatever it draws counts as valid.
impl From<BoxedStrategy<Value>> for Shape {
    fn from(s: BoxedStrategy<Value>) -> Shape {
        Shape {
            valid: s.clone(),
            any: s,
        }
    }
}

/// A field of a generated object: its shape, and whether the parser can do without it.
pub struct Field {
    shape: Shape,
    optional: bool,
}

/// A field the parser needs (see [`shape`]).
pub fn field(right: impl Into<Shape>) -> Field {
    Field {
        shape: right.into(),
        optional: false,
    }
}

/// A field the parser can do without (see [`shape`]).
pub fn optional(right: impl Into<Shape>) -> Field {
    Field {
        shape: right.into(),
        optional: true,
    }
}

impl Field {
    /// The field in a damaged object: absent, of its shape (valid or not), or anything.
    pub fn damaged(&self) -> BoxedStrategy<Option<Value>> {
        let absent = if self.optional { 4 } else { 1 };
        let right = if self.optional { 3 } else { 6 };
        prop_oneof![
            absent => Just(None),
            right => self.shape.mixed().prop_map(Some),
            2 => json().prop_map(Some),
        ]
        .boxed()
    }

    /// The field in a valid object: present and valid (optional ones half of the time).
    fn valid(&self) -> BoxedStrategy<Option<Value>> {
        if self.optional {
            prop::option::of(self.shape.valid.clone()).boxed()
        } else {
            self.shape.valid.clone().prop_map(Some).boxed()
        }
    }
}

/// An object of the given fields: valid ones (every needed field present and valid), and
/// damaged ones (each field absent, of its shape or anything at all, and now and then a
/// stray extra key).
pub fn shape(fields: Vec<(&'static str, Field)>) -> Shape {
    let names: Vec<&'static str> = fields.iter().map(|(n, _)| *n).collect();
    let valid: Vec<_> = fields.iter().map(|(_, f)| f.valid()).collect();
    let damaged: Vec<_> = fields.iter().map(|(_, f)| f.damaged()).collect();
    let build = move |(values, extra): (Vec<Option<Value>>, Option<(String, Value)>)| {
        let mut map = Map::new();
        for (name, value) in names.iter().zip(values) {
            if let Some(value) = value {
                map.insert(name.to_string(), value);
            }
        }
        if let Some((k, v)) = extra {
            map.insert(k, v);
        }
        Value::Object(map)
    };
    Shape {
        valid: (valid, Just(None)).prop_map(build.clone()).boxed(),
        any: (damaged, prop::option::weighted(0.15, (key(), json())))
            .prop_map(build)
            .boxed(),
    }
}

/// [`shape`], drawn half valid, half damaged.
pub fn object(fields: Vec<(&'static str, Field)>) -> BoxedStrategy<Value> {
    shape(fields).mixed()
}

/// A list of `len` items of a shape: valid lists hold valid items.
pub fn list(item: &Shape, len: std::ops::Range<usize>) -> Shape {
    Shape {
        valid: prop::collection::vec(item.valid.clone(), len.clone())
            .prop_map(Value::Array)
            .boxed(),
        any: prop::collection::vec(item.mixed(), len)
            .prop_map(Value::Array)
            .boxed(),
    }
}

/// Bytes of a body or frame: a value of the expected shape as JSON, the same JSON damaged
/// by a few edits, JSON of any shape, or arbitrary bytes.
pub fn json_bytes(shaped: BoxedStrategy<Value>) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        5 => shaped.clone().prop_map(|v| v.to_string().into_bytes()),
        2 => (shaped, edits()).prop_map(|(v, e)| mutate(&v.to_string(), &e).into_bytes()),
        1 => json().prop_map(|v| v.to_string().into_bytes()),
        2 => prop::collection::vec(any::<u8>(), 0..256),
    ]
    .boxed()
}

// ------------------------------------------------------------------------------ edits

/// One damaging edit of a valid input (a token, a shipped file, a JSON body).
#[derive(Debug, Clone)]
pub enum Edit {
    /// Cut everything from here on.
    Truncate(Index),
    /// Remove up to n bytes.
    Delete(Index, u8),
    /// Insert a fragment.
    Insert(Index, String),
    /// Flip one bit of one byte.
    FlipBit(Index, u8),
    /// Overwrite one byte.
    SetByte(Index, u8),
    DuplicateLine(Index),
    DeleteLine(Index),
    SwapLines(Index, Index),
    /// Replace a run of digits with another number (or something that is not one).
    Number(Index, String),
    /// Change the indentation of a line.
    Indent(Index, u8),
}

/// Fragments worth inserting: syntax of the formats read, quotes, separators, odd chars.
fn fragment() -> BoxedStrategy<String> {
    prop_oneof![
        3 => word(),
        2 => proptest::sample::select(&[
            "\n", "\n  ", "\n- ", ": ", "- \"\"", "\"", "'", "#", " #", "[", "]", "{", "}", "=",
            "==", ",", ".", "_", "fd_", "&a ", "*a", "<<: *a", "!!str ", "|\n", ">\n", "---\n",
            "...\n", "%YAML 1.2\n", "[[rules]]\n", "[queues.x]\n", "\\", "\\u0000", "\u{0}",
            "inf", "nan", "-inf", "1e999", "0x1F", "1_000", "\t",
        ][..])
        .prop_map(str::to_string),
        1 => any_chars(3),
    ]
    .boxed()
}

pub fn edit() -> BoxedStrategy<Edit> {
    prop_oneof![
        any::<Index>().prop_map(Edit::Truncate),
        (any::<Index>(), 1u8..16).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<Index>(), fragment()).prop_map(|(i, s)| Edit::Insert(i, s)),
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Edit::FlipBit(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::SetByte(i, b)),
        any::<Index>().prop_map(Edit::DuplicateLine),
        any::<Index>().prop_map(Edit::DeleteLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (any::<Index>(), odd_number_text()).prop_map(|(i, n)| Edit::Number(i, n)),
        (any::<Index>(), 0u8..6).prop_map(|(i, n)| Edit::Indent(i, n)),
    ]
    .boxed()
}

/// One to four edits.
pub fn edits() -> BoxedStrategy<Vec<Edit>> {
    prop::collection::vec(edit(), 1..=4).boxed()
}

fn odd_number_text() -> BoxedStrategy<String> {
    prop_oneof![
        proptest::sample::select(
            &[
                "0",
                "-0",
                "-1",
                "1.5",
                "1e309",
                "-1e309",
                "nan",
                "inf",
                "-inf",
                "0x10",
                "1_000",
                "18446744073709551616",
                "9223372036854775808",
                "-9223372036854775809",
                "\"3\"",
                "[]",
                "",
                " ",
            ][..]
        )
        .prop_map(str::to_string),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
    ]
    .boxed()
}

/// `seed` after `edits`, byte by byte (bytes that are no longer UTF-8 become U+FFFD).
pub fn mutate(seed: &str, edits: &[Edit]) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for edit in edits {
        apply(&mut bytes, edit);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    let len = bytes.len();
    match edit {
        Edit::Truncate(i) => bytes.truncate(i.index(len + 1)),
        Edit::Delete(i, n) if len > 0 => {
            let at = i.index(len);
            let end = (at + *n as usize).min(len);
            bytes.drain(at..end);
        }
        Edit::Insert(i, s) => {
            let at = i.index(len + 1);
            bytes.splice(at..at, s.bytes());
        }
        Edit::FlipBit(i, bit) if len > 0 => bytes[i.index(len)] ^= 1 << bit,
        Edit::SetByte(i, b) if len > 0 => bytes[i.index(len)] = *b,
        Edit::DuplicateLine(i) => {
            let mut ls = lines(bytes);
            let at = i.index(ls.len());
            ls.insert(at, ls[at].clone());
            *bytes = ls.join(&b'\n');
        }
        Edit::DeleteLine(i) => {
            let mut ls = lines(bytes);
            ls.remove(i.index(ls.len()));
            *bytes = ls.join(&b'\n');
        }
        Edit::SwapLines(a, b) => {
            let mut ls = lines(bytes);
            let (a, b) = (a.index(ls.len()), b.index(ls.len()));
            ls.swap(a, b);
            *bytes = ls.join(&b'\n');
        }
        Edit::Number(i, number) => {
            let mut runs = Vec::new();
            let mut at = 0;
            while at < len {
                if bytes[at].is_ascii_digit() {
                    let start = at;
                    while at < len && bytes[at].is_ascii_digit() {
                        at += 1;
                    }
                    runs.push((start, at));
                } else {
                    at += 1;
                }
            }
            if !runs.is_empty() {
                let (start, end) = runs[i.index(runs.len())];
                bytes.splice(start..end, number.bytes());
            }
        }
        Edit::Indent(i, n) => {
            let mut ls = lines(bytes);
            let at = i.index(ls.len());
            let line = &ls[at];
            let body: Vec<u8> = line.iter().skip_while(|b| **b == b' ').copied().collect();
            ls[at] = std::iter::repeat_n(b' ', *n as usize).chain(body).collect();
            *bytes = ls.join(&b'\n');
        }
        _ => {}
    }
}
