//! The `frontdesk nlu` line protocol: messages line by line in, one JSON [`Analysis`] per
//! line out, in order. Lines are taken in batches, so memory stays bounded whatever the input
//! length.
//!
//! [`Analysis`]: crate::Analysis

use std::io::{BufRead, Write};

use crate::{Nlu, NluError};

impl Nlu {
    /// Analyse every line of `input` (a trailing `\r` dropped) in batches of `batch` and write
    /// one JSON object per line to `output`, flushed after each batch. Returns the number of
    /// lines answered.
    pub fn analyze_lines<R: BufRead, W: Write>(
        &self,
        input: R,
        output: W,
        batch: usize,
    ) -> Result<usize, NluError> {
        analyze_lines(self, input, output, batch.max(1))
    }
}

fn analyze_lines<R: BufRead, W: Write>(
    nlu: &Nlu,
    input: R,
    mut output: W,
    batch: usize,
) -> Result<usize, NluError> {
    let io = |e: std::io::Error| NluError::data_from("cannot read or write the message stream", e);
    let mut pending: Vec<String> = Vec::with_capacity(batch);
    let mut answered = 0;
    let flush = |pending: &mut Vec<String>, out: &mut W| -> Result<usize, NluError> {
        let texts: Vec<&str> = pending.iter().map(String::as_str).collect();
        let n = texts.len();
        for a in nlu.analyze(&texts)? {
            serde_json::to_writer(&mut *out, &a)
                .map_err(|e| NluError::data_from("cannot write an analysis", e))?;
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
