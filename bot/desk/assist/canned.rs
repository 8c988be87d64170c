//! Canned replies: answers a team lead writes once (`prompts/canned_replies.toml`, built
//! into the binary; `assist.canned_replies` names a file of one's own), which an agent
//! searches, picks and edits in the console. They work without any LLM.
//!
//! Each reply's text is a minijinja template over a fixed set of variables
//! ([`VARIABLES`]). A value the conversation cannot fill renders as a visible placeholder
//! (`[customer name]`) and is false in an `{% if %}`, never an empty string or an error. A
//! file is checked whole when it is read (TOML, ids, templates, variables): a mistake is
//! an error naming the file and the line. A file that changes is read again on the next
//! use; a change that does not pass the checks is refused with a warning and the previous
//! replies stay in use.

use crate::commerce::Order;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use minijinja::Environment;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

/// The replies built into the binary.
pub const BUILTIN: &str = include_str!("../../../prompts/canned_replies.toml");
/// How the built-in file is named in errors.
const BUILTIN_NAME: &str = "prompts/canned_replies.toml (built in)";

/// Every variable a reply may use, with the placeholder shown when it is unknown.
pub const VARIABLES: [(&str, &str); 9] = [
    ("customer.name", "customer name"),
    ("customer.first_name", "customer name"),
    ("order.number", "order number"),
    ("order.state", "order status"),
    ("order.tracking_url", "tracking link"),
    ("order.carrier", "carrier"),
    ("order.tracking_number", "tracking number"),
    ("order.eta", "delivery date"),
    ("agent.name", "agent name"),
];

/// The default `assist.tracking_url`: where a parcel's tracking page is, with `{carrier}`
/// and `{tracking_number}` filled in.
pub const DEFAULT_TRACKING_URL: &str = "https://shop.example/track/{tracking_number}";

/// A file of canned replies that cannot be used: which file, which line, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("canned replies {file}{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
pub struct CannedError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

/// One reply as the lead wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CannedReply {
    pub id: String,
    pub title: String,
    /// The template.
    pub text: String,
    /// Lower-case id, title and text without template tags: what a search looks in.
    #[serde(skip)]
    haystack: String,
}

/// One reply filled in for a conversation, as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedReply {
    pub id: String,
    pub title: String,
    pub text: String,
}

/// What the replies may say about one conversation (each `None`: a placeholder).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplyFacts {
    pub customer_name: Option<String>,
    pub order_number: Option<String>,
    pub order_state: Option<String>,
    pub tracking_url: Option<String>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub eta: Option<String>,
    pub agent_name: Option<String>,
}

impl ReplyFacts {
    /// The facts of a conversation with the customer `customer_name`, about `order` (one
    /// the conversation may see), answered by `agent_name`; `tracking_url` is
    /// `assist.tracking_url`.
    pub fn new(
        customer_name: Option<&str>,
        order: Option<&Order>,
        agent_name: Option<&str>,
        tracking_url: &str,
    ) -> ReplyFacts {
        let shipment = order.and_then(|o| o.shipment.as_ref());
        ReplyFacts {
            customer_name: customer_name
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(String::from),
            order_number: order.map(|o| o.number.clone()),
            order_state: order.map(|o| o.state.words().to_string()),
            tracking_url: shipment
                .map(|s| tracking_link(tracking_url, &s.carrier, &s.tracking_number)),
            carrier: shipment.map(|s| s.carrier.clone()),
            tracking_number: shipment.map(|s| s.tracking_number.clone()),
            eta: shipment
                .filter(|s| s.delivered_on.is_none())
                .and_then(|s| s.eta)
                .map(|d| d.format("%A %-d %B").to_string()),
            agent_name: agent_name
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(String::from),
        }
    }

    fn first_name(&self) -> Option<String> {
        self.customer_name
            .as_deref()
            .and_then(|n| n.split_whitespace().next())
            .map(String::from)
    }

