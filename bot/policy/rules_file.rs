//! Reading `rules.toml`: the file's shape, and the checks that turn it into [`Rules`] with
//! errors that name the file and the key.

use super::*;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read rules file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("rules file {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("rules file {path}: `{key}` {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

impl RulesError {
    /// The line of `text` (the file's contents, 1-based) the error is about, when it can
    /// be told: where the TOML parser stopped, or the line of the named key.
    pub fn line(&self, text: &str) -> Option<usize> {
        match self {
            RulesError::Read { .. } => None,
            RulesError::Parse { source, .. } => source
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1)),
            RulesError::Invalid { key, .. } => line_of_key(text, key),
        }
    }

    /// Why, without the file's name (shown beside the file and the line).
    pub fn reason(&self) -> String {
        match self {
            RulesError::Read { source, .. } => source.to_string(),
            RulesError::Parse { source, .. } => source.message().to_string(),
            RulesError::Invalid { key, message, .. } => format!("`{key}` {message}"),
        }
    }
}

/// The line of `key` (`rules[2].queue`, `queues.care.sla_secs`) in a rules file: the field's
/// own line in its table, else the table's header.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let (start, field) = if let Some(rest) = key.strip_prefix("rules[") {
        let (n, field) = rest.split_once("].")?;
        let n: usize = n.parse().ok()?;
        let header = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.trim() == "[[rules]]")
            .nth(n)?
            .0;
        (header, field)
    } else if let Some(rest) = key.strip_prefix("queues.") {
        // `queues.care.hours.mon`: the line in `[queues.care.hours]`, else (hours written
        // inline) the `hours` line in `[queues.care]`.
        let mut found = None;
        let mut table = rest;
        while let Some((name, field)) = table.rsplit_once('.') {
            let header = lines.iter().position(|l| {
                let l = l.trim();
                l == format!("[queues.{name}]") || l == format!("[queues.\"{name}\"]")
            });
            if let Some(header) = header {
                found = Some((header, field));
                break;
            }
            table = name;
        }
        found?
    } else {
        return None;
    };
    let own = lines[start + 1..]
        .iter()
        .take_while(|l| !l.trim_start().starts_with('['))
        .position(|l| {
            l.trim_start()
                .strip_prefix(field)
                .is_some_and(|r| r.trim_start().starts_with('='))
        });
    Some(own.map_or(start, |i| start + 1 + i) + 1)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    queues: BTreeMap<String, RawQueue>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

/// A queue as written: its hours are checked with the rest, so an error names its key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    sla_secs: u64,
    #[serde(default)]
    description: Option<String>,
    #[serde(default = "default_max_waiting")]
    max_waiting: usize,
    #[serde(default)]
    hours: Option<HoursSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    when: String,
    #[serde(default)]
    effect: Option<Effect>,
    queue: Option<String>,
    priority: Option<i64>,
    at_least: Option<f64>,
    window: Option<usize>,
    tiers: Option<Vec<String>>,
    intents: Option<Vec<String>>,
    count: Option<u32>,
    words: Option<Vec<String>>,
    negative_at_least: Option<f64>,
    angry_at_least: Option<f64>,
    upset_at_least: Option<f64>,
    kinds: Option<Vec<String>>,
    meaning: Option<Meaning>,
    order_value_at_least: Option<f64>,
    units_at_least: Option<u32>,
    only_for: Option<Audience>,
}

impl Rules {
    pub fn load(path: &Path) -> Result<Rules, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Rules::parse(&text, path)
    }

    /// Parses and validates; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Rules, RulesError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| RulesError::Parse {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
        let invalid = |key: String, message: String| RulesError::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        };
        for (name, q) in &raw.queues {
            if q.sla_secs == 0 {
                return Err(invalid(
                    format!("queues.{name}.sla_secs"),
                    "must be at least 1 second".into(),
                ));
            }
            if q.max_waiting == 0 {
                return Err(invalid(
                    format!("queues.{name}.max_waiting"),
                    "must be at least 1 (leave it out for the default, 500)".into(),
                ));
            }
        }
        let mut queues = BTreeMap::new();
        for (name, q) in raw.queues {
            let hours = q.hours.as_ref().map(BusinessHours::from_spec).transpose();
            let hours = hours
                .map_err(|e| invalid(format!("queues.{name}.hours.{}", e.field), e.message))?;
            queues.insert(
                name,
                QueueSpec {
                    sla_secs: q.sla_secs,
                    description: q.description,
                    max_waiting: q.max_waiting,
                    hours,
                },
            );
        }
        let mut rules = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, r) in raw.rules.into_iter().enumerate() {
            let key = |field: &str| format!("rules[{i}].{field}");
            if r.name.trim().is_empty() {
                return Err(invalid(key("name"), "must not be empty".into()));
            }
            if !names.insert(r.name.clone()) {
                return Err(invalid(
                    key("name"),
                    format!("\"{}\" is used twice", r.name),
                ));
            }
            let condition = raw_condition(&r, &key).map_err(|(k, m)| invalid(k, m))?;
            let effect = r.effect.unwrap_or(Effect::Escalate);
            if effect == Effect::Escalate {
                match &r.queue {
                    None => {
                        return Err(invalid(
                            key("queue"),
                            "is required: name the queue this rule sends customers to".into(),
                        ))
                    }
                    Some(q) if !queues.contains_key(q) => {
                        let known: Vec<_> = queues.keys().cloned().collect();
                        return Err(invalid(
                            key("queue"),
                            format!("\"{q}\" is not declared under [queues] (known: {known:?})"),
                        ));
                    }
                    _ => {}
                }
            }
            let priority = r.priority.ok_or_else(|| {
                invalid(
                    key("priority"),
                    "is required (a number, higher goes first)".into(),
                )
            })?;
            let only_for = match r.only_for {
                None => None,
                Some(a) => Some(audience(a).map_err(|m| invalid(key("only_for"), m))?),
            };
            rules.push(Rule {
                name: r.name,
                condition,
                effect,
                queue: r.queue,
                priority,
                only_for,
            });
        }
        Ok(Rules { queues, rules })
    }
}

