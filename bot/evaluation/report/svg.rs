//! The report's charts as inline SVG: the confusion heat map, the confidence histogram with
//! the out-of-scope threshold and the reliability plot. Each is one well-formed `<svg>`
//! element (XML: only the five escapes of [`escape`], no HTML entities), every mark with a
//! `<title>` a browser shows on hover.

use std::fmt::Write as _;

use super::{ConfidenceHistogram, Reliability};

/// `s` safe inside HTML text, attribute values and SVG (XML): `& < > " '` escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Colours: right answers and the diagonal, wrong answers and the rest, ink, grid, muted.
const RIGHT: &str = "#2563eb";
const WRONG: &str = "#dc2626";
const INK: &str = "#1f2937";
const GRID: &str = "#e5e7eb";
const MUTED: &str = "#9ca3af";

/// Width of one character of the charts' 11 px sans-serif, roughly, for margins.
const CHAR: f64 = 6.2;

/// A label cut to `max` characters (an ellipsis marks the cut); the full one goes in the
/// `<title>`.
fn abbreviate(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        label.to_string()
    } else {
        let cut: String = label.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

fn open(out: &mut String, width: f64, height: f64, label: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" role="img" aria-label="{}" font-family="system-ui, sans-serif" font-size="11">"#,
        escape(label)
    );
}

/// A confusion heat map: rows the truth, columns the answer; each cell's colour as strong
/// as its share of the row (`shares`), the diagonal blue and the rest red, its count
/// written in it. Labels that are neither a truth nor an answer are left out.
pub fn heat_map(
    labels: &[String],
    counts: &[Vec<usize>],
    shares: &[Vec<f64>],
    rows_are: &str,
    columns_are: &str,
) -> String {
    // labels that are neither a truth nor an answer in the test would be empty lines
    let used = |i: usize| {
        let row = counts.get(i).is_some_and(|r| r.iter().any(|&c| c > 0));
        row || counts.iter().any(|r| r.get(i).is_some_and(|&c| c > 0))
    };
    let keep: Vec<usize> = (0..labels.len()).filter(|&i| used(i)).collect();
    let labels: Vec<&String> = keep.iter().map(|&i| &labels[i]).collect();
    let k = labels.len().max(1);
    let cell = (560.0 / k as f64).clamp(18.0, 64.0);
    let short: Vec<String> = labels.iter().map(|l| abbreviate(l, 22)).collect();
    let longest = short.iter().map(|l| l.chars().count()).max().unwrap_or(4) as f64;
    let left = 30.0 + longest * CHAR;
    let top = 10.0;
    let bottom = 36.0 + longest * CHAR * 0.72;
    let width = left + k as f64 * cell + 12.0;
    let height = top + k as f64 * cell + bottom;
    let mut out = String::new();
    open(
        &mut out,
        width,
        height,
        &format!("confusion heat map, rows: {rows_are}, columns: {columns_are}"),
    );
    let font = (cell * 0.42).min(13.0);
    for (t, &ti) in keep.iter().enumerate() {
        for (p, &pi) in keep.iter().enumerate() {
            let count = counts[ti].get(pi).copied().unwrap_or(0);
            let share = shares
                .get(ti)
                .and_then(|r| r.get(pi))
                .copied()
                .unwrap_or(0.0);
            let (x, y) = (left + p as f64 * cell, top + t as f64 * cell);
            let (fill, opacity) = match (count, t == p) {
                (0, _) => ("#f9fafb", 1.0),
                (_, true) => (RIGHT, 0.12 + 0.88 * share),
                (_, false) => (WRONG, 0.12 + 0.88 * share),
            };
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{w:.1}" fill="{fill}" fill-opacity="{opacity:.3}" stroke="{GRID}" stroke-width="0.5"><title>{} → {}: {count} ({:.1}% of {})</title></rect>"#,
                escape(labels[t]),
                escape(labels[p]),
                100.0 * share,
                escape(labels[t]),
                w = cell,
            );
            if count > 0 {
                let ink = if opacity > 0.55 { "#ffffff" } else { INK };
                let _ = write!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" dominant-baseline="central" font-size="{font:.1}" fill="{ink}" pointer-events="none">{count}</text>"#,
                    x + cell / 2.0,
                    y + cell / 2.0,
                );
            }
        }
    }
    for (i, (full, s)) in labels.iter().zip(&short).enumerate() {
        let middle = i as f64 * cell + cell / 2.0;
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" dominant-baseline="central"><title>{}</title>{}</text>"#,
            left - 6.0,
            top + middle,
            escape(full),
            escape(s)
        );
        let (x, y) = (left + middle, top + k as f64 * cell + 8.0);
        let _ = write!(
            out,
            r#"<text transform="translate({x:.1},{y:.1}) rotate(-45)" text-anchor="end" dominant-baseline="central"><title>{}</title>{}</text>"#,
            escape(full),
            escape(s)
        );
    }
    let middle_rows = top + k as f64 * cell / 2.0;
    let _ = write!(
        out,
        r#"<text transform="translate(12,{middle_rows:.1}) rotate(-90)" text-anchor="middle" font-weight="600">{}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" font-weight="600">{}</text></svg>"#,
        escape(rows_are),
        left + k as f64 * cell / 2.0,
        height - 6.0,
        escape(columns_are)
    );
    out
}

