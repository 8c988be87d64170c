//! Local stand-ins for the chat platforms, speaking their wire protocols on 127.0.0.1 so that
//! the real teloxide and serenity clients can be tested without leaving the machine.
//!
//! Each fake keeps a [`Recorder`] (what the bot sent, every call, failure injection: the
//! next deliveries answer 429/500/403, a customer refuses the bot) and lets a test play a
//! customer. [`ChatFake`] is what the two have in common, so that the scenarios of
//! `support::scenarios` are written once for both.

pub mod discord;
mod discord_gateway;
pub mod llm;
pub mod recorder;
pub mod telegram;

use std::net::SocketAddr;

use frontdesk::channels::platforms::PlatformsConfig;
use frontdesk::message::ChannelKind;

pub use recorder::{Failure, Recorder};

/// Binds `router` on 127.0.0.1 (port 0 unless `port` is given) and serves it in the
/// background until the returned task is aborted.
pub async fn serve(router: axum::Router, port: u16) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind a fake platform on 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("fake platform server");
    });
    (addr, task)
}

/// Removes Markdown escapes (Telegram's MarkdownV2, Discord's Markdown), for matching on
/// what the customer reads.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A chat platform fake, as the scenarios see it: customers write, the bot's messages to
/// them are read back, deliveries can be made to fail. Customers are numbers; each
/// platform decides where the bot answers them (Telegram: their private chat; Discord:
/// their DM channel).
#[allow(async_fn_in_trait)]
pub trait ChatFake: Sized {
    /// The platform, as the desk files its conversations.
    const KIND: ChannelKind;
    /// The token the fake accepts.
    const TOKEN: &'static str;
    /// The setting an operator fixes a bad token with, as the health error names it.
    const TOKEN_SETTING: &'static str;
    /// A customer of the scenarios.
    const CUSTOMER: u64;
    /// What the fake keeps of a message the bot delivered.
    type Sent: Clone;

    /// Starts a fake that accepts only [`Self::TOKEN`].
    async fn start() -> Self;

    fn recorder(&self) -> &Recorder<Self::Sent>;

    /// Points the platforms' settings at this fake, using `token`.
    fn configure(&self, token: &str, platforms: &mut PlatformsConfig);

    /// `customer` writes `text` to the bot.
    fn says(&self, customer: u64, text: &str);

    /// `customer` no longer accepts messages from the bot (blocks it, closes their DMs).
    fn block(&self, customer: u64) {
        self.recorder().refuse(customer);
    }

    /// Where the bot's messages to `customer` go.
    fn inbox(&self, customer: u64) -> u64;

    /// Where a delivered message went, and its text as sent (escapes included).
    fn delivery(sent: &Self::Sent) -> (u64, &str);

    /// After an outage, the platform is back for a restarted bot.
    async fn come_back(self) -> Self;

    /// The texts the bot delivered to `customer`, as sent.
    fn texts_to(&self, customer: u64) -> Vec<String> {
        let inbox = self.inbox(customer);
        self.recorder()
            .sent()
            .iter()
            .map(Self::delivery)
            .filter(|(to, _)| *to == inbox)
            .map(|(_, text)| text.to_string())
            .collect()
    }

    /// Waits until `customer` has received `n` messages; returns their texts, as sent.
    async fn wait_for_texts(&self, customer: u64, n: usize) -> Vec<String> {
        let inbox = self.inbox(customer);
        let what = format!("{n} message(s) to {:?} customer {customer}", Self::KIND);
        self.recorder()
            .wait_for_sent(&what, n, |s| Self::delivery(s).0 == inbox)
            .await
            .iter()
            .map(|s| Self::delivery(s).1.to_string())
            .collect()
    }

    /// Waits until a message to `customer` reads (unescaped) as `pred` wants; returns its
    /// text, as sent.
    async fn wait_for_text(&self, customer: u64, pred: impl Fn(&str) -> bool) -> String {
        let inbox = self.inbox(customer);
        let what = format!("a matching message to {:?} customer {customer}", Self::KIND);
        let sent = self
            .recorder()
            .wait_for_one(&what, |s| {
                let (to, text) = Self::delivery(s);
                to == inbox && pred(&unescape(text))
            })
            .await;
        Self::delivery(&sent).1.to_string()
    }
}