/// Checks an `only_for` table: at least one of its two keys, tiers in lower case.
fn audience(a: Audience) -> Result<Audience, String> {
    if a.tiers.is_empty() && a.lifetime_value_at_least.is_none() {
        return Err("needs `tiers = [...]`, `lifetime_value_at_least = AMOUNT`, or both".into());
    }
    if a.tiers.iter().any(|t| t.trim().is_empty()) {
        return Err("`tiers` must not contain an empty name".into());
    }
    if let Some(v) = a.lifetime_value_at_least {
        if !(v >= 0.0 && v.is_finite()) {
            return Err(format!(
                "`lifetime_value_at_least` must be an amount >= 0, not {v}"
            ));
        }
    }
    Ok(Audience {
        tiers: a.tiers.iter().map(|t| t.trim().to_lowercase()).collect(),
        lifetime_value_at_least: a.lifetime_value_at_least,
    })
}

/// Checks that a raw rule has exactly the fields its `when` needs.
fn raw_condition(r: &RawRule, key: &dyn Fn(&str) -> String) -> Result<Condition, (String, String)> {
    let present: Vec<&str> = [
        ("at_least", r.at_least.is_some()),
        ("window", r.window.is_some()),
        ("tiers", r.tiers.is_some()),
        ("intents", r.intents.is_some()),
        ("count", r.count.is_some()),
        ("words", r.words.is_some()),
        ("negative_at_least", r.negative_at_least.is_some()),
        ("angry_at_least", r.angry_at_least.is_some()),
        ("upset_at_least", r.upset_at_least.is_some()),
        ("kinds", r.kinds.is_some()),
        ("meaning", r.meaning.is_some()),
        ("order_value_at_least", r.order_value_at_least.is_some()),
        ("units_at_least", r.units_at_least.is_some()),
    ]
    .into_iter()
    .filter(|(_, p)| *p)
    .map(|(n, _)| n)
    .collect();
    let (allowed, required): (&[&str], &[&str]) = match r.when.as_str() {
        "negative_message" => (&["at_least"], &["at_least"]),
        "anger" => (&["at_least", "negative_at_least"], &["at_least"]),
        "negative_trend" => (&["at_least", "window"], &["at_least", "window"]),
        "lifetime_value" | "order_value" => (&["at_least"], &["at_least"]),
        "tier" => (&["tiers"], &["tiers"]),
        "human_request" => (&["intents"], &[]),
        "repeated_failure" => (&["count"], &["count"]),
        "keywords" => (&["words", "meaning"], &["words"]),
        "stakes" => (&["kinds", "at_least"], &["at_least"]),
        "large_order_problem" => (&["order_value_at_least", "units_at_least"], &[]),
        "llm_judge" => (&[], &[]),
        "frustration" => (&["at_least"], &["at_least"]),
        "message_frustration" => (&["angry_at_least", "upset_at_least"], &[]),
        "intent" => (&["intents"], &["intents"]),
        other => {
            return Err((
                key("when"),
                format!(
                    "\"{other}\" is unknown; use one of negative_message, negative_trend, anger, \
                     tier, lifetime_value, order_value, human_request, repeated_failure, keywords, \
                     frustration, message_frustration, intent, stakes, large_order_problem, llm_judge"
                ),
            ))
        }
    };
    if r.when == "message_frustration" && r.angry_at_least.is_none() && r.upset_at_least.is_none() {
        return Err((
            key("angry_at_least"),
            "or `upset_at_least` is required for when = \"message_frustration\"".into(),
        ));
    }
    if r.when == "large_order_problem"
        && r.order_value_at_least.is_none()
        && r.units_at_least.is_none()
    {
        return Err((
            key("order_value_at_least"),
            "or `units_at_least` is required for when = \"large_order_problem\"".into(),
        ));
    }
    for p in &present {
        if !allowed.contains(p) {
            return Err((key(p), format!("does not apply to when = \"{}\"", r.when)));
        }
    }
    for q in required {
        if !present.contains(q) {
            return Err((key(q), format!("is required for when = \"{}\"", r.when)));
        }
    }
    let probability_of = |field: &str, v: f64| {
        if (0.0..=1.0).contains(&v) {
            Ok(v as f32)
        } else {
            Err((
                key(field),
                format!("must be a probability between 0 and 1, not {v}"),
            ))
        }
    };
    let probability = |v: f64| probability_of("at_least", v);
    let non_negative = |v: f64| {
        if v >= 0.0 && v.is_finite() {
            Ok(v)
        } else {
            Err((key("at_least"), format!("must be an amount >= 0, not {v}")))
        }
    };
    let non_empty = |field: &str, list: &Vec<String>| {
        if list.is_empty() || list.iter().any(|s| s.trim().is_empty()) {
            Err((
                key(field),
                "must be a non-empty list of non-empty strings".to_string(),
            ))
        } else {
            Ok(list
                .iter()
                .map(|s| s.trim().to_lowercase())
                .collect::<Vec<_>>())
        }
    };
    Ok(match r.when.as_str() {
        "negative_message" => Condition::NegativeMessage {
            at_least: probability(r.at_least.unwrap())?,
        },
        "anger" => Condition::Anger {
            at_least: probability(r.at_least.unwrap())?,
            negative_at_least: match r.negative_at_least {
                Some(v) => Some(probability_of("negative_at_least", v)?),
                None => None,
            },
        },
        "negative_trend" => {
            let window = r.window.unwrap();
            if window < 2 {
                return Err((key("window"), "must be at least 2 turns".into()));
            }
            Condition::NegativeTrend {
                window,
                at_least: probability(r.at_least.unwrap())?,
            }
        }
        "lifetime_value" => Condition::LifetimeValue {
            at_least: non_negative(r.at_least.unwrap())?,
        },
        "order_value" => Condition::OrderValue {
            at_least: non_negative(r.at_least.unwrap())?,
        },
        "tier" => Condition::Tier {
            tiers: non_empty("tiers", r.tiers.as_ref().unwrap())?,
        },
        "human_request" => Condition::HumanRequest {
            intents: match &r.intents {
                Some(list) => non_empty("intents", list)?,
                None => vec!["contact_human_agent".into()],
            },
        },
        "repeated_failure" => {
            let count = r.count.unwrap();
            if count == 0 {
                return Err((key("count"), "must be at least 1".into()));
            }
            Condition::RepeatedFailure { count }
        }
        "keywords" => Condition::Keywords {
            words: non_empty("words", r.words.as_ref().unwrap())?,
            meaning: r.meaning,
        },
        "stakes" => Condition::Stakes {
            kinds: match &r.kinds {
                None => Vec::new(),
                Some(list) => non_empty("kinds", list)?
                    .iter()
                    .map(|k| {
                        Stake::parse(k).ok_or_else(|| {
                            (
                                key("kinds"),
                                format!(
                                    "\"{k}\" is no stake; use safety, money, vulnerability, \
                                     business, legal or privacy"
                                ),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            },
            at_least: probability(r.at_least.unwrap())?,
        },
        "large_order_problem" => Condition::LargeOrderProblem {
            value_at_least: match r.order_value_at_least {
                Some(v) if !(v >= 0.0 && v.is_finite()) => {
                    return Err((
                        key("order_value_at_least"),
                        format!("must be an amount >= 0, not {v}"),
                    ))
                }
                v => v,
            },
            units_at_least: match r.units_at_least {
                Some(0) => return Err((key("units_at_least"), "must be at least 1".into())),
                n => n,
            },
        },
        "frustration" => Condition::Frustration {
            at_least: probability(r.at_least.unwrap())?,
        },
        "message_frustration" => Condition::MessageFrustration {
            angry_at_least: match r.angry_at_least {
                Some(v) => Some(probability_of("angry_at_least", v)?),
                None => None,
            },
            upset_at_least: match r.upset_at_least {
                Some(v) => Some(probability_of("upset_at_least", v)?),
                None => None,
            },
        },
        "intent" => Condition::Intent {
            intents: non_empty("intents", r.intents.as_ref().unwrap())?,
        },
        "llm_judge" => Condition::LlmJudge,
        _ => unreachable!("checked above"),
    })
}

#[cfg(test)]
#[path = "rules_file_tests.rs"]
mod tests;
