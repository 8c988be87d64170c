//! The lead's KPI dashboard: one self-contained HTML page (inline CSS and SVG, no script)
//! with the headline figures (value, sample size, formula), the time series, the
//! histograms, escalation by rule and the split by one dimension. The filter form sends
//! the same query parameters as `GET /api/v1/kpis`.

use std::fmt::Write as _;

use super::{Figure, Histogram, Report};
use crate::evaluation::report::escape;

const STYLE: &str = "body{font:14px system-ui,sans-serif;color:#1f2937;margin:0;background:#f9fafb}\
main{max-width:1180px;margin:0 auto;padding:16px}h1{font-size:20px}h2{font-size:16px;margin-top:28px}\
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:10px}\
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px}\
.card b{display:block;font-size:22px}.card .k{font-weight:600}.small{font-size:11px;color:#6b7280}\
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #e5e7eb;padding:4px 8px;text-align:right}\
th:first-child,td:first-child{text-align:left}form{display:flex;flex-wrap:wrap;gap:8px;align-items:end}\
label{display:flex;flex-direction:column;font-size:12px}.charts{display:flex;flex-wrap:wrap;gap:16px}";

/// The headline figures, in the order a lead reads them, with their labels.
const HEADLINE: &[(&str, &str)] = &[
    ("conversations", "Conversations"),
    ("containment", "Containment (bot resolved)"),
    ("escalation_rate", "Escalation rate"),
    ("answered_within_2min", "Person answered within 2 min"),
    ("answered_within_sla", "Answered within SLA"),
    ("first_response_bot_secs", "First response, bot (median)"),
    (
        "first_response_person_secs",
        "First response, person (median)",
    ),
    (
        "first_response_person_business_secs",
        "First response, person, business time",
    ),
    ("waiting_secs", "Waiting for a person (median)"),
    ("handle_secs", "Handle time (AHT)"),
    ("fcr", "First-contact resolution"),
    ("csat", "CSAT (4-5 of 5)"),
    ("csat_mean", "CSAT mean"),
    ("nps", "NPS"),
    ("sentiment_start", "Negative sentiment at start"),
    ("sentiment_end", "Negative sentiment at end"),
];

/// How a figure reads: shares in %, seconds as time, the rest plainly.
pub fn format_value(kpi: &str, f: &Figure) -> String {
    let Some(v) = f.value else {
        return "—".into();
    };
    if kpi == "conversations" {
        format!("{v:.0}")
    } else if kpi == "nps" {
        format!("{v:+.0}")
    } else if kpi.ends_with("_secs") {
        duration(v)
    } else if kpi == "csat_mean" {
        format!("{v:.2}")
    } else {
        format!("{:.1}%", v * 100.0)
    }
}

