//! A what-if (`crate::replay::whatif`) as one self-contained HTML page (inline CSS and SVG, no script, nothing
//! fetched): the counts, the labelled conversations before and after, each queue's load by
//! hour of day as paired bars, and the conversations whose fate changes.

use std::fmt::Write as _;

use super::svg::escape as esc;
use crate::replay::whatif::WhatIf;

const BEFORE: &str = "#9aa5b1";
const AFTER: &str = "#d9480f";

/// One queue's escalations per hour of day, before (grey) and after (orange).
fn hours_chart(queue: &str, before: &[usize], after: &[usize]) -> String {
    let (w, h, pad) = (720.0, 160.0, 24.0);
    let top = before
        .iter()
        .chain(after)
        .copied()
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = (w - 2.0 * pad) / 24.0;
    let bar = slot * 0.4;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{}" role="img" aria-label="escalations to {} by hour of day"><title>escalations to {} by hour of day (UTC)</title>"#,
        h + 20.0,
        esc(queue),
        esc(queue)
    );
    let scale = |n: usize| (n as f64 / top) * (h - pad);
    for hour in 0..24 {
        let x = pad + hour as f64 * slot;
        for (i, (values, colour, side)) in [(before, BEFORE, "before"), (after, AFTER, "after")]
            .iter()
            .enumerate()
        {
            let n = values.get(hour).copied().unwrap_or(0);
            let bh = scale(n);
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="{bar:.1}" height="{bh:.1}" fill="{colour}"><title>{hour:02}:00 {side}: {n}</title></rect>"#,
                x + i as f64 * bar,
                h - bh
            );
        }
        if hour % 3 == 0 {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{}" font-size="10">{hour:02}h</text>"#,
                x,
                h + 14.0
            );
        }
    }
    let _ = write!(
        svg,
        r#"<text x="{pad}" y="12" font-size="10">max {top}</text></svg>"#
    );
    svg
}

/// The page for `what`, titled `title` (what was compared with what).
pub fn whatif_page(what: &WhatIf, title: &str) -> String {
    let mut body = String::new();
    let delta = what.escalated_after as i64 - what.escalated_before as i64;
    let _ = write!(
        body,
        "<h1>What-if: {}</h1><p>{} conversations replayed. Escalated: <b>{}</b> before, <b>{}</b> after ({delta:+}). {} change{}.</p>",
        esc(title),
        what.conversations,
        what.escalated_before,
        what.escalated_after,
        what.changed.len(),
        if what.changed.len() == 1 { "s its fate" } else { " their fate" }
    );
    let (b, a) = (what.labels_before, what.labels_after);
    if b.labelled > 0 {
        let _ = write!(
            body,
            "<h2>Conversations agents labelled ({})</h2><table><tr><th></th><th>before</th><th>after</th></tr>\
             <tr><td>right</td><td>{}</td><td>{}</td></tr>\
             <tr><td>false escalations</td><td>{}</td><td>{}</td></tr>\
             <tr><td>missed (a person was needed)</td><td>{}</td><td>{}</td></tr></table>",
            b.labelled, b.right, a.right, b.false_escalations, a.false_escalations, b.missed, a.missed
        );
    }
    body.push_str("<h2>Queue load by hour of day (UTC)</h2>");
    let _ = write!(
        body,
        r#"<p><span class="key" style="background:{BEFORE}"></span> before <span class="key" style="background:{AFTER}"></span> after</p>"#
    );
    for (queue, before_n, after_n) in what.queue_totals() {
        let empty = vec![0; 24];
        let before = what.load_before.get(&queue).unwrap_or(&empty);
        let after = what.load_after.get(&queue).unwrap_or(&empty);
        let _ = write!(
            body,
            "<h3>{}: {before_n} &rarr; {after_n}</h3>{}",
            esc(&queue),
            hours_chart(&queue, before, after)
        );
    }
    body.push_str("<h2>Conversations whose fate changes</h2>");
    if what.changed.is_empty() {
        body.push_str("<p>None.</p>");
    } else {
        body.push_str("<table><tr><th>change</th><th>conversation</th><th>before</th><th>after</th><th>label</th><th>first message</th></tr>");
        for c in &what.changed {
            let side = |q: &Option<String>, r: &[String]| match q {
                Some(q) => format!("{} <small>({})</small>", esc(q), esc(&r.join(", "))),
                None => "bot".into(),
            };
            let label = match c.label {
                Some(true) => "escalate",
                Some(false) => "bot",
                None => "",
            };
            let _ = write!(
                body,
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{label}</td><td>{}</td></tr>",
                c.change,
                c.change.replace('_', " "),
                esc(&c.conversation),
                side(&c.before_queue, &c.before_rules),
                side(&c.after_queue, &c.after_rules),
                esc(&c.first_message)
            );
        }
        body.push_str("</table>");
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>What-if: {}</title><style>\
         body{{font:14px system-ui,sans-serif;margin:2em;max-width:1100px;color:#1f2933}}\
         table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #cbd2d9;padding:4px 8px;text-align:left;vertical-align:top}}\
         tr.newly_escalated td:first-child{{color:#c92a2a}}tr.no_longer_escalated td:first-child{{color:#2b8a3e}}\
         .key{{display:inline-block;width:12px;height:12px;vertical-align:middle}}</style></head><body>{body}</body></html>\n",
        esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::whatif::{Changed, LabelScore, WhatIf};

    #[test]
    fn the_page_shows_the_figures_and_escapes_what_customers_wrote() {
        let mut what = WhatIf {
            conversations: 3,
            escalated_before: 1,
            escalated_after: 2,
            labels_before: LabelScore {
                labelled: 2,
                right: 1,
                false_escalations: 0,
                missed: 1,
            },
            labels_after: LabelScore {
                labelled: 2,
                right: 2,
                false_escalations: 0,
                missed: 0,
            },
            ..Default::default()
        };
        let mut hours = vec![0; 24];
        hours[14] = 2;
        what.load_after.insert("general".into(), hours);
        what.changed.push(Changed {
            conversation: "c1".into(),
            change: "newly_escalated",
            before_queue: None,
            after_queue: Some("general".into()),
            before_rules: vec![],
            after_rules: vec!["cancellations to a person".into()],
            label: Some(true),
            first_message: "<script>alert(1)</script> cancel it".into(),
        });
        let page = whatif_page(&what, "rules v2 vs v3");
        assert!(page.contains("<b>1</b> before, <b>2</b> after (+1)"));
        assert!(page.contains("<h3>general: 0 &rarr; 2</h3>"));
        assert!(page.contains("<title>14:00 after: 2</title>"));
        assert!(page.contains("<td>missed (a person was needed)</td><td>1</td><td>0</td>"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; cancel it"));
        assert!(!page.contains("<script>"));
    }
}
