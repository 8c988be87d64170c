//! Discord gateway events: `serde_json` into serenity's `GatewayEvent` (as the shard reads
//! each text frame), serenity's cache update for a MESSAGE_CREATE (the client runs it
//! before the handler), then what the adapter's `on_message` reads of the message to make
//! an `Inbound` and a thread name (`bot/channels/discord.rs` does this inline, with a live
//! HTTP client and store, so it is mirrored here field by field). Arbitrary bytes, and
//! dispatches whose message has ids, author, content, timestamp and guild of arbitrary
//! shapes.

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use serde_json::{json, Value};
use serenity::cache::Cache;
use serenity::model::channel::Message;
use serenity::model::event::{Event, GatewayEvent};

use crate::harness::{
    cases, check, field, fuzz, json, json_bytes, odd_number, optional, shape, string, text, Shape,
    Tally,
};

/// A snowflake as Discord writes it (a decimal string), or not.
fn snowflake() -> BoxedStrategy<Value> {
    prop_oneof![
        24 => (1u64..u64::MAX).prop_map(|n| json!(n.to_string())),
        1 => Just(json!("0")),
        1 => Just(json!("18446744073709551616")),
        1 => Just(json!("-5")),
        1 => Just(json!(" 42")),
        2 => (1u64..u64::MAX).prop_map(Value::from),
        1 => odd_number(),
        1 => string(),
    ]
    .boxed()
}

fn timestamp() -> BoxedStrategy<Value> {
    let now = chrono::Utc::now();
    prop_oneof![
        16 => (-100_000i64..100_000).prop_map(move |d| json!((now + chrono::Duration::seconds(d)).to_rfc3339())),
        1 => Just(json!("1970-01-01T00:00:00Z")),
        1 => Just(json!("9999-12-31T23:59:59.999999+00:00")),
        1 => Just(json!("-0001-01-01T00:00:00Z")),
        1 => Just(json!("2026-02-30T25:61:61Z")),
        2 => odd_number(),
        1 => string(),
    ]
    .boxed()
}

fn author() -> Shape {
    shape(vec![
        ("id", field(snowflake())),
        ("username", field(string())),
        (
            "discriminator",
            optional(prop_oneof![Just(json!("0")), Just(json!("1234")), string()].boxed()),
        ),
        ("global_name", optional(string())),
        ("avatar", optional(Just(Value::Null).boxed())),
        ("bot", optional(any::<bool>().prop_map(Value::from).boxed())),
    ])
}

fn message() -> Shape {
    let empty_list = || field(Just(json!([])).boxed());
    let content = prop_oneof![
        4 => text(),
        1 => text().prop_map(|t| format!("/link {t}")),
        1 => text().prop_map(|t| format!("<@123456789012345678> {t}")),
    ]
    .prop_map(Value::String)
    .boxed();
    shape(vec![
        ("id", field(snowflake())),
        ("channel_id", field(snowflake())),
        ("guild_id", optional(snowflake())),
        ("author", field(author())),
        ("content", field(content)),
        ("timestamp", field(timestamp())),
        ("edited_timestamp", optional(timestamp())),
        ("tts", field(any::<bool>().prop_map(Value::from).boxed())),
        (
            "mention_everyone",
            field(any::<bool>().prop_map(Value::from).boxed()),
        ),
        ("mentions", empty_list()),
        ("mention_roles", empty_list()),
        ("attachments", empty_list()),
        ("embeds", empty_list()),
        ("pinned", field(any::<bool>().prop_map(Value::from).boxed())),
        (
            "type",
            field(
                prop_oneof![4 => Just(json!(0)), 1 => Just(json!(19)), 1 => odd_number()].boxed(),
            ),
        ),
        (
            "flags",
            optional(prop_oneof![4 => Just(json!(0)), 1 => odd_number()].boxed()),
        ),
        // Of the right kind: null (the damaged objects put anything there).
        ("member", optional(Just(Value::Null).boxed())),
        ("referenced_message", optional(Just(Value::Null).boxed())),
    ])
}