/// A count short enough for a narrow bin: 1234 as 1.2k.
fn compact(n: usize) -> String {
    if n < 1000 {
        n.to_string()
    } else {
        format!("{:.1}k", n as f64 / 1000.0)
    }
}

/// A round maximum for a count axis, and its tick step.
fn count_axis(max: usize) -> (usize, usize) {
    let max = max.max(1);
    let rough = (max as f64 / 5.0).ceil() as usize;
    let step = [
        1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000,
    ]
    .into_iter()
    .find(|&s| s >= rough)
    .unwrap_or(rough);
    (max.div_ceil(step) * step, step)
}

/// The confidence histogram: right answers above the axis and wrong ones below, each on
/// its own scale (a few wrong answers stay visible beside hundreds of right ones), each
/// bar's count written at its end, the out-of-scope threshold a dashed line.
pub fn histogram(h: &ConfidenceHistogram) -> String {
    let (width, height) = (680.0, 350.0);
    let (left, right, top) = (48.0, 16.0, 30.0);
    let (up, down) = (170.0, 100.0);
    let pw = width - left - right;
    let axis = top + up;
    let (right_max, right_step) = count_axis(h.bins.iter().map(|b| b.right).max().unwrap_or(0));
    let (wrong_max, wrong_step) = count_axis(h.bins.iter().map(|b| b.wrong).max().unwrap_or(0));
    let y_right = |v: usize| axis - v as f64 / right_max as f64 * up;
    let y_wrong = |v: usize| axis + v as f64 / wrong_max as f64 * down;
    let mut out = String::new();
    open(
        &mut out,
        width,
        height,
        "confidence histogram: right answers above the axis, wrong ones below",
    );
    let ticks = (0..=right_max)
        .step_by(right_step)
        .map(|v| (v, y_right(v)))
        .chain(
            (wrong_step..=wrong_max)
                .step_by(wrong_step)
                .map(|v| (v, y_wrong(v))),
        );
    for (v, y) in ticks {
        let _ = write!(
            out,
            r#"<line x1="{left}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{GRID}"/><text x="{:.1}" y="{y:.1}" text-anchor="end" dominant-baseline="central">{v}</text>"#,
            left + pw,
            left - 6.0,
        );
    }
    for b in &h.bins {
        let x = left + b.lower * pw + 1.0;
        let w = ((b.upper - b.lower) * pw - 2.0).max(1.0);
        let _ = write!(
            out,
            r#"<g><title>confidence {:.2}–{:.2}: {} right, {} wrong</title><rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{RIGHT}"/><rect x="{x:.1}" y="{axis:.1}" width="{w:.1}" height="{:.1}" fill="{WRONG}"/></g>"#,
            b.lower,
            b.upper,
            b.right,
            b.wrong,
            y_right(b.right),
            axis - y_right(b.right),
            y_wrong(b.wrong) - axis,
        );
        for (count, y) in [
            (b.right, y_right(b.right) - 3.0),
            (b.wrong, y_wrong(b.wrong) + 10.0),
        ] {
            if count > 0 {
                let _ = write!(
                    out,
                    r#"<text x="{:.1}" y="{y:.1}" text-anchor="middle" font-size="9" pointer-events="none">{count}</text>"#,
                    x + w / 2.0
                );
            }
        }
    }
    let bottom = axis + down;
    for i in 0..=10 {
        let x = left + i as f64 / 10.0 * pw;
        let _ = write!(
            out,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{:.1}</text>"#,
            bottom + 24.0,
            i as f64 / 10.0
        );
    }
    let _ = write!(
        out,
        r#"<line x1="{left}" x2="{:.1}" y1="{axis:.1}" y2="{axis:.1}" stroke="{INK}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-weight="600">top probability (confidence)</text><text transform="translate(11,{:.1}) rotate(-90)" text-anchor="middle">right</text><text transform="translate(11,{:.1}) rotate(-90)" text-anchor="middle">wrong</text>"#,
        left + pw,
        left + pw / 2.0,
        height - 6.0,
        top + up / 2.0,
        axis + down / 2.0,
    );
    if let Some(t) = h.threshold {
        let x = left + f64::from(t).clamp(0.0, 1.0) * pw;
        // the label on the side of the line with room for it
        let (lx, anchor) = if t > 0.7 {
            (x - 4.0, "end")
        } else {
            (x + 4.0, "start")
        };
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="{INK}" stroke-width="2" stroke-dasharray="5 3"><title>out-of-scope threshold {t:.3}: {} examples below it are answered out_of_scope</title></line><text x="{lx:.1}" y="{:.1}" text-anchor="{anchor}" font-weight="600">out-of-scope threshold {t:.3}</text>"#,
            top - 6.0,
            bottom + 8.0,
            h.below_threshold,
            top - 10.0,
        );
    }
    let ly = height - 16.0;
    let _ = write!(
        out,
        r#"<rect x="{left}" y="{ly:.1}" width="10" height="10" fill="{RIGHT}"/><text x="{:.1}" y="{:.1}" dominant-baseline="central">right</text><rect x="{:.1}" y="{ly:.1}" width="10" height="10" fill="{WRONG}"/><text x="{:.1}" y="{:.1}" dominant-baseline="central">wrong</text></svg>"#,
        left + 14.0,
        ly + 5.0,
        left + 60.0,
        left + 74.0,
        ly + 5.0,
    );
    out
}

