//! `frontdesk simulate-day` on the real model: the labelled conversations of `data/` over a
//! day through the real desk, simulated agents taking what is escalated, customers rating;
//! the KPIs come out of the rewritten store with every figure's sample size, and the
//! dashboard page is written.

use std::path::Path;
use std::process::Command;

#[test]
fn a_simulated_day_gives_every_kpi_from_the_real_desk() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("day.html");
    let out = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["simulate-day", "--json", "--seed", "3", "--html"])
        .arg(&page)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let k = &r["kpis"];
    let value = |kpi: &str| k[kpi]["value"].as_f64().unwrap_or(f64::NAN);
    let n = |kpi: &str| k[kpi]["n"].as_u64().unwrap();
    // 296 labelled conversations and 463 single messages of data/: every one is a
    // conversation of the day (a rating is an answer, not a new conversation).
    assert_eq!(n("conversations"), 759, "{k:#}");
    let escalated = value("escalation_rate");
    assert!(
        (0.2..0.7).contains(&escalated),
        "the sets are half escalations: {escalated}"
    );
    assert!(
        n("first_response_person_secs") > 200,
        "agents answered: {k:#}"
    );
    assert_eq!(
        n("handle_secs"),
        n("first_response_person_secs"),
        "one span per answer here"
    );
    assert!(
        value("answered_within_2min") > 0.3,
        "five agents keep up: {k:#}"
    );
    assert!(n("csat") > 50, "customers rated: {k:#}");
    assert!((1.0..=5.0).contains(&value("csat_mean")));
    assert!(n("nps") > 20, "raters answered NPS too: {k:#}");
    assert!((-100.0..=100.0).contains(&value("nps")));
    // Every escalation overnight waits for 07:00, in business time it does not.
    assert!(value("first_response_person_business_secs") <= value("first_response_person_secs"));
    assert_eq!(r["series"].as_array().unwrap().len(), 24, "hourly");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("data-kpi=\"fcr\"") && html.contains("<svg"));
}