fn dispatch() -> BoxedStrategy<Value> {
    let event = prop_oneof![
        8 => Just(json!("MESSAGE_CREATE")),
        1 => Just(json!("MESSAGE_UPDATE")),
        1 => Just(json!("READY")),
        1 => string(),
    ]
    .boxed();
    shape(vec![
        (
            "op",
            field(
                prop_oneof![8 => Just(json!(0)), 1 => Just(json!(11)), 1 => odd_number()].boxed(),
            ),
        ),
        ("t", field(event)),
        (
            "s",
            field(
                prop_oneof![4 => (0u64..1_000_000).prop_map(Value::from), 1 => odd_number()]
                    .boxed(),
            ),
        ),
        ("d", field(message())),
    ])
    .mixed()
}

/// What `Discord::on_message` reads of a message, in the same order and the same way:
/// skip bots and blank messages; the author's and channel's ids, the guild, the message id
/// and author name for the metadata, the time, the name of a support thread.
fn adapter_reads(msg: &Message, t: &Tally) -> Result<(), TestCaseError> {
    if msg.author.bot || msg.content.trim().is_empty() {
        t.note("skipped (bot or blank)");
        return Ok(());
    }
    t.note("handed to the desk");
    let user = msg.author.id.get();
    let channel = msg.channel_id.get();
    let _in_guild = msg.guild_id.is_some();
    let metadata = json!({
        "discord_message_id": msg.id.get().to_string(),
        "discord_channel_id": channel.to_string(),
        "discord_username": msg.author.name.clone(),
    });
    let text = msg.content.trim().to_string();
    let _time = chrono::DateTime::from_timestamp(msg.timestamp.unix_timestamp(), 0)
        .unwrap_or_else(chrono::Utc::now);
    let thread = format!("Support: {}", msg.author.name)
        .chars()
        .take(100)
        .collect::<String>();
    check(user != 0 && channel != 0, || format!("zero id in {msg:?}"))?;
    check(!text.is_empty() && thread.chars().count() <= 100, || {
        format!("text {text:?}, thread {thread:?}, {metadata}")
    })
}

fn handle(event: GatewayEvent, cache: &Cache, t: &Tally) -> Result<(), TestCaseError> {
    match event {
        GatewayEvent::Dispatch(_, Event::MessageCreate(mut created)) => {
            t.note("MESSAGE_CREATE");
            cache.update(&mut created);
            adapter_reads(&created.message, t)
        }
        _ => {
            t.note("other event");
            Ok(())
        }
    }
}

#[test]
fn gateway_frames() {
    let cache = Cache::new();
    fuzz(
        "discord::gateway_frames",
        cases(),
        json_bytes(dispatch()),
        |bytes, t| {
            // The shard reads text frames.
            let text = String::from_utf8_lossy(&bytes);
            match serde_json::from_str::<GatewayEvent>(&text) {
                Ok(event) => handle(event, &cache, t),
                Err(e) => {
                    t.note("refused");
                    check(!e.to_string().is_empty(), || "empty error".into())
                }
            }
        },
    );
}

#[test]
fn messages() {
    let cache = Cache::new();
    let messages = prop_oneof![4 => message().mixed(), 1 => json()];
    fuzz("discord::messages", cases(), messages, |value, t| {
        let direct = serde_json::from_value::<Message>(value.clone());
        let event = json!({"op": 0, "t": "MESSAGE_CREATE", "s": 1, "d": value});
        let dispatched = serde_json::from_str::<GatewayEvent>(&event.to_string());
        // A MESSAGE_CREATE whose message serenity cannot read becomes `Event::Unknown`
        // (its untagged catch-all): dropped without a word before any handler runs.
        let created = matches!(
            dispatched,
            Ok(GatewayEvent::Dispatch(_, Event::MessageCreate(_)))
        );
        check(direct.is_ok() == created, || {
            format!(
                "as a Message: {:?}; as a dispatch: {dispatched:?}",
                direct.as_ref().err()
            )
        })?;
        match dispatched {
            Ok(event) => {
                if !created {
                    t.note_with("dropped by serenity (Unknown event)", || {
                        format!("{:?}", direct.as_ref().err())
                    });
                }
                handle(event, &cache, t)
            }
            Err(_) => {
                t.note("refused");
                Ok(())
            }
        }
    });
}