/// A reliability plot: each bin's observed frequency as a bar and a point at its mean
/// prediction, the diagonal of perfect calibration, the count of each bin written under
/// the axis and the expected calibration error in the title.
pub fn reliability_plot(r: &Reliability) -> String {
    let size = 200.0;
    let (left, top) = (42.0, 30.0);
    let (width, height) = (left + size + 12.0, top + size + 56.0);
    let px = |v: f64| left + v.clamp(0.0, 1.0) * size;
    let py = |v: f64| top + size - v.clamp(0.0, 1.0) * size;
    let mut out = String::new();
    open(
        &mut out,
        width,
        height,
        &format!("reliability of {}, ECE {:.3}", r.label, r.ece),
    );
    let _ = write!(
        out,
        r#"<text x="{left}" y="14" font-weight="600">{} · ECE {:.3}</text>"#,
        escape(&abbreviate(&r.label, 22)),
        r.ece
    );
    for i in 0..=5 {
        let v = i as f64 / 5.0;
        let _ = write!(
            out,
            r#"<line x1="{left}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{GRID}"/><text x="{:.1}" y="{y:.1}" text-anchor="end" dominant-baseline="central">{v:.1}</text><text x="{:.1}" y="{:.1}" text-anchor="middle">{v:.1}</text>"#,
            left + size,
            left - 5.0,
            px(v),
            top + size + 13.0,
            y = py(v),
        );
    }
    let _ = write!(
        out,
        r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{MUTED}" stroke-dasharray="4 3"><title>perfect calibration</title></line>"#,
        px(0.0),
        py(0.0),
        px(1.0),
        py(1.0)
    );
    let mut points = Vec::new();
    for b in &r.bins {
        let (x, w) = (px(b.lower) + 1.0, (b.upper - b.lower) * size - 2.0);
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="8" fill="{}">{}</text>"#,
            x + w / 2.0,
            top + size + 26.0,
            if b.count == 0 { MUTED } else { INK },
            compact(b.count)
        );
        if b.count == 0 {
            continue;
        }
        let _ = write!(
            out,
            r#"<rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{RIGHT}" fill-opacity="0.3"><title>predicted {:.1}–{:.1}: {} examples, mean prediction {:.3}, observed {:.3}</title></rect>"#,
            py(b.observed),
            top + size - py(b.observed),
            b.lower,
            b.upper,
            b.count,
            b.mean_predicted,
            b.observed
        );
        points.push((px(b.mean_predicted), py(b.observed)));
    }
    let line: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    let _ = write!(
        out,
        r#"<polyline points="{}" fill="none" stroke="{RIGHT}" stroke-width="1.5"/>"#,
        line.join(" ")
    );
    for (x, y) in points {
        let _ = write!(
            out,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{RIGHT}"/>"#
        );
    }
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="9" text-anchor="end">n</text><text x="{:.1}" y="{:.1}" text-anchor="middle" font-weight="600">predicted probability</text><text transform="translate(11,{:.1}) rotate(-90)" text-anchor="middle" font-weight="600">observed</text></svg>"#,
        left - 5.0,
        top + size + 26.0,
        left + size / 2.0,
        height - 6.0,
        top + size / 2.0
    );
    out
}
