//! Escalation seen from outside: angry customers and VIPs land in human queues, with the
//! reasons an agent reads in the console.

use crate::support::server::*;

#[tokio::test]
async fn angry_message_lands_in_the_angry_queue_with_its_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path()).await;
    let turn = s
        .say(
            "angry-1",
            "This is ridiculous!!! I am furious, my order never arrived and nobody answers!",
        )
        .await;
    assert_eq!(turn["status"], "queued", "{turn}");
    assert_eq!(turn["queue"]["name"], "angry", "{turn}");
    assert_eq!(turn["queue"]["position"], 1, "{turn}");
    assert!(replies(&turn).contains("number 1"), "{turn}");

    let agent = s.login(ANA).await;
    let angry = agent.queue("angry").await;
    let entry = &angry["entries"][0];
    assert_eq!(entry["conversation_id"], turn["conversation_id"]);
    let reasons: Vec<&str> = entry["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["rule"].as_str())
        .collect();
    assert!(
        reasons.iter().any(|r| matches!(
            *r,
            "angry message (frustration head)" | "very negative message" | "souring conversation"
        )),
        "{reasons:?}"
    );
    assert!(entry["sentiment"].as_f64().unwrap() > 0.5, "{entry}");
    s.shutdown().await;
}

#[tokio::test]
async fn vip_profile_goes_ahead_of_customers_who_waited_longer() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path()).await;
    let first = s
        .say_as(
            "std-1",
            &customer("C1001", Some("standard"), Some(371.0)),
            "I want to talk to a human agent",
        )
        .await;
    let second = s
        .say_as(
            "std-2",
            &customer("C1003", Some("standard"), Some(636.5)),
            "I want to talk to a human agent",
        )
        .await;
    assert_eq!(first["queue"]["name"], "general", "{first}");
    assert_eq!(second["queue"]["position"], 2, "{second}");

    let vip = s
        .say_as(
            "vip-1",
            &customer("C1004", Some("vip"), Some(20209.49)),
            "I want to talk to a human agent",
        )
        .await;
    assert_eq!(vip["queue"]["name"], "general", "{vip}");
    assert_eq!(
        vip["queue"]["position"], 1,
        "the VIP is served first: {vip}"
    );

    let agent = s.login(ANA).await;
    let general = agent.queue("general").await;
    let order: Vec<&str> = general["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["conversation_id"].as_str())
        .collect();
    assert_eq!(
        order,
        vec![
            vip["conversation_id"].as_str().unwrap(),
            first["conversation_id"].as_str().unwrap(),
            second["conversation_id"].as_str().unwrap()
        ]
    );
    // The VIP's reasons show the boost.
    let vip_reasons = general["entries"][0]["reasons"].to_string();
    assert!(vip_reasons.contains("vip customer"), "{vip_reasons}");
    s.shutdown().await;
}

#[tokio::test]
async fn shop_signed_widget_visitor_is_served_as_their_tier() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path()).await;
    s.say("std-w", "I want to talk to a human agent").await;

    // The shop's page carries data-customer-token, signed on the shop's server.
    let token = s
        .server
        .keys
        .customer
        .sign(&customer("C1004", Some("vip"), Some(20209.49)));
    let mut widget = Widget::connect(&s, None, Some(&token)).await;
    assert_eq!(widget.welcome["user"], "shop-C1004");
    widget.send("I want to talk to a human agent").await;
    let turn = widget.next_of("turn").await;
    assert_eq!(turn["queue"]["position"], 1, "{turn}");

    let agent = s.login(ANA).await;
    let (_, conversation) = agent
        .get(&format!(
            "/api/v1/conversations/{}",
            turn["conversation_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(conversation["tier"], "vip", "{conversation}");

    // A token the visitor edited is refused with an error frame, and no tier is taken from it.
    let edited = format!("{}A", token);
    let stranger = Widget::connect(&s, None, Some(&edited)).await;
    assert_ne!(stranger.welcome["user"], "shop-C1004");
    s.shutdown().await;
}
