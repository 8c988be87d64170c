//! Turning one outbound message into what a platform accepts: its Markdown dialect with the
//! customer-visible text escaped, cut into pieces no longer than the platform allows.
//!
//! Text from the desk is plain text. Each platform gets it escaped so that nothing a customer
//! or agent typed (`*`, `_`, `[`...) turns into formatting or breaks the request, plus a bold
//! speaker line for agent replies. Both dialects let a backslash escape any ASCII punctuation
//! anywhere, which keeps escaping per character and lets the splitter measure a piece before
//! it is escaped. The widget gets plain text (the page shows it as text, never as markup)
//! and the speaker in its frame, in pieces small enough to cross to other nodes in one
//! notification.

use crate::message::{Outbound, Speaker};

/// Telegram rejects a `sendMessage` text longer than this (after entity parsing).
pub const TELEGRAM_LIMIT: usize = 4096;
/// Discord rejects a message `content` longer than this.
pub const DISCORD_LIMIT: usize = 2000;
/// The most bytes one widget line takes in JSON (escapes counted), so that its event fits
/// one PostgreSQL notification (8,000 bytes) with room for the rest of the event.
pub const WIDGET_LIMIT: usize = 5_000;

/// One platform's Markdown dialect and length limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Telegram's MarkdownV2 (`parse_mode = MarkdownV2`).
    TelegramMarkdownV2,
    /// Discord's message Markdown.
    Discord,
    /// The widget: plain text, measured in bytes of JSON.
    Widget,
}

impl Dialect {
    /// The longest text one message may carry, counted in UTF-16 code units (both platforms
    /// count at least that finely, so staying under it in these units is always safe).
    pub fn limit(self) -> usize {
        match self {
            Dialect::TelegramMarkdownV2 => TELEGRAM_LIMIT,
            Dialect::Discord => DISCORD_LIMIT,
            Dialect::Widget => WIDGET_LIMIT,
        }
    }

    fn is_special(self, c: char) -> bool {
        match self {
            // The characters the Bot API documentation lists for MarkdownV2.
            Dialect::TelegramMarkdownV2 => "_*[]()~`>#+-=|{}.!\\".contains(c),
            // Emphasis, strike, spoiler, code, quotes, headings, lists, masked links, escapes.
            Dialect::Discord => "\\*_~`|>#-[]()<:@".contains(c),
            Dialect::Widget => false,
        }
    }

    /// Escapes `text` so that it renders literally.
    pub fn escape(self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + text.len() / 8);
        for c in text.chars() {
            if self.is_special(c) {
                out.push('\\');
            }
            out.push(c);
        }
        out
    }

    /// Length of `c` once escaped, in UTF-16 code units (the widget: bytes in a JSON
    /// string).
    fn cost(self, c: char) -> usize {
        match self {
            Dialect::Widget => match c {
                '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
                c if (c as u32) < 0x20 => 6,
                c => c.len_utf8(),
            },
            _ => c.len_utf16() + usize::from(self.is_special(c)),
        }
    }

    /// Length of `text` once escaped, in UTF-16 code units.
    pub fn escaped_len(self, text: &str) -> usize {
        text.chars().map(|c| self.cost(c)).sum()
    }

    /// The speaker line of an agent's reply (the widget names the agent in its frame).
    fn header(self, name: &str) -> Option<String> {
        let escaped = self.escape(name);
        match self {
            Dialect::TelegramMarkdownV2 => Some(format!("*{escaped}*\n")),
            Dialect::Discord => Some(format!("**{escaped}**\n")),
            Dialect::Widget => None,
        }
    }

    /// Renders an outbound message as the platform messages to send, in order: escaped, with
    /// the agent's name in bold on the first piece of an agent reply, each piece within
    /// [`Dialect::limit`].
    pub fn render(self, message: &Outbound) -> Vec<String> {
        let header = match &message.from {
            Speaker::Agent(name) if !name.trim().is_empty() => self.header(name.trim()),
            _ => None,
        };
        let header_len = header
            .as_deref()
            .map(|h| h.encode_utf16().count())
            .unwrap_or(0);
        // The header only rides on the first piece; reserving its room on every piece keeps
        // the arithmetic simple and costs a few characters on very long replies.
        let budget = self.limit().saturating_sub(header_len).max(1);
        let mut pieces: Vec<String> = split(&message.text, budget, |s| self.escaped_len(s))
            .into_iter()
            .map(|piece| self.escape(piece))
            .collect();
        if pieces.is_empty() {
            pieces.push(String::new());
        }
        if let Some(header) = header {
            pieces[0] = format!("{header}{}", pieces[0]);
        }
        pieces.retain(|p| !p.trim().is_empty());
        pieces
    }
}

/// Cuts `text` into pieces whose `measure` is at most `limit`, preferring to cut between
/// paragraphs, then lines, then words, and only then inside a word. Whitespace at a cut is
/// dropped; no character is lost or reordered otherwise.
pub fn split(text: &str, limit: usize, measure: impl Fn(&str) -> usize) -> Vec<&str> {
    let limit = limit.max(1);
    let mut pieces = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if measure(rest) <= limit {
            pieces.push(rest);
            break;
        }
        // The longest prefix that fits, measured character by character.
        let mut fit = 0;
        let mut used = 0;
        for (i, c) in rest.char_indices() {
            let w = measure(&rest[i..i + c.len_utf8()]);
            if used + w > limit {
                break;
            }
            used += w;
            fit = i + c.len_utf8();
        }
        if fit == 0 {
            // A single character wider than the limit: send it alone rather than loop.
            fit = rest
                .chars()
                .next()
                .map(char::len_utf8)
                .unwrap_or(rest.len());
        }
        let cut = best_cut(&rest[..fit]).unwrap_or(fit);
        let piece = rest[..cut].trim_end();
        if !piece.is_empty() {
            pieces.push(piece);
        }
        rest = rest[cut..].trim_start();
    }
    pieces
}

