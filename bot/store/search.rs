//! [`ConversationSearch`]: agents find past and present conversations by customer, order
//! number, words said and a date window. Every engine answers the same query the same way
//! (checked by the conformance suite); this file holds the query, the answer and the
//! matching rules both engines share.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ConversationRecord, StoreError};

/// The most conversations one search returns.
pub const MAX_SEARCH_LIMIT: usize = 100;
/// The longest text any one search field may hold, in characters.
pub const MAX_SEARCH_TEXT: usize = 200;
/// The longest order number searched for.
pub const MAX_ORDER_LEN: usize = 64;

/// What to look for; every field given must match (none given: nothing is searched).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchQuery {
    /// Part of the customer's id, name, email or channel user id (any case).
    pub customer: Option<String>,
    /// An order number: the conversation's `order` slot, or a message mentioning it as a
    /// whole word ("10001" does not find "100012").
    pub order: Option<String>,
    /// Words any message of the conversation contains (any case).
    pub text: Option<String>,
    /// The conversation was active at or after this time (last changed then or later).
    pub from: Option<DateTime<Utc>>,
    /// The conversation started before this time.
    pub to: Option<DateTime<Utc>>,
    /// At most this many conversations, newest changed first (at most [`MAX_SEARCH_LIMIT`]).
    pub limit: usize,
}

impl SearchQuery {
    /// Whether the query asks for anything at all.
    pub fn is_empty(&self) -> bool {
        self.customer.is_none()
            && self.order.is_none()
            && self.text.is_none()
            && self.from.is_none()
            && self.to.is_none()
    }

    /// Why the query cannot be run, in words for whoever typed it; `None` when it can.
    pub fn problem(&self) -> Option<String> {
        if self.is_empty() {
            return Some(
                "say what to look for: customer, order, text, or a date window (from, to)".into(),
            );
        }
        if self.limit == 0 || self.limit > MAX_SEARCH_LIMIT {
            return Some(format!("limit must be between 1 and {MAX_SEARCH_LIMIT}"));
        }
        for (name, value) in [
            ("customer", &self.customer),
            ("order", &self.order),
            ("text", &self.text),
        ] {
            let Some(v) = value else { continue };
            if v.trim().is_empty() {
                return Some(format!("{name} is empty: leave it out or give a value"));
            }
            if v.chars().count() > MAX_SEARCH_TEXT {
                return Some(format!(
                    "{name} is longer than {MAX_SEARCH_TEXT} characters: search for a shorter part"
                ));
            }
        }
        if let Some(order) = &self.order {
            if !is_order_number(order) {
                return Some(format!(
                    "order must be an order number: letters, digits, '-', '_' or '#', at most \
                     {MAX_ORDER_LEN} characters"
                ));
            }
        }
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from >= to {
                return Some("from must be before to".into());
            }
        }
        None
    }

    /// Whether `r` was active in the date window.
    pub fn in_window(&self, r: &ConversationRecord) -> bool {
        self.from.is_none_or(|from| r.updated >= from) && self.to.is_none_or(|to| r.created < to)
    }
}

/// One conversation found.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub conversation: ConversationRecord,
    /// The first message that matched the text (else the order), cut around the match.
    pub snippet: Option<String>,
}

/// What a search found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchResults {
    pub hits: Vec<SearchHit>,
    /// `false` when the engine stopped at its bound before looking at every conversation
    /// (narrow the search: a date window, a customer).
    pub complete: bool,
}

impl SearchResults {
    /// Nothing found, and nothing left to look at (a query with a problem finds nothing).
    pub fn nothing() -> SearchResults {
        SearchResults {
            hits: Vec::new(),
            complete: true,
        }
    }
}

/// Part of every [`super::Store`].
#[async_trait]
pub trait ConversationSearch {
    /// The conversations matching `query` (checked with [`SearchQuery::problem`] first: a
    /// query with a problem finds nothing), newest changed first.
    async fn search_conversations(&self, query: &SearchQuery) -> Result<SearchResults, StoreError>;
}

/// Letters, digits, '-', '_', '#'; 1 to [`MAX_ORDER_LEN`] characters.
pub fn is_order_number(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ORDER_LEN
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '#'))
}

/// Whether `needle` (lower case) is part of `hay`, in any case.
pub fn contains_folded(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(needle)
}

/// Whether `text` mentions order `order` as a whole word (any case).
pub fn mentions_order(text: &str, order: &str) -> bool {
    find_order(text, order).is_some()
}