    /// The template context: every variable of [`VARIABLES`], known or a placeholder.
    fn context(&self) -> Value {
        let value = |v: Option<String>, label: &'static str| match v {
            Some(v) => Value::from(v),
            None => Value::from_object(Missing(label)),
        };
        let mut customer = BTreeMap::new();
        customer.insert("name", value(self.customer_name.clone(), "customer name"));
        customer.insert("first_name", value(self.first_name(), "customer name"));
        let mut order = BTreeMap::new();
        order.insert("number", value(self.order_number.clone(), "order number"));
        order.insert("state", value(self.order_state.clone(), "order status"));
        order.insert(
            "tracking_url",
            value(self.tracking_url.clone(), "tracking link"),
        );
        order.insert("carrier", value(self.carrier.clone(), "carrier"));
        order.insert(
            "tracking_number",
            value(self.tracking_number.clone(), "tracking number"),
        );
        order.insert("eta", value(self.eta.clone(), "delivery date"));
        let mut agent = BTreeMap::new();
        agent.insert("name", value(self.agent_name.clone(), "agent name"));
        let mut context = BTreeMap::new();
        context.insert("customer", Value::from(customer));
        context.insert("order", Value::from(order));
        context.insert("agent", Value::from(agent));
        Value::from(context)
    }

    /// Every value known (for checking a file: each template renders with real values).
    fn all_known() -> ReplyFacts {
        ReplyFacts {
            customer_name: Some("Emma Becker".into()),
            order_number: Some("10001".into()),
            order_state: Some("on its way".into()),
            tracking_url: Some("https://shop.example/track/JJD002553714997".into()),
            carrier: Some("DHL".into()),
            tracking_number: Some("JJD002553714997".into()),
            eta: Some("Thursday 26 November".into()),
            agent_name: Some("Ana".into()),
        }
    }
}

/// A value the conversation cannot fill: renders as `[label]`, false in an `if`.
#[derive(Debug)]
struct Missing(&'static str);

impl Object for Missing {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::NonEnumerable
    }

    fn is_true(self: &Arc<Self>) -> bool {
        false
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.0)
    }
}

/// `pattern` (`assist.tracking_url`) with `{carrier}` and `{tracking_number}` filled in,
/// each percent-encoded.
pub fn tracking_link(pattern: &str, carrier: &str, tracking_number: &str) -> String {
    pattern
        .replace("{carrier}", &encode(carrier))
        .replace("{tracking_number}", &encode(tracking_number))
}

/// Percent-encoding of everything but unreserved URL characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The file as TOML: `[[reply]]` tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    reply: Vec<toml::Spanned<RawReply>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReply {
    id: String,
    title: String,
    text: toml::Spanned<String>,
}

/// A set of canned replies, checked; cheap to share behind an `Arc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedReplies {
    replies: Vec<CannedReply>,
}

impl CannedReplies {
    /// The replies built into the binary.
    pub fn builtin() -> Arc<CannedReplies> {
        static BUILT_IN: OnceLock<Arc<CannedReplies>> = OnceLock::new();
        BUILT_IN
            .get_or_init(|| {
                Arc::new(
                    CannedReplies::parse(BUILTIN, BUILTIN_NAME)
                        .expect("the built-in canned replies are valid (a unit test checks)"),
                )
            })
            .clone()
    }

    /// The replies of `path` (`assist.canned_replies`), or the built-in ones without. A
    /// file is read again when its modification time or size changes; a change that does
    /// not pass the checks keeps the replies read before (with a warning), but a file that
    /// never passed is an error.
    pub fn load(path: Option<&Path>) -> Result<Arc<CannedReplies>, CannedError> {
        match path {
            None => Ok(CannedReplies::builtin()),
            Some(path) => load_file(path),
        }
    }

