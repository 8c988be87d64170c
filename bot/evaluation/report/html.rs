//! A report's figures as one self-contained HTML page: inline CSS, inline SVG charts
//! (`svg.rs`), no script. Every text from a test file passes through [`escape`].

use std::fmt::Write as _;

use super::svg::{self, escape};
use super::{ClassificationFigures, EscalationFigures};
use crate::evaluation::Expected;

const STYLE: &str = "
body{font:14px/1.45 system-ui,sans-serif;color:#1f2937;margin:0;background:#f8fafc}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
h3{font-size:14px;margin:16px 0 6px}
.muted{color:#6b7280}.small{font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:16px 0}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;min-width:110px}
.card b{display:block;font-size:22px}.card span{color:#6b7280;font-size:12px}
table{border-collapse:collapse;background:#fff;border:1px solid #e5e7eb;font-size:13px}
th,td{padding:4px 10px;border-bottom:1px solid #f1f5f9;text-align:left;vertical-align:top}
th{background:#f1f5f9;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-block;height:8px;background:#2563eb;border-radius:2px;vertical-align:middle}
.bad .bar{background:#dc2626}
.chart{display:inline-block;max-width:calc(100% - 18px);vertical-align:top;background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:8px;overflow-x:auto}
.panels{display:flex;flex-wrap:wrap;gap:10px}
.text{max-width:520px;word-break:break-word}
";

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>",
        escape(title)
    );
}

fn foot(out: &mut String, command: &str) {
    let _ = writeln!(
        out,
        "<p class=\"muted small\">Made by <code>{}</code>. Hover a chart's cells and bars for \
         their numbers.</p></main></body></html>",
        escape(command)
    );
}

fn card(out: &mut String, value: &str, what: &str) {
    let _ = write!(
        out,
        "<div class=\"card\"><b>{}</b><span>{}</span></div>",
        escape(value),
        escape(what)
    );
}

/// A figure between 0 and 1 with a bar as long as it, red when below `good`.
fn bar_cell(v: f64, good: f64) -> String {
    format!(
        "<td class=\"n{}\">{v:.3} <span class=\"bar\" style=\"width:{:.0}px\"></span></td>",
        if v < good { " bad" } else { "" },
        (v.clamp(0.0, 1.0) * 60.0).max(1.0)
    )
}

/// The page of a classifier's report (intents or a message head).
pub fn classification_page(f: &ClassificationFigures) -> String {
    let s = &f.scores;
    let mut out = String::new();
    head(&mut out, &format!("frontdesk · eval {}", f.what));
    let _ = write!(
        out,
        "<h1>Evaluation: {}</h1><p class=\"muted\">Test file <code>{}</code>, {} examples.</p>\
         <div class=\"cards\">",
        escape(&f.what),
        escape(&f.test_file),
        s.examples
    );
    card(&mut out, &format!("{:.3}", s.accuracy), "accuracy");
    card(
        &mut out,
        &format!("{:.3}", s.macro_precision),
        "macro precision",
    );
    card(&mut out, &format!("{:.3}", s.macro_recall), "macro recall");
    card(&mut out, &format!("{:.3}", s.macro_f1), "macro F1");
    if let Some(h) = &f.confidence {
        if let Some(t) = h.threshold {
            card(&mut out, &format!("{t:.3}"), "out-of-scope threshold");
            card(
                &mut out,
                &h.below_threshold.to_string(),
                "examples below the threshold",
            );
        }
    }
    if let Some(c) = &f.calibration {
        card(
            &mut out,
            &format!("{:.3}", c.top_label.ece),
            "expected calibration error",
        );
    }
    out.push_str("</div>");

    out.push_str(
        "<h2>Per label</h2><p class=\"muted small\">Lowest F1 first; precision: of the \
         examples answered as the label, the share that were; recall: of the label's examples, \
         the share found.</p><table><tr><th>label</th><th>precision</th><th>recall</th>\
         <th>F1</th><th>support</th></tr>",
    );
    let mut rows: Vec<_> = s
        .per_label
        .iter()
        .filter(|l| l.support > 0 || l.precision > 0.0)
        .collect();
    rows.sort_by(|a, b| a.f1.total_cmp(&b.f1).then_with(|| a.label.cmp(&b.label)));
    for l in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td>{}{}{}<td class=\"n\">{}</td></tr>",
            escape(&l.label),
            bar_cell(l.precision, 0.8),
            bar_cell(l.recall, 0.8),
            bar_cell(l.f1, 0.8),
            l.support
        );
    }
    let _ = write!(
        out,
        "<tr><th>macro average</th><td class=\"n\">{:.3}</td><td class=\"n\">{:.3}</td>\
         <td class=\"n\">{:.3}</td><td class=\"n\">{}</td></tr></table>",
        s.macro_precision, s.macro_recall, s.macro_f1, s.examples
    );

    out.push_str(
        "<h2>Confusion</h2><p class=\"muted small\">Rows: the true label; columns: the \
         answer. Colour: the share of the row (blue right, red wrong); the count is written in \
         the cell.</p><div class=\"chart\">",
    );
    out.push_str(&svg::heat_map(
        &s.labels,
        &s.matrix,
        &f.row_shares,
        "truth",
        "answer",
    ));
    out.push_str("</div>");

    if let Some(h) = &f.confidence {
        out.push_str(
            "<h2>Confidence</h2><p class=\"muted small\">The top probability of each test \
             example; below the dashed line the answer is out of scope.</p><div class=\"chart\">",
        );
        out.push_str(&svg::histogram(h));
        out.push_str("</div>");
    }
    if let Some(c) = &f.calibration {
        let _ = write!(
            out,
            "<h2>Calibration</h2><p class=\"muted small\">Predicted probability in 10 bins \
             against how often it came true; on the dashed diagonal a probability means what it \
             says. Expected calibration error (top probability against right answers): \
             <b>{:.3}</b>. The count of each bin is written under its axis.</p>\
             <div class=\"panels\">",
            c.top_label.ece
        );
        for r in std::iter::once(&c.top_label).chain(&c.classes) {
            out.push_str("<div class=\"chart\">");
            out.push_str(&svg::reliability_plot(r));
            out.push_str("</div>");
        }
        out.push_str("</div>");
    }
    if !f.worst.is_empty() {
        out.push_str(
            "<h2>Worst examples</h2><p class=\"muted small\">Wrong answers given with the \
             highest confidence.</p><table><tr><th>text</th><th>truth</th><th>answer</th>\
             <th>confidence</th></tr>",
        );
        for w in &f.worst {
            let _ = write!(
                out,
                "<tr><td class=\"text\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{:.3}</td></tr>",
                escape(&w.text),
                escape(&w.truth),
                escape(&w.predicted),
                w.confidence
            );
        }
        out.push_str("</table>");
    }
    foot(
        &mut out,
        &format!("frontdesk eval {} --test {}", f.what, f.test_file),
    );
    out
}

/// The page of `eval escalation`: one section per run (two with `--judge`).
pub fn escalation_page(runs: &[EscalationFigures]) -> String {
    let mut out = String::new();
    head(&mut out, "frontdesk · eval escalation");
    out.push_str("<h1>Evaluation: escalation</h1>");
    for f in runs {
        escalation_section(&mut out, f);
    }
    let test = runs.first().map_or("", |f| f.test_file.as_str());
    foot(
        &mut out,
        &format!("frontdesk eval escalation --test {test}"),
    );
    out
}

fn escalation_section(out: &mut String, f: &EscalationFigures) {
    let r = &f.report;
    let _ = write!(
        out,
        "<h2>{}</h2><p class=\"muted\">Test file <code>{}</code>: {} conversations, {} of \
         them for a person.</p><div class=\"cards\">",
        escape(&f.run),
        escape(&f.test_file),
        r.conversations,
        r.should_escalate
    );
    card(out, &format!("{:.3}", r.precision), "precision");
    card(out, &format!("{:.3}", r.recall), "recall");
    card(out, &format!("{:.3}", r.f1), "F1");
    card(out, &r.escalated.to_string(), "escalated");
    card(
        out,
        &format!("{:.1}%", 100.0 * r.false_escalation_rate),
        "routine conversations escalated",
    );
    out.push_str("</div><div class=\"chart\">");
    let labels = ["a person".to_string(), "the bot".to_string()];
    let counts: Vec<Vec<usize>> = f.confusion.iter().map(|r| r.to_vec()).collect();
    out.push_str(&svg::heat_map(
        &labels,
        &counts,
        &super::row_shares(&counts),
        "label",
        "outcome",
    ));
    out.push_str(
        "</div><h3>Per rule</h3><p class=\"muted small\">Precision: of the escalated \
         conversations a rule fired on, the share a person should take; recall: of those a \
         person should take, the share it escalated.</p><table><tr><th>rule</th><th>right</th>\
         <th>wrong</th><th>precision</th><th>recall</th><th>F1</th></tr>",
    );
    for rule in &f.rules {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>{}{}{}</tr>",
            escape(&rule.rule),
            rule.right,
            rule.wrong,
            bar_cell(rule.precision, 0.8),
            bar_cell(rule.recall, 0.0),
            bar_cell(rule.f1, 0.0)
        );
    }
    out.push_str(
        "</table><h3>Per label (<code>why</code>)</h3><p class=\"muted small\">escalate: \
         recall; bot: the share kept with the bot.</p><table><tr><th>expected</th><th>why</th>\
         <th>right</th><th>conversations</th><th>rate</th></tr>",
    );
    for w in &r.per_why {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>{}</tr>",
            expected(w.expected),
            escape(&w.why),
            w.right,
            w.conversations,
            bar_cell(w.rate, 0.8)
        );
    }
    out.push_str("</table>");
    if !r.misses.is_empty() {
        let _ = write!(
            out,
            "<h3>Misses ({})</h3><table><tr><th>conversation</th><th>miss</th><th>why</th>\
             <th>rules</th><th>texts</th></tr>",
            r.misses.len()
        );
        for m in &r.misses {
            let kind = match m.expected {
                Expected::Escalate => "missed escalation",
                Expected::Bot => "false escalation",
            };
            let texts: Vec<String> = m.texts.iter().map(|t| escape(t)).collect();
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{kind}</td><td>{}</td><td>{}</td><td class=\"text\">{}</td></tr>",
                escape(&m.conversation),
                escape(m.why.as_deref().unwrap_or("-")),
                escape(&m.rules.join(", ")),
                texts.join("<br>")
            );
        }
        out.push_str("</table>");
    }
}

fn expected(e: Expected) -> &'static str {
    match e {
        Expected::Escalate => "escalate",
        Expected::Bot => "bot",
    }
}
