//! `frontdesk nlu` as a library function: messages line by line in, one JSON analysis per line
//! out, in order. Lines are taken in batches of `batch`, so memory stays bounded whatever the
//! input length.

use std::io::{BufRead, Write};

use super::{Nlu, NluError};

/// Analyse every line of `input` and write one JSON object per line to `output`.
/// Returns the number of lines answered.
pub fn analyze_lines<R: BufRead, W: Write>(
    nlu: &Nlu,
    input: R,
    mut output: W,
    batch: usize,
) -> Result<usize, NluError> {
    let io = |e: std::io::Error| NluError::Other(format!("stdin/stdout: {e}"));
    let mut pending: Vec<String> = Vec::with_capacity(batch);
    let mut answered = 0;
    let flush = |pending: &mut Vec<String>, out: &mut W| -> Result<usize, NluError> {
        let texts: Vec<&str> = pending.iter().map(String::as_str).collect();
        let n = texts.len();
        for a in nlu.analyze(&texts)? {
            serde_json::to_writer(&mut *out, &a).map_err(|e| NluError::Other(e.to_string()))?;
            out.write_all(b"\n").map_err(io)?;
        }
        out.flush().map_err(io)?;
        pending.clear();
        Ok(n)
    };
    for line in input.lines() {
        let line = line.map_err(io)?;
        pending.push(line.trim_end_matches('\r').to_string());
        if pending.len() >= batch {
            answered += flush(&mut pending, &mut output)?;
        }
    }
    if !pending.is_empty() {
        answered += flush(&mut pending, &mut output)?;
    }
    Ok(answered)
}
