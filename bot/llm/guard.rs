//! Guardrails: checks every answer the LLM proposes must pass before a customer sees it.
//! Pure functions of the answer and what the model was given: nothing the model says is
//! trusted beyond what the conversation and the shop's data for this customer back up.

use regex::Regex;
use std::sync::OnceLock;

/// Why a proposed answer was blocked (counted in `frontdesk_llm_fallbacks_total{reason}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// No text at all.
    Empty,
    /// Longer than `llm.max_answer_chars`.
    TooLong { chars: usize, max: usize },
    /// An order number that is neither in the conversation nor in the shop's data.
    InventedOrderNumber(String),
    /// A money amount that is not in the shop's data.
    UngroundedAmount(String),
    /// A refund promised while the shop's data says nothing about a refund.
    UngroundedRefund,
    /// The answer says an action was done (cancelled, refunded, changed): the LLM acts on
    /// nothing, so it may not say it did.
    ClaimedAction(String),
    /// A link outside `llm.link_allow_list`.
    ForeignLink(String),
    /// No passage cited (answers that hand off to a person need none).
    NoCitation,
    /// A cited id that was not among the passages given.
    UnknownCitation(String),
}

impl Blocked {
    /// The metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Blocked::Empty => "empty",
            Blocked::TooLong { .. } => "too_long",
            Blocked::InventedOrderNumber(_) => "invented_order_number",
            Blocked::UngroundedAmount(_) => "ungrounded_amount",
            Blocked::UngroundedRefund => "ungrounded_refund",
            Blocked::ClaimedAction(_) => "claimed_action",
            Blocked::ForeignLink(_) => "foreign_link",
            Blocked::NoCitation => "no_citation",
            Blocked::UnknownCitation(_) => "unknown_citation",
        }
    }
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocked::Empty => write!(f, "the answer is empty"),
            Blocked::TooLong { chars, max } => {
                write!(f, "the answer has {chars} characters, more than {max}")
            }
            Blocked::InventedOrderNumber(n) => {
                write!(
                    f,
                    "order number {n} is not in the conversation or the shop's data"
                )
            }
            Blocked::UngroundedAmount(a) => write!(f, "amount {a} is not in the shop's data"),
            Blocked::UngroundedRefund => {
                write!(f, "a refund is promised that the shop's data does not back")
            }
            Blocked::ClaimedAction(a) => {
                write!(
                    f,
                    "the answer claims an action (\"{a}\") the LLM cannot take"
                )
            }
            Blocked::ForeignLink(l) => write!(f, "link {l} is not on the allow-list"),
            Blocked::NoCitation => write!(f, "no passage is cited"),
            Blocked::UnknownCitation(id) => write!(f, "cited passage {id} was not given"),
        }
    }
}

/// What an answer may rest on: the texts the model was given for this customer.
#[derive(Debug, Clone, Copy)]
pub struct Grounding<'a> {
    /// Every message of the conversation so far, the customer's latest included.
    pub conversation: &'a [String],
    /// The shop's data for this customer as given to the model (orders, amounts, refunds).
    pub shop_data: &'a str,
    /// The passages given, their texts together: prices and fees they state may be quoted.
    pub passage_text: &'a str,
    /// Ids of the passages given.
    pub passage_ids: &'a [String],
    /// Link prefixes an answer may use.
    pub link_allow_list: &'a [String],
    /// Longest answer, in characters.
    pub max_chars: usize,
}

/// An answer as the model proposed it (see `answer::ProposedAnswer`), reduced to what the
/// checks read.
#[derive(Debug, Clone, Copy)]
pub struct Proposal<'a> {
    pub text: &'a str,
    pub cited: &'a [String],
    pub handoff: bool,
}