    /// Reads and checks a file's text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<CannedReplies, CannedError> {
        let error = |line: Option<usize>, message: String| CannedError {
            file: file.to_string(),
            line,
            message,
        };
        let parsed: File = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            error(line, e.message().trim().to_string())
        })?;
        if parsed.reply.is_empty() {
            return Err(error(
                None,
                "no replies: add at least one [[reply]] with id, title and text".into(),
            ));
        }
        let mut seen = HashSet::new();
        let mut replies = Vec::new();
        for spanned in parsed.reply {
            let line = line_of(text, spanned.span().start);
            let raw = spanned.into_inner();
            let id = raw.id.trim().to_string();
            let at = |message: String| error(Some(line), message);
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(at(format!(
                    "reply id `{id}` must be letters, digits, `-` or `_`"
                )));
            }
            if !seen.insert(id.clone()) {
                return Err(at(format!("reply id `{id}` is used twice")));
            }
            if raw.title.trim().is_empty() {
                return Err(at(format!("reply `{id}` has an empty title")));
            }
            let text_line = text_start_line(text, raw.text.span().start);
            let source = raw.text.into_inner();
            if source.trim().is_empty() {
                return Err(at(format!("reply `{id}` has an empty text")));
            }
            check_template(&source).map_err(|(template_line, message)| {
                error(
                    Some(text_line + template_line.saturating_sub(1)),
                    format!("reply `{id}`: {message}"),
                )
            })?;
            let haystack = format!("{id} {} {}", raw.title, strip_tags(&source)).to_lowercase();
            replies.push(CannedReply {
                id,
                title: raw.title.trim().to_string(),
                text: source,
                haystack,
            });
        }
        Ok(CannedReplies { replies })
    }

    pub fn all(&self) -> &[CannedReply] {
        &self.replies
    }

    /// The replies whose id, title or text hold every word of `query` (any case; a word
    /// may be the start of one: "refu" finds "refund"), in the file's order. An empty
    /// query finds them all.
    pub fn search(&self, query: &str) -> Vec<&CannedReply> {
        let words: Vec<String> = query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        self.replies
            .iter()
            .filter(|r| words.iter().all(|w| r.haystack.contains(w.as_str())))
            .collect()
    }

    /// `reply` filled in with `facts`.
    pub fn render(reply: &CannedReply, facts: &ReplyFacts) -> RenderedReply {
        let text = render_template(&reply.text, &facts.context()).unwrap_or_else(|e| {
            // Checked when the file was read, so this is not expected; the agent still gets
            // the lead's text to edit.
            tracing::warn!(reply = %reply.id, error = %e, "canned reply did not render");
            reply.text.clone()
        });
        RenderedReply {
            id: reply.id.clone(),
            title: reply.title.clone(),
            text: text.trim().to_string(),
        }
    }

    /// The replies matching `query` ([`CannedReplies::search`]), filled in with `facts`.
    pub fn find(&self, query: &str, facts: &ReplyFacts) -> Vec<RenderedReply> {
        self.search(query)
            .into_iter()
            .map(|r| CannedReplies::render(r, facts))
            .collect()
    }
}

fn environment() -> Environment<'static> {
    Environment::new()
}

fn render_template(source: &str, context: &Value) -> Result<String, minijinja::Error> {
    environment().render_str(source, context.clone())
}

/// Compiles a template, checks that it uses only [`VARIABLES`] and that it renders with
/// every value known and with none; `Err((line in the template, message))`.
fn check_template(source: &str) -> Result<(), (usize, String)> {
    let env = environment();
    let template = env
        .template_from_str(source)
        .map_err(|e| (e.line().unwrap_or(1), template_message(&e)))?;
    let known: HashSet<&str> = VARIABLES.iter().map(|(name, _)| *name).collect();
    let mut unknown: Vec<String> = template
        .undeclared_variables(true)
        .into_iter()
        .filter(|v| !known.contains(v.as_str()))
        .collect();
    unknown.sort();
    if let Some(first) = unknown.first() {
        let line = source
            .lines()
            .position(|l| l.contains(first.as_str()))
            .map_or(1, |i| i + 1);
        let names: Vec<&str> = VARIABLES.iter().map(|(name, _)| *name).collect();
        return Err((
            line,
            format!(
                "unknown variable `{first}`; a reply may use {}",
                names.join(", ")
            ),
        ));
    }
    for facts in [ReplyFacts::all_known(), ReplyFacts::default()] {
        template
            .render(facts.context())
            .map_err(|e| (e.line().unwrap_or(1), template_message(&e)))?;
    }
    Ok(())
}

