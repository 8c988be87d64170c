//! Logs through `tracing`, to stderr, filtered by `RUST_LOG` (default `info`). Every log line
//! is one line: control characters that came in with outside input (a login name, a user id
//! with a newline) are written escaped (`\n`, `\r`, `\u{7}`), so nobody can forge a line.

use std::io::{self, Write};

pub fn init() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| OneLine(io::stderr()))
        .try_init();
}

/// A writer that escapes every control character of a log event but its final newline and
/// the formatter's own colour codes (ESC; `tracing-subscriber` escapes those in values).
/// The formatter writes each event with one `write`, so "final" is the end of that write.
pub struct OneLine<W: Write>(pub W);

/// `bytes` with every control character but tab, ESC and a final newline escaped.
pub fn escape_controls(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let clean = |b: &u8| !b.is_ascii_control() || *b == b'\t' || *b == 0x1b;
    if body.iter().all(clean) {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() + 16);
    for b in body {
        match *b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b if clean(&b) => out.push(b),
            b => out.extend_from_slice(format!("\\u{{{b:x}}}").as_bytes()),
        }
    }
    if body.len() < bytes.len() {
        out.push(b'\n');
    }
    std::borrow::Cow::Owned(out)
}

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(&escape_controls(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user id with a newline and a fake log line behind it stays on one line.
    #[test]
    fn a_forged_line_stays_on_its_own_line() {
        let event = b"INFO frontdesk: wrong /link code identity=web:x\n2026-01-01 INFO admin logged in\r\x07\n";
        let out = escape_controls(event);
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        assert!(text.ends_with("\\r\\u{7}\n"), "{text}");
        assert!(text.contains("identity=web:x\\n2026-01-01"), "{text}");
        // A clean line is passed through as it is.
        assert!(matches!(
            escape_controls(b"plain\tline\n"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn events_through_the_writer_are_escaped() {
        let mut sink = Vec::new();
        OneLine(&mut sink).write_all(b"name=a\nb\n").unwrap();
        assert_eq!(sink, b"name=a\\nb\n");
    }
}