struct Patterns {
    order: Regex,
    amount: Regex,
    number: Regex,
    refund: Regex,
    refund_promise: Regex,
    action: Regex,
    link: Regex,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| Patterns {
        // Order numbers: five or more digits, optionally after `#` or a short letter prefix
        // ("10001", "#10001", "A-10001"); not a decimal amount, not part of a date.
        order: Regex::new(r"(?:#|\b[A-Z]{1,3}-?)?\b\d{5,}\b").expect("order"),
        amount: Regex::new(
            r"(?i)(?:[$€£]\s?\d[\d,.]*|\b\d[\d,.]*\s?(?:€|eur\b|euros?\b|usd\b|dollars?\b|gbp\b|pounds?\b))",
        )
        .expect("amount"),
        number: Regex::new(r"\d+(?:[.,]\d+)*").expect("number"),
        refund: Regex::new(r"(?i)\brefund").expect("refund"),
        refund_promise: Regex::new(concat!(
            r"(?i)\b(?:i|we)\s*(?:'ll|'ve|'m|'re|will|shall|have|am|are|can|could)\s+",
            r"(?:(?:now|already|just|gladly|happily|going\s+to|be)\s+)*",
            r"(?:(?:issu|process|send|giv|arrang|approv)\w*\s+(?:you\s+)?)?",
            r"(?:a\s+|your\s+|the\s+|you\s+|full\s+|partial\s+)*refund",
            r"|\b(?:i|we)\s+(?:have\s+|'ve\s+)?(?:just\s+|already\s+)?refunded\b",
            r"|\byou(?:'ll|\s+will|\s+are\s+going\s+to)\s+(?:now\s+)?(?:be\s+refunded|",
            r"(?:get|receive)(?:\s+(?:a|your|the|full|partial))*\s+refund)",
            r"|\byour\s+(?:full\s+|partial\s+)?refund\s+(?:is|has\s+been|was|will\s+be)\s+",
            r"(?:approved|issued|processed|on\s+its\s+way|sent|complete|confirmed|coming)",
        ))
        .expect("refund promise"),
        action: Regex::new(concat!(
            r"(?i)\b(?:i|we)\s*(?:'ve|have|has|'ll|will|am|'m|are|'re)\s*(?:just\s+|already\s+|now\s+)?",
            r"(?:cancel|chang|updat|modif|delet|reset|rerout|redirect|upgrad|credit)\w*",
            r"|\b(?:i|we)\s+(?:just\s+|already\s+)?(?:cancell?ed|changed|updated|modified|deleted|",
            r"reset|rerouted|redirected|upgraded|credited)\b",
            r"|\b(?:your|the)\s+(?:order|account|address|subscription|password)\s+(?:\w+\s+)?",
            r"(?:has\s+been|is\s+now|was\s+just)\s+(?:cancell?ed|changed|updated|deleted|closed|reset)\b",
        ))
        .expect("action"),
        link: Regex::new(r#"(?i)\b(?:https?://|www\.)[^\s<>"')\]]+"#).expect("link"),
    })
}

/// Checks a proposed answer; the first failure found, in a fixed order.
pub fn check(proposal: &Proposal<'_>, grounding: &Grounding<'_>) -> Result<(), Blocked> {
    let text = proposal.text.trim();
    if text.is_empty() {
        return Err(Blocked::Empty);
    }
    let chars = text.chars().count();
    if chars > grounding.max_chars {
        return Err(Blocked::TooLong {
            chars,
            max: grounding.max_chars,
        });
    }
    check_citations(proposal, grounding)?;
    check_links(text, grounding.link_allow_list)?;
    check_order_numbers(text, grounding)?;
    check_amounts(text, grounding.shop_data, grounding.passage_text)?;
    check_refunds(text, grounding.shop_data)?;
    check_actions(text)
}

/// The LLM never acts on an order or an account: an answer saying it did is refused (the
/// confirmed action flow of the intents is the only way to cancel or refund).
fn check_actions(text: &str) -> Result<(), Blocked> {
    match patterns().action.find(text) {
        Some(m) => Err(Blocked::ClaimedAction(m.as_str().to_string())),
        None => Ok(()),
    }
}

