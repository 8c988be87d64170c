//! The one door every channel uses: the web widget, the REST API, Telegram and Discord all
//! hand their customers' messages to [`Intake::receive`]. Here a link command is answered
//! before the NLU sees it, the message goes to the desk, and it is counted. Deduplication
//! and sender limits belong here too, so that every channel gets them at once.

use std::time::Instant;

use crate::desk::{Desk, DeskError, Reply, Turn};
use crate::message::{ConversationId, Inbound, Status};
use crate::metrics;

/// What became of one inbound message.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// Where the conversation stands, with the bot's replies.
    pub turn: Turn,
    /// The replies are not part of any conversation (the answer to a `/link` command), so
    /// they reach chat platforms only if the channel sends them itself. Conversation
    /// replies always reach chat platforms through the desk's events and the outbox.
    pub direct: bool,
}

/// Shared by every channel; cheap to clone.
#[derive(Clone)]
pub struct Intake {
    desk: Desk,
}

impl Intake {
    pub fn new(desk: Desk) -> Intake {
        Intake { desk }
    }

    pub fn desk(&self) -> &Desk {
        &self.desk
    }

    /// Handles one customer message from any channel.
    pub async fn receive(&self, msg: Inbound) -> Result<Received, DeskError> {
        if let Some(text) = self.desk.link_command(&msg).await {
            return Ok(Received {
                turn: self.link_turn(&msg, text),
                direct: true,
            });
        }
        let channel = msg.channel.as_str();
        let started = Instant::now();
        match self.desk.receive(msg).await {
            Ok(turn) => {
                metrics::message_handled(channel, started.elapsed(), turn.replies.len());
                Ok(Received {
                    turn,
                    direct: false,
                })
            }
            Err(e) => {
                metrics::message_rejected(match e {
                    DeskError::Busy => "busy",
                    _ => "error",
                });
                Err(e)
            }
        }
    }

    /// The answer to a link command, shaped like any other turn.
    fn link_turn(&self, msg: &Inbound, text: String) -> Turn {
        let open = self
            .desk
            .conversation_of(msg.channel, &msg.channel_user)
            .ok()
            .flatten()
            .and_then(|id| self.desk.conversation(&id).ok().flatten());
        let (conversation_id, status) = match open {
            Some(c) => (c.id, c.status),
            None => (
                ConversationId(format!("link:{}", msg.identity())),
                Status::Bot,
            ),
        };
        Turn {
            conversation_id,
            status,
            replies: vec![Reply { text }],
            queue: None,
        }
    }
}