/// Where to end a piece inside `prefix` (which already fits): after the last paragraph
/// break, line break or space in its second half, so pieces do not become tiny.
fn best_cut(prefix: &str) -> Option<usize> {
    let half = prefix.len() / 2;
    for sep in ["\n\n", "\n"] {
        if let Some(i) = prefix.rfind(sep) {
            if i > half {
                return Some(i + sep.len());
            }
        }
    }
    prefix
        .char_indices()
        .rev()
        .find(|&(i, c)| c.is_whitespace() && i > half)
        .map(|(i, c)| i + c.len_utf8())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{ChannelKind, ConversationId};

    fn outbound(text: &str, from: Speaker) -> Outbound {
        Outbound {
            conversation_id: ConversationId::from("c1"),
            channel: ChannelKind::Telegram,
            channel_user: "42".into(),
            text: text.into(),
            from,
            time: chrono::Utc::now(),
            turn: None,
            survey: None,
        }
    }

    #[test]
    fn telegram_escapes_every_markdown_v2_character() {
        let text = "Order #A-1001 (2 items) costs 19.99! _see_ *this* [link] ~x~ `c` > q | {b} = +";
        let escaped = Dialect::TelegramMarkdownV2.escape(text);
        assert_eq!(
            escaped,
            "Order \\#A\\-1001 \\(2 items\\) costs 19\\.99\\! \\_see\\_ \\*this\\* \\[link\\] \
             \\~x\\~ \\`c\\` \\> q \\| \\{b\\} \\= \\+"
        );
    }

    #[test]
    fn discord_escapes_markdown_and_mentions_but_not_full_stops() {
        let escaped = Dialect::Discord.escape("**hi** @everyone <#1> 1. ok");
        assert_eq!(escaped, "\\*\\*hi\\*\\* \\@everyone \\<\\#1\\> 1. ok");
    }

    #[test]
    fn short_text_is_one_piece() {
        let m = outbound("Your order has shipped.", Speaker::Bot);
        assert_eq!(
            Dialect::Discord.render(&m),
            vec!["Your order has shipped.".to_string()]
        );
    }

    #[test]
    fn agent_reply_carries_the_agent_name_in_bold() {
        let m = outbound("On it.", Speaker::Agent("Ana_B".into()));
        assert_eq!(
            Dialect::TelegramMarkdownV2.render(&m),
            vec!["*Ana\\_B*\nOn it\\.".to_string()]
        );
        assert_eq!(
            Dialect::Discord.render(&m),
            vec!["**Ana\\_B**\nOn it.".to_string()]
        );
    }

    #[test]
    fn long_reply_is_split_under_each_limit_without_losing_words() {
        let para = "Refunds go back to the card you paid with. ".repeat(50);
        let text = format!("{para}\n\n{para}\n\n{para}");
        for dialect in [Dialect::TelegramMarkdownV2, Dialect::Discord] {
            let pieces = dialect.render(&outbound(&text, Speaker::Bot));
            assert!(
                pieces.len() >= 2,
                "{dialect:?} gave {} piece(s)",
                pieces.len()
            );
            for p in &pieces {
                assert!(p.encode_utf16().count() <= dialect.limit());
            }
            let words: Vec<&str> = text.split_whitespace().collect();
            let joined = pieces.join(" ");
            let unescaped: String = joined.replace('\\', "");
            let got: Vec<&str> = unescaped.split_whitespace().collect();
            assert_eq!(got, words);
        }
    }

    #[test]
    fn escaping_counts_toward_the_limit() {
        // 3000 dots are 6000 units once escaped for Telegram: at least two pieces.
        let text = ".".repeat(3000);
        let pieces = Dialect::TelegramMarkdownV2.render(&outbound(&text, Speaker::Bot));
        assert_eq!(pieces.len(), 2);
        assert!(pieces.iter().all(|p| p.len() <= TELEGRAM_LIMIT));
        assert!(pieces.iter().all(|p| !p.ends_with('\\')));
    }

    #[test]
    fn split_prefers_paragraphs_then_words() {
        let text = "first paragraph here\n\nsecond one";
        assert_eq!(
            split(text, 25, |s| s.len()),
            vec!["first paragraph here", "second one"]
        );
        assert_eq!(
            split("alpha beta gamma", 11, |s| s.len()),
            vec!["alpha beta", "gamma"]
        );
        assert_eq!(split("abcdefgh", 3, |s| s.len()), vec!["abc", "def", "gh"]);
    }

    #[test]
    fn split_never_cuts_inside_a_character() {
        let text = "é".repeat(10) + &"😀".repeat(5);
        let pieces = split(&text, 4, |s| s.encode_utf16().count());
        assert_eq!(pieces.concat(), text);
        assert!(pieces.iter().all(|p| p.encode_utf16().count() <= 4));
    }
}
