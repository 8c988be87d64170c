//! The KPIs through the server: a lead reads them as JSON (each with value, sample size and
//! formula), as CSV and as the dashboard page; agents who are not leads and keys of other
//! scopes may not; `/metrics` carries the same figures, read by a Prometheus text parser.

use std::time::Duration;

use frontdesk::server::auth::Scope;
use serde_json::{json, Value};

use crate::support::nlu::KeywordNlu;
use crate::support::server::{config, serve_with, ANA, BEN};

/// One customer the bot answers, one who asks for a person: Ana takes it, answers, closes.
async fn a_small_day(s: &crate::support::server::TestServer) {
    s.say("kpi-bot", "hello").await;
    let turn = s.say("kpi-person", "I want to talk to a human").await;
    let id = turn["conversation_id"].as_str().unwrap().to_string();
    let ana = s.login(ANA).await;
    ana.act(&id, "claim", None).await;
    ana.act(
        &id,
        "reply",
        Some(json!({"text": "Hi, Ana here. How can I help?"})),
    )
    .await;
    ana.act(&id, "close", None).await;
    // The REST customer answers the rating question with their next message.
    let rated = s.say("kpi-person", "4").await;
    assert_eq!(
        rated["conversation_id"],
        id.as_str(),
        "an answer, not a new conversation"
    );
}