/// The byte offset of the first whole-word mention of `order` in `text`.
fn find_order(text: &str, order: &str) -> Option<usize> {
    let (hay, needle) = (text.to_ascii_lowercase(), order.to_ascii_lowercase());
    let mut from = 0;
    while let Some(i) = hay[from..].find(&needle) {
        let start = from + i;
        let end = start + needle.len();
        let before = hay[..start].chars().next_back();
        let after = hay[end..].chars().next();
        if !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric) {
            return Some(start);
        }
        from = start + hay[start..].chars().next().map_or(1, char::len_utf8);
    }
    None
}

/// The pattern PostgreSQL's `~*` reads as a whole-word mention of `order` (an order number
/// holds no character the pattern would read as an operator).
pub fn order_regex(order: &str) -> String {
    format!("(^|[^[:alnum:]]){order}($|[^[:alnum:]])")
}

/// `ILIKE` pattern: `text` anywhere, its `%`, `_` and `\` meaning themselves.
pub fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// How many characters of a message a snippet shows either side of the match.
const SNIPPET_SIDE: usize = 60;

/// Up to [`SNIPPET_SIDE`] characters either side of the first place `text` mentions the
/// query's text (else its order), with "…" where it was cut.
pub fn snippet(text: &str, query: &SearchQuery) -> String {
    let at = query
        .text
        .as_deref()
        .and_then(|t| find_folded(text, &t.trim().to_lowercase()))
        .or_else(|| {
            query
                .order
                .as_deref()
                .and_then(|o| find_order(text, o.trim()))
        })
        .unwrap_or(0);
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let centre = chars.iter().position(|(i, _)| *i >= at).unwrap_or(0);
    let start = centre.saturating_sub(SNIPPET_SIDE);
    let end = (centre + SNIPPET_SIDE * 2).min(chars.len());
    let mut out: String = chars[start..end].iter().map(|(_, c)| c).collect();
    if start > 0 {
        out.insert(0, '…');
    }
    if end < chars.len() {
        out.push('…');
    }
    out
}

/// The byte offset in `text` where `needle` (lower case) starts, in any case.
fn find_folded(text: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    text.char_indices()
        .map(|(i, _)| i)
        .find(|&i| text[i..].to_lowercase().starts_with(needle))
}

/// The query's fields as both engines compare them: trimmed, the customer and text in lower
/// case.
pub(crate) struct Folded {
    pub(crate) customer: Option<String>,
    pub(crate) order: Option<String>,
    pub(crate) text: Option<String>,
}

impl Folded {
    pub(crate) fn of(q: &SearchQuery) -> Folded {
        let fold = |v: &Option<String>| v.as_deref().map(|s| s.trim().to_lowercase());
        Folded {
            customer: fold(&q.customer),
            order: q.order.as_deref().map(|s| s.trim().to_string()),
            text: fold(&q.text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_is_found_as_a_whole_word_only() {
        assert!(mentions_order("where is 10001?", "10001"));
        assert!(mentions_order("order #A-77 please", "a-77"));
        assert!(!mentions_order("where is 100012?", "10001"));
        assert!(!mentions_order("ref x10001", "10001"));
        assert!(mentions_order("ref x10001 and 10001", "10001"));
        assert!(!is_order_number("10001; drop"));
        assert!(!is_order_number(""));
    }

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn a_snippet_is_cut_around_the_match() {
        let q = SearchQuery {
            text: Some("Refund".into()),
            ..Default::default()
        };
        let long = format!("{} please refund me {}", "a".repeat(200), "b".repeat(200));
        let s = snippet(&long, &q);
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains("refund me"), "{s}");
        assert!(s.chars().count() <= SNIPPET_SIDE * 3 + 2);
        assert_eq!(snippet("short text", &q), "short text");
    }

    #[test]
    fn problems_are_named() {
        let ok = SearchQuery {
            text: Some("refund".into()),
            limit: 20,
            ..Default::default()
        };
        assert_eq!(ok.problem(), None);
        let long = SearchQuery {
            text: Some("x".repeat(MAX_SEARCH_TEXT + 1)),
            ..ok.clone()
        };
        assert!(long.problem().unwrap().contains("longer than"));
        assert!(SearchQuery {
            limit: 20,
            ..Default::default()
        }
        .problem()
        .is_some());
        let too_many = SearchQuery { limit: 101, ..ok };
        assert!(too_many.problem().unwrap().contains("limit"));
    }
}