fn template_message(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// The text without `{{ ... }}`, `{% ... %}` and `{# ... #}` (for searching).
fn strip_tags(source: &str) -> String {
    static TAGS: OnceLock<regex::Regex> = OnceLock::new();
    TAGS.get_or_init(|| regex::Regex::new(r"(?s)\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}").expect("tags"))
        .replace_all(source, " ")
        .into_owned()
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line a string value's first character is on: after its opening quotes, and after
/// the newline that TOML drops right after `"""` or `'''`.
fn text_start_line(text: &str, offset: usize) -> usize {
    let rest = &text[offset.min(text.len())..];
    let skip = if rest.starts_with("\"\"\"\n")
        || rest.starts_with("'''\n")
        || rest.starts_with("\"\"\"\r\n")
        || rest.starts_with("'''\r\n")
    {
        1
    } else {
        0
    };
    line_of(text, offset) + skip
}

/// A file's identity as last seen: a change of either means "read it again".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    modified: Option<SystemTime>,
    len: u64,
}

struct Cached {
    seen: Version,
    replies: Arc<CannedReplies>,
}

fn load_file(path: &Path) -> Result<Arc<CannedReplies>, CannedError> {
    static FILES: OnceLock<Mutex<HashMap<PathBuf, Cached>>> = OnceLock::new();
    let name = path.display().to_string();
    let unreadable = |e: std::io::Error| CannedError {
        file: name.clone(),
        line: None,
        message: format!("cannot be read: {e}"),
    };
    let files = FILES.get_or_init(|| Mutex::new(HashMap::new()));
    let meta = std::fs::metadata(path);
    let mut files = files.lock().expect("canned replies lock");
    let cached = files.get(path);
    let meta = match (meta, cached) {
        (Ok(meta), _) => meta,
        (Err(e), Some(cached)) => {
            tracing::warn!(path = %name, error = %e, "canned replies unreadable; keeping the replies read before");
            return Ok(cached.replies.clone());
        }
        (Err(e), None) => return Err(unreadable(e)),
    };
    let version = Version {
        modified: meta.modified().ok(),
        len: meta.len(),
    };
    if let Some(cached) = cached.filter(|c| c.seen == version) {
        return Ok(cached.replies.clone());
    }
    let read = std::fs::read_to_string(path)
        .map_err(unreadable)
        .and_then(|text| CannedReplies::parse(&text, &name));
    match (read, files.get_mut(path)) {
        (Ok(replies), _) => {
            let replies = Arc::new(replies);
            tracing::info!(path = %name, replies = replies.all().len(), "canned replies loaded");
            files.insert(
                path.to_path_buf(),
                Cached {
                    seen: version,
                    replies: replies.clone(),
                },
            );
            Ok(replies)
        }
        (Err(e), Some(cached)) => {
            tracing::warn!(error = %e, "canned replies changed but are invalid; keeping the replies read before");
            cached.seen = version;
            Ok(cached.replies.clone())
        }
        (Err(e), None) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commerce::{OrderState, Shipment};
    use chrono::NaiveDate;

    fn order() -> Order {
        Order {
            number: "10001".into(),
            customer_id: "C1001".into(),
            state: OrderState::Shipped,
            placed_on: NaiveDate::from_ymd_opt(2026, 11, 18).unwrap(),
            total: 189.0,
            currency: "EUR".into(),
            items: vec![],
            shipment: Some(Shipment {
                carrier: "DHL".into(),
                tracking_number: "JJD002553714997".into(),
                shipped_on: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
                eta: NaiveDate::from_ymd_opt(2026, 11, 26),
                delivered_on: None,
                delay_reason: None,
            }),
            refund: None,
        }
    }

    fn one(text: &str) -> CannedReplies {
        CannedReplies::parse(
            &format!("[[reply]]\nid = \"r\"\ntitle = \"R\"\ntext = \"\"\"\n{text}\"\"\"\n"),
            "test.toml",
        )
        .unwrap()
    }

    #[test]
    fn the_built_in_replies_are_valid_and_enough() {
        let replies = CannedReplies::builtin();
        let n = replies.all().len();
        assert!((8..=12).contains(&n), "{n} replies");
        for facts in [
            ReplyFacts::default(),
            ReplyFacts::new(
                Some("Emma Becker"),
                Some(&order()),
                Some("Ana"),
                DEFAULT_TRACKING_URL,
            ),
        ] {
            for r in replies.all() {
                let text = CannedReplies::render(r, &facts).text;
                assert!(!text.is_empty() && !text.contains("{{"), "{}: {text}", r.id);
            }
        }
    }

    #[test]
    fn a_reply_is_filled_in_with_the_conversation() {
        let replies = CannedReplies::builtin();
        let facts = ReplyFacts::new(
            Some("Emma Becker"),
            Some(&order()),
            Some("Ana"),
            DEFAULT_TRACKING_URL,
        );
        let tracking = replies.find("tracking link", &facts);
        assert_eq!(tracking.len(), 1, "{tracking:?}");
        assert_eq!(
            tracking[0].text,
            "Hi Emma, your order 10001 is on its way. You can follow the parcel here: \
             https://shop.example/track/JJD002553714997 (DHL, tracking number JJD002553714997)."
        );
        let late = replies.find("late delivery", &facts);
        assert!(
            late[0].text.contains("by Thursday 26 November."),
            "{}",
            late[0].text
        );
        let closing = replies.find("closing", &facts);
        assert!(closing[0].text.ends_with("— Ana"), "{}", closing[0].text);
    }

    #[test]
    fn unknown_values_are_visible_placeholders_and_false() {
        let replies = CannedReplies::builtin();
        let tracking = &replies.find("tracking", &ReplyFacts::default())[0];
        assert_eq!(
            tracking.text,
            "Hi [customer name], your order [order number] is [order status]. You can follow \
             the parcel here: [tracking link]."
        );
        let r =
            one("{% if order.eta %}by {{ order.eta }}{% else %}soon{% endif %}, {{ agent.name }}");
        let text = CannedReplies::render(&r.all()[0], &ReplyFacts::default()).text;
        assert_eq!(text, "soon, [agent name]");
        // A paid order: no shipment yet.
        let mut paid = order();
        paid.state = OrderState::Paid;
        paid.shipment = None;
        let facts = ReplyFacts::new(None, Some(&paid), None, DEFAULT_TRACKING_URL);
        let text = replies.find("tracking", &facts)[0].text.clone();
        assert!(text.contains("order 10001 is paid"), "{text}");
        assert!(text.contains("here: [tracking link]."), "{text}");
    }

    #[test]
    fn search_needs_every_word_in_any_case() {
        let replies = CannedReplies::builtin();
        let ids =
            |q: &str| -> Vec<String> { replies.search(q).iter().map(|r| r.id.clone()).collect() };
        assert_eq!(ids("").len(), replies.all().len());
        assert_eq!(ids("REFUND timing"), vec!["refund-timing"]);
        assert_eq!(ids("refu  Arrives"), vec!["refund-timing"]);
        assert!(ids("return").contains(&"return-label".to_string()));
        assert!(ids("return").contains(&"return-policy".to_string()));
        assert!(ids("nothing-like-this").is_empty());
        // Template tags are not searched.
        assert!(ids("first_name").is_empty());
    }

    #[test]
    fn tracking_links_encode_their_values() {
        assert_eq!(
            tracking_link(
                "https://shop.example/track/{carrier}/{tracking_number}",
                "Royal Mail",
                "AB 12/3"
            ),
            "https://shop.example/track/Royal%20Mail/AB%2012%2F3"
        );
    }

    #[test]
    fn mistakes_name_the_file_and_the_line() {
        let bad_toml = "[[reply]]\nid = \"a\"\ntitle = \"A\"\ntext = \"x\nbroken";
        let e = CannedReplies::parse(bad_toml, "mine.toml").unwrap_err();
        assert_eq!(e.file, "mine.toml");
        assert_eq!(e.line, Some(4), "{e}");
        assert!(
            e.to_string()
                .starts_with("canned replies mine.toml, line 4: "),
            "{e}"
        );

        let unknown_key = "[[reply]]\nid = \"a\"\ntitle = \"A\"\ntext = \"x\"\ncolour = \"red\"\n";
        let e = CannedReplies::parse(unknown_key, "mine.toml").unwrap_err();
        assert!(e.message.contains("colour"), "{e}");

        let unknown_variable = "[[reply]]\nid = \"a\"\ntitle = \"A\"\ntext = \"ok\"\n\n\
                                [[reply]]\nid = \"b\"\ntitle = \"B\"\ntext = \"\"\"\n\
                                Hello\n{{ order.total }}\n\"\"\"\n";
        let e = CannedReplies::parse(unknown_variable, "mine.toml").unwrap_err();
        assert_eq!(e.line, Some(11), "{e}");
        assert!(
            e.message
                .contains("reply `b`: unknown variable `order.total`"),
            "{e}"
        );

        let bad_template = "[[reply]]\nid = \"a\"\ntitle = \"A\"\ntext = \"{% if %}\"\n";
        let e = CannedReplies::parse(bad_template, "mine.toml").unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.starts_with("reply `a`: syntax error"), "{e}");

        let twice = "[[reply]]\nid = \"a\"\ntitle = \"A\"\ntext = \"x\"\n\
                     [[reply]]\nid = \"a\"\ntitle = \"B\"\ntext = \"y\"\n";
        let e = CannedReplies::parse(twice, "mine.toml").unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.message.contains("used twice"), "{e}");

        let e = CannedReplies::parse("", "mine.toml").unwrap_err();
        assert!(e.message.contains("no replies"), "{e}");
    }

    #[test]
    fn a_file_is_read_again_when_it_changes_and_a_broken_change_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("canned.toml");
        std::fs::write(
            &path,
            "[[reply]]\nid = \"a\"\ntitle = \"A\"\ntext = \"first\"\n",
        )
        .unwrap();
        let first = CannedReplies::load(Some(&path)).unwrap();
        assert_eq!(first.all()[0].text, "first");
        std::fs::write(
            &path,
            "[[reply]]\nid = \"a\"\ntitle = \"A\"\ntext = \"second, longer\"\n",
        )
        .unwrap();
        let second = CannedReplies::load(Some(&path)).unwrap();
        assert_eq!(second.all()[0].text, "second, longer");
        std::fs::write(
            &path,
            "[[reply]]\nid = \"a\"\ntitle = \"A\"\ntext = \"{{ oops }}\"\n",
        )
        .unwrap();
        let kept = CannedReplies::load(Some(&path)).unwrap();
        assert_eq!(kept.all()[0].text, "second, longer");

        let missing = dir.path().join("missing.toml");
        let e = CannedReplies::load(Some(&missing)).unwrap_err();
        assert!(e.to_string().contains("missing.toml"), "{e}");
        assert!(e.message.contains("cannot be read"), "{e}");
    }
}