fn check_citations(proposal: &Proposal<'_>, grounding: &Grounding<'_>) -> Result<(), Blocked> {
    if let Some(unknown) = proposal
        .cited
        .iter()
        .find(|id| !grounding.passage_ids.contains(id))
    {
        return Err(Blocked::UnknownCitation(unknown.clone()));
    }
    if proposal.cited.is_empty() && !proposal.handoff {
        return Err(Blocked::NoCitation);
    }
    Ok(())
}

/// Every link must start with an allowed prefix (compared without case in the scheme and
/// host, as written in the list otherwise).
pub fn check_links(text: &str, allow_list: &[String]) -> Result<(), Blocked> {
    for link in patterns().link.find_iter(text) {
        let link = link
            .as_str()
            .trim_end_matches(['.', ',', ';', ':', '!', '?']);
        let lower = link.to_ascii_lowercase();
        let allowed = allow_list.iter().any(|prefix| {
            let prefix = prefix.to_ascii_lowercase();
            lower.starts_with(&prefix)
                || lower == prefix.trim_end_matches('/')
                || prefix
                    .strip_prefix("https://")
                    .is_some_and(|bare| lower.starts_with(bare))
        });
        if !allowed {
            return Err(Blocked::ForeignLink(link.to_string()));
        }
    }
    Ok(())
}

/// Every order number in `text` (five or more digits, in any notation) must appear in the
/// conversation or the shop's data of `grounding` (its other fields are not read).
pub fn check_order_numbers(text: &str, grounding: &Grounding<'_>) -> Result<(), Blocked> {
    let known: Vec<String> = grounding
        .conversation
        .iter()
        .map(String::as_str)
        .chain([grounding.shop_data])
        .flat_map(digit_runs)
        .collect();
    for m in patterns().order.find_iter(text) {
        // Part of an amount or a decimal ("10000.50", "1,00000")? Then amounts judge it.
        let before = text[..m.start()].chars().next_back();
        let after = text[m.end()..].chars().next();
        let next_is_digit = text[m.end()..]
            .chars()
            .nth(1)
            .is_some_and(|c| c.is_ascii_digit());
        if matches!(before, Some('.' | ',')) || (matches!(after, Some('.' | ',')) && next_is_digit)
        {
            continue;
        }
        let digits: String = m.as_str().chars().filter(char::is_ascii_digit).collect();
        if !known.contains(&digits) {
            return Err(Blocked::InventedOrderNumber(m.as_str().to_string()));
        }
    }
    Ok(())
}

/// Runs of five or more digits in `text` (order numbers in any notation).
fn digit_runs(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() >= 5)
        .map(str::to_string)
        .collect()
}

/// Every amount must be one the shop's data or a given passage states.
fn check_amounts(text: &str, shop_data: &str, passage_text: &str) -> Result<(), Blocked> {
    let p = patterns();
    let known: Vec<f64> = p
        .number
        .find_iter(shop_data)
        .chain(p.number.find_iter(passage_text))
        .filter_map(|m| parse_amount(m.as_str()))
        .collect();
    for m in p.amount.find_iter(text) {
        let Some(number) = p.number.find(m.as_str()) else {
            continue;
        };
        let Some(value) = parse_amount(number.as_str()) else {
            continue;
        };
        if !known.iter().any(|k| (k - value).abs() < 0.005) {
            return Err(Blocked::UngroundedAmount(m.as_str().trim().to_string()));
        }
    }
    Ok(())
}

/// "189", "189.00", "189,00", "1,234.50", "1.234,50" → a number; `None` when unreadable.
fn parse_amount(text: &str) -> Option<f64> {
    let text = text.trim_end_matches(['.', ',']);
    let last_sep = text.rfind(['.', ',']);
    let normalised = match last_sep {
        // Two digits after the last separator: it is the decimal point.
        Some(i) if text.len() - i - 1 == 2 => {
            let (int, frac) = text.split_at(i);
            format!("{}.{}", int.replace(['.', ','], ""), &frac[1..])
        }
        _ => text.replace(['.', ','], ""),
    };
    normalised.parse().ok()
}

