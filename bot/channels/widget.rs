//! The widget's courier: the outbox's lines for widget customers (bot answers, agents'
//! replies and notices, LLM answers) put in front of the customer's open sockets on every
//! node, in order per visitor, each record once. The desk's live events publish them to the
//! other nodes ([`crate::desk::Desk::show_line`]); a record is marked sent once they were
//! told. A visitor with no socket open reads the line in the history of their next
//! `welcome`, so nothing waits for them.
//!
//! A piece shown again (a node died after telling the sockets and before the record was
//! marked) carries the same key, and the socket that showed it skips it: the widget counts
//! as a platform that drops repeated keys.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::desk::{Desk, DeskError};
use crate::message::{ChannelKind, Outbound};
use crate::outbox::format::Dialect;
use crate::outbox::{Courier, DeliveryError};

/// Delivers the widget's outbox records through the desk's live events.
pub struct WidgetCourier {
    desk: Desk,
}

impl WidgetCourier {
    pub fn courier(desk: Desk) -> Arc<dyn Courier> {
        Arc::new(WidgetCourier { desk })
    }
}

impl Courier for WidgetCourier {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Web
    }

    fn dialect(&self) -> Dialect {
        Dialect::Widget
    }

    fn send<'a>(
        &'a self,
        message: &'a Outbound,
        text: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            // The other nodes could not be told (the database is away): tried again later.
            self.desk
                .show_line(message, text, key)
                .await
                .map_err(|e: DeskError| {
                    DeliveryError::Retryable(format!("cannot tell the other nodes: {e}"))
                })
        })
    }

    fn deduplicates(&self) -> bool {
        true
    }
}