fn duration(secs: f64) -> String {
    if secs > 0.0 && secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else if secs < 90.0 {
        format!("{secs:.0} s")
    } else if secs < 5400.0 {
        format!("{:.1} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

/// The dashboard for `report`; `query` is the request's query string (for the CSV link).
pub fn dashboard(report: &Report, query: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>KPIs</title>\
         <style>{STYLE}</style></head><body><main><h1>KPIs</h1><p class=\"small\"><a href=\"/console/lead\">Lead's cockpit</a> · <a href=\"/console\">Agent console</a></p><p class=\"small\">Conversations \
         started {} to {} (UTC), computed {}.{} Every figure shows its sample size (n) and its \
         formula.</p>",
        report.since.format("%Y-%m-%d %H:%M"),
        report.until.format("%Y-%m-%d %H:%M"),
        report.generated.format("%Y-%m-%d %H:%M:%S"),
        if report.truncated {
            " <b>Only the newest 20,000 conversations were read: narrow the period.</b>"
        } else {
            ""
        }
    );
    filter_form(&mut out, query);
    out.push_str("<div class=\"cards\">");
    for (kpi, label) in HEADLINE {
        if let Some(f) = report.kpis.get(kpi) {
            let _ = write!(
                out,
                "<div class=\"card\" data-kpi=\"{kpi}\"><span class=\"k\">{}</span><b>{}</b>\
                 <span class=\"small\">n = {} · {}</span></div>",
                escape(label),
                escape(&format_value(kpi, f)),
                f.n,
                escape(&f.formula)
            );
        }
    }
    out.push_str("</div><h2>Over the period</h2><div class=\"charts\">");
    let hourly = report.series.len() > 1
        && (report.series[1].start - report.series[0].start) < chrono::Duration::days(1);
    let labels: Vec<String> = report
        .series
        .iter()
        .map(|b| {
            if hourly {
                b.start.format("%H:00").to_string()
            } else {
                b.start.format("%m-%d").to_string()
            }
        })
        .collect();
    let counts: Vec<Option<f64>> = report
        .series
        .iter()
        .map(|b| Some(b.conversations as f64))
        .collect();
    out.push_str(&bars_chart(
        "Conversations started",
        &labels,
        &counts,
        false,
    ));
    let pick = |f: fn(&super::Bucket) -> Option<f64>| -> Vec<Option<f64>> {
        report.series.iter().map(f).collect()
    };
    out.push_str(&bars_chart(
        "Containment",
        &labels,
        &pick(|b| b.containment),
        true,
    ));
    out.push_str(&bars_chart(
        "Person answered within 2 min",
        &labels,
        &pick(|b| b.answered_within_2min),
        true,
    ));
    out.push_str(&bars_chart("CSAT (4-5)", &labels, &pick(|b| b.csat), true));
    out.push_str("</div><h2>Distributions</h2><div class=\"charts\">");
    for h in &report.histograms {
        out.push_str(&histogram_chart(h));
    }
    out.push_str(
        "</div><h2>Escalation by rule</h2><table><tr><th>rule</th><th>rate</th><th>n</th></tr>",
    );
    for (rule, f) in &report.escalation_by_rule {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(rule),
            escape(&format_value("escalation_rate", f)),
            f.n
        );
    }
    out.push_str("</table>");
    if !report.groups.is_empty() {
        split_table(&mut out, report);
    }
    let csv = if query.is_empty() {
        "format=csv".to_string()
    } else {
        format!("{query}&format=csv")
    };
    let _ = write!(
        out,
        "<p><a href=\"/console/api/kpis?{}\">Download CSV</a> · the same figures as JSON: \
         <code>GET /api/v1/kpis?{}</code> (lead key)</p></main></body></html>",
        escape(&csv),
        escape(query)
    );
    out
}

fn filter_form(out: &mut String, query: &str) {
    let value = |name: &str| -> String {
        url_params(query)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .unwrap_or_default()
    };
    out.push_str("<form method=\"get\">");
    for (name, hint) in [
        ("since", "24h, 7d or 2026-12-01"),
        ("until", "now or a date"),
        ("queue", "any"),
        ("channel", "any"),
        ("intent", "any"),
        ("rule", "any"),
        ("agent", "any"),
        ("by", "queue, agent, …"),
    ] {
        let _ = write!(
            out,
            "<label>{name}<input name=\"{name}\" value=\"{}\" placeholder=\"{}\"></label>",
            escape(&value(name)),
            escape(hint)
        );
    }
    out.push_str("<button>Show</button></form>");
}

/// `a=1&b=two` as pairs (percent-decoding `+` and `%XX`).
fn url_params(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn split_table(out: &mut String, report: &Report) {
    const COLUMNS: &[&str] = &[
        "conversations",
        "containment",
        "escalation_rate",
        "answered_within_2min",
        "first_response_person_secs",
        "handle_secs",
        "fcr",
        "csat",
        "nps",
    ];
    let by = report
        .by
        .and_then(|d| serde_json::to_value(d).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let _ = write!(
        out,
        "<h2>By {}</h2><table><tr><th>{}</th>",
        escape(&by),
        escape(&by)
    );
    for c in COLUMNS {
        let _ = write!(out, "<th>{c}</th>");
    }
    out.push_str("</tr>");
    for g in &report.groups {
        let _ = write!(out, "<tr><td>{}</td>", escape(&g.key));
        for c in COLUMNS {
            let cell = g
                .kpis
                .get(c)
                .map(|f| {
                    format!(
                        "{} <span class=\"small\">n={}</span>",
                        escape(&format_value(c, f)),
                        f.n
                    )
                })
                .unwrap_or_default();
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// A bar chart of `values` over `labels`; `share` values are 0..1 and drawn against 100%.
fn bars_chart(title: &str, labels: &[String], values: &[Option<f64>], share: bool) -> String {
    let (w, h, left, bottom) = (520.0, 170.0, 36.0, 22.0);
    let top = 20.0;
    let max = if share {
        1.0
    } else {
        values.iter().flatten().cloned().fold(1.0, f64::max)
    };
    let n = values.len().max(1) as f64;
    let step = (w - left - 6.0) / n;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="{t}" font-family="system-ui,sans-serif" font-size="10"><text x="4" y="13" font-size="12" font-weight="600">{t}</text><line x1="{left}" y1="{y0}" x2="{w}" y2="{y0}" stroke="#9ca3af"/><text x="2" y="{ty}">{top_label}</text><text x="2" y="{y0}">0</text>"##,
        t = escape(title),
        y0 = h - bottom,
        ty = top + 8.0,
        top_label = if share {
            "100%".to_string()
        } else {
            format!("{max:.0}")
        },
    );
    for (i, v) in values.iter().enumerate() {
        let x = left + i as f64 * step;
        if let Some(v) = v {
            let bh = (v / max).clamp(0.0, 1.0) * (h - bottom - top);
            let shown = if share {
                format!("{:.1}%", v * 100.0)
            } else {
                format!("{v:.0}")
            };
            let _ = write!(
                s,
                r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="#2563eb"><title>{}: {}</title></rect>"##,
                h - bottom - bh,
                (step - 1.0).max(1.0),
                escape(labels.get(i).map_or("", |l| l.as_str())),
                escape(&shown)
            );
        }
        let every = (values.len() / 8).max(1);
        if i % every == 0 {
            let _ = write!(
                s,
                r#"<text x="{x:.1}" y="{:.1}">{}</text>"#,
                h - 6.0,
                escape(labels.get(i).map_or("", |l| l.as_str()))
            );
        }
    }
    s.push_str("</svg>");
    s
}

fn histogram_chart(hist: &Histogram) -> String {
    // Each bin is labelled by where it starts ("≥" on the last, open-ended one).
    let last = hist.edges.len().saturating_sub(1);
    let labels: Vec<String> = hist
        .edges
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let start = if hist.unit == "s" {
                duration(*e)
            } else {
                format!("{e:.0}")
            };
            if i == last && hist.unit == "s" {
                format!("≥{start}")
            } else {
                start
            }
        })
        .collect();
    let values: Vec<Option<f64>> = hist.counts.iter().map(|c| Some(*c as f64)).collect();
    let n: usize = hist.counts.iter().sum();
    bars_chart(&format!("{} (n = {n})", hist.name), &labels, &values, false)
}