fn figure<'a>(report: &'a Value, kpi: &str) -> &'a Value {
    let f = &report["kpis"][kpi];
    assert!(
        f["formula"].as_str().is_some_and(|t| t.len() > 20),
        "{kpi}: {f}"
    );
    assert!(f["n"].is_u64(), "{kpi}: {f}");
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_reads_each_kpi_with_its_formula_and_sample_others_may_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.agents[0].role = "lead".into();
    let s = serve_with(cfg, KeywordNlu).await;
    a_small_day(&s).await;

    let lead_key = s.api_key(Scope::Lead).await;
    let (status, report) = s.get_with(&lead_key, "/api/v1/kpis?since=1h").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(figure(&report, "conversations")["value"], 2.0);
    assert_eq!(figure(&report, "escalation_rate")["value"], 0.5);
    let person = figure(&report, "first_response_person_secs");
    assert_eq!(
        person["n"], 1,
        "Ana's reply is the one person's first response"
    );
    assert_eq!(figure(&report, "first_response_bot_secs")["n"], 2);
    assert_eq!(figure(&report, "answered_within_2min")["value"], 1.0);
    assert_eq!(figure(&report, "csat_mean")["value"], 4.0);
    assert_eq!(
        figure(&report, "handle_secs")["n"],
        1,
        "one handling span: {report}"
    );
    // Nobody's recontact window is over yet: containment and FCR count no case.
    assert_eq!(figure(&report, "containment")["n"], 0);
    assert_eq!(figure(&report, "containment")["value"], Value::Null);

    let (status, split) = s
        .get_with(&lead_key, "/api/v1/kpis?since=1h&by=agent")
        .await;
    assert_eq!(status, 200, "{split}");
    assert_eq!(split["groups"][0]["key"], "ana", "{split}");
    // The rating is shown per agent (and per queue, intent and rule the same way).
    assert_eq!(
        split["groups"][0]["kpis"]["csat_mean"]["value"], 4.0,
        "{split}"
    );
    assert_eq!(split["groups"][0]["kpis"]["csat"]["n"], 1, "{split}");
    let (_, by_queue) = s
        .get_with(&lead_key, "/api/v1/kpis?since=1h&by=queue")
        .await;
    let queue = by_queue["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kpis"]["csat"]["n"] == 1)
        .unwrap_or_else(|| panic!("a queue with the rating: {by_queue}"));
    assert_eq!(queue["kpis"]["csat_mean"]["value"], 4.0, "{by_queue}");
    let (status, filtered) = s
        .get_with(&lead_key, "/api/v1/kpis?since=1h&channel=telegram")
        .await;
    assert_eq!(status, 200);
    assert_eq!(filtered["kpis"]["conversations"]["value"], 0.0);

    let csv = s
        .http
        .get(s.at("/api/v1/kpis?since=1h&format=csv"))
        .bearer_auth(&lead_key)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status().as_u16(), 200);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    assert!(
        text.starts_with("scope,key,kpi,value,n,formula\n"),
        "{text}"
    );
    assert!(text.contains("all,,escalation_rate,0.5000,2,"), "{text}");

    // Not a lead's: an agent key, a messages key, a plain agent's session.
    for scope in [Scope::Agent, Scope::Messages] {
        let key = s.api_key(scope).await;
        let (status, body) = s.get_with(&key, "/api/v1/kpis").await;
        assert_eq!(status, 403, "{scope:?}: {body}");
    }
    let ben = s.login(BEN).await;
    let (status, _) = ben.get("/console/api/kpis").await;
    assert_eq!(status, 403);
    let (status, _) = s.get_with("", "/api/v1/kpis").await;
    assert_eq!(status, 401);

    // Bad queries say what to write.
    for bad in [
        "since=yesterday",
        "by=weather",
        "since=2d&until=3d",
        "format=xml",
    ] {
        let (status, body) = s.get_with(&lead_key, &format!("/api/v1/kpis?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_every_headline_figure_to_a_lead() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.agents[0].role = "lead".into();
    let s = serve_with(cfg, KeywordNlu).await;
    a_small_day(&s).await;
    let ana = s.login(ANA).await;
    let res = s
        .http
        .get(s.at("/console/kpis?since=1h&by=queue"))
        .bearer_auth(&ana.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let policy = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    let page = res.text().await.unwrap();
    for kpi in [
        "containment",
        "answered_within_2min",
        "handle_secs",
        "fcr",
        "csat",
        "nps",
    ] {
        assert!(
            page.contains(&format!("data-kpi=\"{kpi}\"")),
            "{kpi} on the page"
        );
    }
    assert!(page.contains("<svg"), "charts drawn");
    assert!(page.contains("Download CSV"));
    let ben = s.login(BEN).await;
    let res = s
        .http
        .get(s.at("/console/kpis"))
        .bearer_auth(&ben.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_the_same_kpis_for_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.agents[0].role = "lead".into();
    cfg.kpis.metrics_every_secs = 1;
    let s = serve_with(cfg, KeywordNlu).await;
    a_small_day(&s).await;
    let lead_key = s.api_key(Scope::Lead).await;
    let (_, report) = s.get_with(&lead_key, "/api/v1/kpis?since=24h").await;

    // The gauges follow within a refresh or two.
    let mut last = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let text = s.metrics_text().await;
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
            .expect("/metrics is Prometheus text");
        let gauge = |kpi: &str, metric: &str| {
            scrape
                .samples
                .iter()
                .find(|x| {
                    x.metric == metric
                        && x.labels.get("kpi") == Some(kpi)
                        && x.labels.get("queue") == Some("all")
                        && x.labels.get("window") == Some("24h")
                })
                .map(|x| match x.value {
                    prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                    _ => f64::NAN,
                })
        };
        // Several servers share the process's recorder: wait for this one's figures.
        if gauge("escalation_rate", "frontdesk_kpi") == Some(0.5)
            && gauge("conversations", "frontdesk_kpi_samples") == Some(2.0)
        {
            let api = report["kpis"]["first_response_bot_secs"]["value"]
                .as_f64()
                .unwrap();
            let metric = gauge("first_response_bot_secs", "frontdesk_kpi").unwrap();
            assert!((api - metric).abs() < 1.0, "API {api} vs /metrics {metric}");
            assert!(
                scrape
                    .samples
                    .iter()
                    .any(|x| x.metric == "frontdesk_kpi_escalation_rate_by_rule"),
                "escalation by rule on /metrics"
            );
            return;
        }
        last = text;
    }
    panic!(
        "/metrics never showed this server's KPIs: {}",
        last.lines()
            .filter(|l| l.contains("frontdesk_kpi"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
