//! The types every part speaks: what a channel hands in (`Inbound`), what goes back out
//! (`Outbound`), and the small identifiers that tie them to a conversation.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a customer wrote from. The router never looks inside; it only keeps the value so
/// that answers go back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Web,
    Rest,
    Telegram,
    Discord,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Web => "web",
            ChannelKind::Rest => "rest",
            ChannelKind::Telegram => "telegram",
            ChannelKind::Discord => "discord",
        }
    }

    /// Every channel.
    pub const ALL: [ChannelKind; 4] = [
        ChannelKind::Web,
        ChannelKind::Rest,
        ChannelKind::Telegram,
        ChannelKind::Discord,
    ];

    /// The channel named `name` ([`ChannelKind::as_str`]).
    pub fn parse(name: &str) -> Option<ChannelKind> {
        ChannelKind::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A customer profile that the shop vouches for (a signed token, a trusted integration).
/// Channels set it only when it is trusted: a visitor can never claim a tier by typing it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// `standard`, `gold`, `vip` or any tier the rules name.
    #[serde(default)]
    pub tier: Option<String>,
    #[serde(default)]
    pub lifetime_value: Option<f64>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// The shop's own customer id; when set and the fields above are missing, the desk
    /// fills them from the Commerce backend.
    #[serde(default)]
    pub customer_id: Option<String>,
}

/// One chat message from a customer, already stripped of every platform detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    pub channel: ChannelKind,
    /// The user's id on that channel (widget token subject, REST user_id, Telegram chat id...).
    pub channel_user: String,
    pub text: String,
    pub time: DateTime<Utc>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Only when trusted (signed by the shop).
    #[serde(default)]
    pub profile: Option<Profile>,
    /// The message's stable id on its channel (Telegram `update_id`, Discord message id,
    /// widget client id, REST `message_id`): a message seen before is not handled twice, its
    /// first outcome is returned instead. `None`: no deduplication.
    #[serde(default)]
    pub message_id: Option<String>,
    /// Ids of earlier messages of a burst merged into this one (see `engine.debounce_ms`):
    /// recorded with the turn too, so a repeat of any of them is not handled again.
    #[serde(default)]
    pub merged_ids: Vec<String>,
    /// The network address the message came from, as the limits key it (IPv6 per /64, so a
    /// host cannot rotate through its own block); widget and REST only, the platforms'
    /// messages have none. Guesses are budgeted per address, whatever identity they use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<std::net::IpAddr>,
}

impl Inbound {
    /// Drops NUL characters from everything the store keeps of the message: no engine can
    /// keep them (PostgreSQL's text refuses them), and no customer types one on purpose.
    pub fn strip_nul(&mut self) {
        for field in [&mut self.text, &mut self.channel_user]
            .into_iter()
            .chain(self.message_id.as_mut())
            .chain(self.merged_ids.iter_mut())
        {
            if field.contains('\0') {
                field.retain(|c| c != '\0');
            }
        }
    }

    /// A message written now, with no metadata and no profile.
    pub fn new(
        channel: ChannelKind,
        channel_user: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Inbound {
            channel,
            channel_user: channel_user.into(),
            text: text.into(),
            time: Utc::now(),
            metadata: Default::default(),
            profile: None,
            message_id: None,
            merged_ids: Vec::new(),
            origin: None,
        }
    }

    /// Marks the message with its channel's stable id (see [`Inbound::message_id`]).
    pub fn with_message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }

    pub fn with_profile(mut self, profile: Profile) -> Self {
        self.profile = Some(profile);
        self
    }

    /// The identity this message comes from.
    pub fn identity(&self) -> Identity {
        Identity::new(self.channel, &self.channel_user)
    }
}

/// A message on its way to a customer through the channel they wrote from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outbound {
    pub conversation_id: ConversationId,
    pub channel: ChannelKind,
    pub channel_user: String,
    pub text: String,
    /// Who speaks: the bot, or an agent's display name.
    pub from: Speaker,
    pub time: DateTime<Utc>,
    /// The customer's turn that wrote it ([`crate::desk::Turn`]'s id), when one did: the
    /// widget that showed that turn's answer in its own frame does not show it twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<String>,
    /// A satisfaction question asked with this message: the channel shows its answers as
    /// buttons (Telegram's inline keyboard, Discord's buttons, the widget's stars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey: Option<SurveyAsk>,
}

/// Which satisfaction question: CSAT (1-5) or NPS (0-10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Survey {
    Csat,
    Nps,
}

impl Survey {
    pub fn as_str(self) -> &'static str {
        match self {
            Survey::Csat => "csat",
            Survey::Nps => "nps",
        }
    }

    /// The survey named `name` ([`Survey::as_str`]).
    pub fn parse(name: &str) -> Option<Survey> {
        [Survey::Csat, Survey::Nps]
            .into_iter()
            .find(|s| s.as_str() == name)
    }

    /// The scores a customer may give.
    pub fn scores(self) -> std::ops::RangeInclusive<u8> {
        match self {
            Survey::Csat => 1..=5,
            Survey::Nps => 0..=10,
        }
    }
}

/// The structured part of a survey question: which survey, of which conversation, and the
/// label of the button that declines it. The question itself is the message's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyAsk {
    pub survey: Survey,
    pub skip_label: String,
}

/// One user on one channel: `telegram:12345`. A customer may own several.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identity {
    pub channel: ChannelKind,
    pub user: String,
}

impl Identity {
    pub fn new(channel: ChannelKind, user: &str) -> Self {
        Identity {
            channel,
            user: user.to_string(),
        }
    }

    /// The key under which the store files this identity.
    pub fn key(&self) -> String {
        format!("{}:{}", self.channel.as_str(), self.user)
    }

    /// The identity of a [`Identity::key`].
    pub fn from_key(key: &str) -> Option<Identity> {
        let (channel, user) = key.split_once(':')?;
        Some(Identity::new(ChannelKind::parse(channel)?, user))
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.channel, self.user)
    }
}

/// Identifies one conversation (a UUID in text form).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConversationId(pub String);

impl ConversationId {
    pub fn fresh() -> Self {
        ConversationId(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ConversationId {
    fn from(s: &str) -> Self {
        ConversationId(s.to_string())
    }
}

/// Who owns a conversation right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The bot answers.
    Bot,
    /// Waiting in a human queue; the bot only tells the position.
    Queued,
    /// An agent owns it; the bot stays silent.
    WithAgent,
    Closed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Bot => "bot",
            Status::Queued => "queued",
            Status::WithAgent => "with_agent",
            Status::Closed => "closed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who wrote a stored message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "role", content = "name")]
pub enum Speaker {
    Customer,
    Bot,
    Agent(String),
}
