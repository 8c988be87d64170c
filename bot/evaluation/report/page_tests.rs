//! The pages: the hand-counted numbers of `tests.rs` appear on them, hostile test text is
//! shown as text, every chart is well-formed SVG, nothing is fetched from elsewhere.

use super::tests::{escalation_report, six_sentiments, ten_intents};
use super::*;

/// Every `<svg>…</svg>` of a page.
fn svgs(page: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("an <svg> is closed") + start + 6;
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

/// Checks that `xml` is well-formed as far as a report's SVG goes: tags nest and close,
/// attribute values are quoted, `&` only starts one of the five XML escapes or a numeric
/// one, no `<` or `>` in text or attributes.
fn assert_well_formed(xml: &str) {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = xml;
    while let Some(lt) = rest.find('<') {
        check_text(&rest[..lt]);
        let gt = rest[lt..].find('>').expect("a tag ends") + lt;
        let tag = &rest[lt + 1..gt];
        assert_eq!(tag.matches('"').count() % 2, 0, "quotes balance in <{tag}>");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(name), "</{name}> closes what is open");
        } else if !tag.ends_with('/') {
            open.push(tag.split_whitespace().next().expect("a tag name"));
        }
        let attributes = tag.split('"').skip(1).step_by(2);
        attributes.for_each(check_text);
        rest = &rest[gt + 1..];
    }
    assert!(open.is_empty(), "left open: {open:?}");
}

fn check_text(text: &str) {
    assert!(!text.contains('<') && !text.contains('>'), "{text}");
    for (i, _) in text.match_indices('&') {
        let entity = &text[i..text[i..].find(';').map_or(text.len(), |e| i + e + 1)];
        let known = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].contains(&entity)
            || entity.starts_with("&#");
        assert!(known, "not an XML escape: {entity}");
    }
}

fn assert_self_contained(page: &str) {
    assert!(page.starts_with("<!doctype html>"));
    assert!(!page.to_lowercase().contains("<script"), "no script at all");
    assert!(!page.contains("src="), "nothing loaded from elsewhere");
    assert!(!page.contains("<link"), "no outside stylesheet");
    assert!(!page.contains("url("), "no outside font or image");
}

#[test]
fn intent_page_shows_the_hand_counted_numbers_and_the_threshold() {
    let page = classification_page(&intents("tests/<in>.csv", &ten_intents()));
    assert_self_contained(&page);
    for figure in [
        ">0.600<",                // accuracy
        ">0.611<",                // macro precision and recall, 11/18
        ">0.603<",                // macro F1, 38/63
        "0.571 <span",            // billing's and refund's F1, 4/7
        "<td class=\"n\">4</td>", // billing's support
        "out-of-scope threshold 0.500",
        ">3</b><span>examples below the threshold",
        "billing → refund: 1 (25.0% of billing)",
        "confidence 0.60–0.65: 1 right, 1 wrong",
        "confidence 0.90–0.95: 2 right, 0 wrong", // 0.95 as f32 is 0.9499…
    ] {
        assert!(page.contains(figure), "{figure} missing from the page");
    }
    assert!(
        page.contains("tests/&lt;in&gt;.csv"),
        "the file name is text"
    );
    assert!(
        page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;"),
        "the hostile example is shown as text"
    );
    // the worst example first: billing answered refund at 0.75
    let worst = page.find("<h2>Worst examples").unwrap();
    let b3 = page[worst..].find(">b3<").unwrap();
    let hostile = page[worst..].find("&lt;script").unwrap();
    assert!(b3 < hostile, "most confident wrong answer first");
    let charts = svgs(&page);
    assert_eq!(charts.len(), 2, "heat map and histogram");
    charts.into_iter().for_each(assert_well_formed);
}

#[test]
fn message_head_page_shows_calibration_and_its_error() {
    let page = classification_page(&message_head("sentiment", "val.tsv", &six_sentiments()));
    assert_self_contained(&page);
    assert!(page.contains(
        "Expected calibration error (top probability against right answers): <b>0.278</b>"
    ));
    assert!(page.contains("confidence · ECE 0.278"));
    assert!(page.contains("negative · ECE 0.233"));
    assert!(page.contains("predicted 0.8–0.9: 3 examples, mean prediction 0.823, observed 0.667"));
    assert!(
        !page.contains("out-of-scope threshold"),
        "no threshold for a message head"
    );
    let charts = svgs(&page);
    assert_eq!(
        charts.len(),
        1 + 1 + 3,
        "heat map, confidence and three labels"
    );
    charts.into_iter().for_each(assert_well_formed);
}

#[test]
fn escalation_page_shows_each_rule_and_escapes_the_misses() {
    let f = escalation("the configured rules", "t.jsonl", &escalation_report());
    let page = escalation_page(&[f]);
    assert_self_contained(&page);
    for figure in [
        ">0.600</b><span>precision",
        ">0.750</b><span>recall",
        ">0.667</b><span>F1",
        "<td>angry</td><td class=\"n\">1</td><td class=\"n\">2</td>",
        "0.333 <span",                               // angry's precision
        "0.286 <span",                               // angry's F1, 2/7
        "a person → the bot: 1 (25.0% of a person)", // the missed escalation
        "the bot → a person: 2 (33.3% of the bot)",
        "missed escalation",
    ] {
        assert!(page.contains(figure), "{figure} missing from the page");
    }
    assert!(page.contains("&lt;b&gt;sarcasm&lt;/b&gt;"));
    assert!(page.contains("&lt;script&gt;alert("));
    svgs(&page).into_iter().for_each(assert_well_formed);
}

#[test]
fn labels_absent_from_the_test_are_left_out_of_the_heat_map() {
    let mut p = ten_intents();
    p.labels.push("warranty".into());
    let page = classification_page(&intents("in.csv", &p));
    assert!(page.contains("<title>billing</title>"));
    assert!(!page.contains("warranty"), "neither a truth nor an answer");
    let chart = svgs(&page)[0];
    assert_eq!(chart.matches("<rect").count(), 9, "3 × 3 cells");
}

#[test]
fn many_labels_stay_readable_with_cut_names_and_full_ones_on_hover() {
    let labels: Vec<String> = (0..40)
        .map(|i| format!("a_rather_long_intent_name_number_{i}"))
        .collect();
    let matrix: Vec<Vec<usize>> = (0..40)
        .map(|t| (0..40).map(|p| usize::from(t == p) * 3).collect())
        .collect();
    let chart = super::svg::heat_map(&labels, &matrix, &row_shares(&matrix), "truth", "answer");
    assert_well_formed(&chart);
    assert!(chart.contains("a_rather_long_intent_…"), "names cut");
    assert!(chart.contains("<title>a_rather_long_intent_name_number_39</title>"));
    let width: f64 = chart
        .split("width=\"")
        .nth(1)
        .and_then(|w| w.split('"').next())
        .and_then(|w| w.parse().ok())
        .unwrap();
    assert!(width < 1000.0, "fits a screen: {width}");
}

#[test]
fn large_bin_counts_are_shortened_to_fit_under_their_bin() {
    let many = (0..1234).map(|i| (0.05 + f64::from(i % 2) * 0.01, i % 2 == 0));
    let r = reliability("negative", many, 10);
    assert_eq!(r.bins[0].count, 1234);
    let chart = super::svg::reliability_plot(&r);
    assert_well_formed(&chart);
    assert!(chart.contains(">1.2k</text>"), "{chart}");
}