/// A refund promised to this customer ("we will refund you", "you'll get a full refund",
/// "your refund has been approved") needs a refund in the shop's data; the policy as the
/// passages state it ("refunds are issued within 5 days of receiving the return") is not
/// a promise.
fn check_refunds(text: &str, shop_data: &str) -> Result<(), Blocked> {
    let p = patterns();
    if p.refund_promise.is_match(text) && !p.refund.is_match(shop_data) {
        return Err(Blocked::UngroundedRefund);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        conversation: Vec<String>,
        shop_data: String,
        passage_ids: Vec<String>,
        allow: Vec<String>,
        max: usize,
    }

    impl Case {
        fn new() -> Self {
            Case {
                conversation: vec!["Where is my order 10001?".into()],
                shop_data: "order 10001: shipped on 2026-11-20, total 189.00 EUR".into(),
                passage_ids: vec!["shipping-1".into(), "returns-2".into()],
                allow: vec!["https://shop.example/".into()],
                max: 300,
            }
        }

        fn check(&self, text: &str, cited: &[&str], handoff: bool) -> Result<(), Blocked> {
            let cited: Vec<String> = cited.iter().map(|s| s.to_string()).collect();
            check(
                &Proposal {
                    text,
                    cited: &cited,
                    handoff,
                },
                &Grounding {
                    conversation: &self.conversation,
                    shop_data: &self.shop_data,
                    passage_text: "Standard delivery 4.95 EUR.",
                    passage_ids: &self.passage_ids,
                    link_allow_list: &self.allow,
                    max_chars: self.max,
                },
            )
        }
    }

    #[test]
    fn a_grounded_cited_answer_passes() {
        let case = Case::new();
        assert_eq!(
            case.check(
                "Order 10001 shipped on 20 November (total €189.00). Track it at https://shop.example/orders/10001.",
                &["shipping-1"],
                false,
            ),
            Ok(())
        );
    }

    #[test]
    fn an_invented_order_number_is_blocked() {
        let case = Case::new();
        assert_eq!(
            case.check("Your order 10002 is on its way.", &["shipping-1"], false),
            Err(Blocked::InventedOrderNumber("10002".into()))
        );
        assert_eq!(
            case.check("Order #99999 shipped.", &["shipping-1"], false),
            Err(Blocked::InventedOrderNumber("#99999".into()))
        );
    }

    #[test]
    fn an_order_number_from_the_conversation_passes_in_any_notation() {
        let mut case = Case::new();
        case.shop_data = "no orders".into();
        case.conversation = vec!["it's order #A-10001".into()];
        assert_eq!(
            case.check("Order 10001 is noted.", &["shipping-1"], false),
            Ok(())
        );
    }

    #[test]
    fn dates_and_short_numbers_are_not_order_numbers() {
        let case = Case::new();
        assert_eq!(
            case.check(
                "It left on 2026-11-20; allow 3 to 5 days.",
                &["shipping-1"],
                false
            ),
            Ok(())
        );
    }

    #[test]
    fn amounts_must_be_in_the_shop_data() {
        let case = Case::new();
        assert_eq!(
            case.check("The total was 189 EUR.", &["returns-2"], false),
            Ok(())
        );
        assert_eq!(
            case.check("The total was €189,00.", &["returns-2"], false),
            Ok(())
        );
        assert_eq!(
            case.check("You will get $50 back.", &["returns-2"], false),
            Err(Blocked::UngroundedAmount("$50".into()))
        );
        assert_eq!(
            case.check("That is 30 euros off.", &["returns-2"], false),
            Err(Blocked::UngroundedAmount("30 euros".into()))
        );
    }

    #[test]
    fn claims_of_actions_are_refused() {
        let case = Case::new();
        for claim in [
            "I have cancelled order 10001 for you.",
            "Done! I've updated your address.",
            "Your order 10001 has been cancelled.",
            "We've just reset your password.",
        ] {
            assert!(
                matches!(
                    case.check(claim, &["returns-2"], false),
                    Err(Blocked::ClaimedAction(_))
                ),
                "{claim}"
            );
        }
        for fine in [
            "You can cancel an order until it ships: open Orders and choose Cancel.",
            "Orders can be changed within an hour of placing them.",
        ] {
            assert_eq!(case.check(fine, &["returns-2"], false), Ok(()), "{fine}");
        }
    }

    #[test]
    fn a_refund_promise_needs_a_refund_in_the_shop_data() {
        let mut case = Case::new();
        assert_eq!(
            case.check("We will refund you today.", &["returns-2"], false),
            Err(Blocked::UngroundedRefund)
        );
        for promise in [
            "I've refunded the order.",
            "You'll get a full refund.",
            "Your refund has been approved.",
            "We'll process your refund now.",
        ] {
            assert_eq!(
                case.check(promise, &["returns-2"], false),
                Err(Blocked::UngroundedRefund),
                "{promise}"
            );
        }
        // the policy as the passages say it is no promise
        assert_eq!(
            case.check(
                "Refunds are issued within 5 business days of receiving your return.",
                &["returns-2"],
                false
            ),
            Ok(())
        );
        case.shop_data.push_str("; refund of 189.00 EUR approved");
        assert_eq!(
            case.check("We will refund you 189.00 EUR.", &["returns-2"], false),
            Ok(())
        );
    }

    #[test]
    fn links_only_to_the_allow_list() {
        let case = Case::new();
        assert_eq!(
            case.check("See https://evil.example/login now", &["shipping-1"], false),
            Err(Blocked::ForeignLink("https://evil.example/login".into()))
        );
        assert_eq!(
            case.check(
                "See https://shop.example.evil.example/",
                &["shipping-1"],
                false
            ),
            Err(Blocked::ForeignLink(
                "https://shop.example.evil.example/".into()
            ))
        );
        assert_eq!(
            case.check("See www.other.example", &["shipping-1"], false),
            Err(Blocked::ForeignLink("www.other.example".into()))
        );
        assert_eq!(
            case.check("See HTTPS://Shop.example/help.", &["shipping-1"], false),
            Ok(())
        );
    }

    #[test]
    fn an_answer_must_cite_a_given_passage() {
        let case = Case::new();
        assert_eq!(
            case.check("Parcels take 3 days.", &[], false),
            Err(Blocked::NoCitation)
        );
        assert_eq!(
            case.check("Parcels take 3 days.", &["made-up"], false),
            Err(Blocked::UnknownCitation("made-up".into()))
        );
        assert_eq!(case.check("A colleague will take over.", &[], true), Ok(()));
    }

    #[test]
    fn empty_and_long_answers_are_blocked() {
        let case = Case::new();
        assert_eq!(
            case.check("   ", &["shipping-1"], false),
            Err(Blocked::Empty)
        );
        let long = "a".repeat(301);
        assert_eq!(
            case.check(&long, &["shipping-1"], false),
            Err(Blocked::TooLong {
                chars: 301,
                max: 300
            })
        );
    }

    #[test]
    fn every_reason_has_a_distinct_label() {
        let all = [
            Blocked::Empty,
            Blocked::TooLong { chars: 0, max: 0 },
            Blocked::InventedOrderNumber(String::new()),
            Blocked::UngroundedAmount(String::new()),
            Blocked::UngroundedRefund,
            Blocked::ClaimedAction(String::new()),
            Blocked::ForeignLink(String::new()),
            Blocked::NoCitation,
            Blocked::UnknownCitation(String::new()),
        ];
        let mut labels: Vec<_> = all.iter().map(Blocked::reason).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), all.len());
    }

    #[test]
    fn amounts_parse_in_both_notations() {
        assert_eq!(parse_amount("189"), Some(189.0));
        assert_eq!(parse_amount("189.00"), Some(189.0));
        assert_eq!(parse_amount("1.234,50"), Some(1234.5));
        assert_eq!(parse_amount("1,234.50"), Some(1234.5));
    }
}
