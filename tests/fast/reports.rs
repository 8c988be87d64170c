//! The evaluation reports in the console: a lead lists and reads the pages `frontdesk eval
//! ... --html DATA/reports/NAME.html` wrote, served so that nothing in them runs; an agent
//! who is not a lead may not; names that could reach outside the folder are refused.

use std::time::{Duration, SystemTime};

use crate::support::nlu::KeywordNlu;
use crate::support::server::{config, serve_with, ANA, BEN};

/// A report page as `eval --html` writes it, with a hostile test sentence kept as text.
const PAGE: &str = "<!doctype html>\n<html><head><title>frontdesk · eval sentiment</title>\
    </head><body><h1>Evaluation: sentiment</h1><p>accuracy 0.712</p>\
    <td>&lt;script&gt;alert(1)&lt;/script&gt;</td></body></html>\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_lists_and_reads_reports_others_and_odd_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    let older = reports.join("intents-2026-12-01.html");
    std::fs::write(&older, "<p>older</p>").unwrap();
    let old_time = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&older)
        .unwrap()
        .set_modified(old_time)
        .unwrap();
    std::fs::write(reports.join("sentiment.html"), PAGE).unwrap();
    // not reports: another kind of file, and a secret beside the reports folder
    std::fs::write(reports.join("notes.txt"), "not a report").unwrap();
    std::fs::write(dir.path().join("secret.html"), "<p>outside</p>").unwrap();

    let mut cfg = config(dir.path());
    cfg.agents[0].role = "lead".into();
    let s = serve_with(cfg, KeywordNlu).await;
    let ana = s.login(ANA).await;

    let (status, list) = ana.get("/console/api/reports").await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["sentiment.html", "intents-2026-12-01.html"],
        "HTML reports only, newest first: {list}"
    );
    assert_eq!(list["reports"][0]["size"], PAGE.len());
    assert!(
        list["reports"][1]["modified"]
            .as_str()
            .unwrap()
            .ends_with('Z'),
        "{list}"
    );

    let get =
        |path: &str, token: &str| s.http.get(s.at(path)).bearer_auth(token.to_string()).send();
    let res = get("/console/reports/sentiment.html", &ana.token)
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let headers = res.headers().clone();
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert_eq!(
        policy, "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
        "no script runs in a report"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(res.text().await.unwrap(), PAGE);

    // An agent who is not a lead sees neither the list nor a report.
    let ben = s.login(BEN).await;
    let (status, body) = ben.get("/console/api/reports").await;
    assert_eq!(status, 403, "{body}");
    let res = get("/console/reports/sentiment.html", &ben.token)
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    // Nobody logged in: no report either.
    let res = s
        .http
        .get(s.at("/console/reports/sentiment.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);

    // Names that could leave the folder, or are not reports, are refused; the page beside
    // the folder is never shown.
    for odd in [
        "..%2Fsecret.html",
        "..%5Csecret.html",
        "%2E%2E%2Fsecret.html",
        "notes.txt",
        ".html",
        "a%20b.html",
    ] {
        let res = get(&format!("/console/reports/{odd}"), &ana.token)
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        assert_eq!(status, 400, "{odd}: {body}");
        assert!(!body.contains("outside"), "{odd}: {body}");
    }
    // a path the client itself resolves never reaches the page either
    let res = get("/console/reports/../secret.html", &ana.token)
        .await
        .unwrap();
    assert_ne!(res.status().as_u16(), 200);
    let res = get("/console/reports/missing.html", &ana.token)
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    s.shutdown().await;
}
