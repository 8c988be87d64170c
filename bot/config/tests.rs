use super::*;

#[test]
fn empty_file_gives_documented_defaults() {
    let c = Config::from_toml("").unwrap();
    assert_eq!(c.server.bind, "127.0.0.1:8080");
    assert_eq!(c.server.max_text_len, 2000);
    assert_eq!(c.commerce.backend, "demo");
}

#[test]
fn example_file_is_valid() {
    let text = include_str!("../../frontdesk.example.toml");
    let c = Config::from_toml(text).unwrap();
    // No agent with a published password: serve makes the demo agent's own.
    assert!(c.agents.is_empty());
}

/// A folder written by an older `frontdesk init` (or a copy of the old example) lists agents
/// whose passwords anyone can read: the server must not start with them.
#[test]
fn an_agent_with_a_published_password_hash_is_refused() {
    let e = Config::from_toml(
        "[[agents]]\nname = \"ana\"\npassword_hash = \"$argon2id$v=19$m=65536,t=3,p=4$ESux5XhTY+hCGyZ9ya84Tg$JuqVE30wY76iFlOUGEEBWdbWc/peWblcbwTSjeLoDII\"",
    )
    .unwrap_err();
    let e = e.to_string();
    assert!(e.contains("agents[0].password_hash"), "{e}");
    assert!(e.contains("frontdesk hash-password"), "{e}");
    let long = "a".repeat(65);
    let e = Config::from_toml(&format!(
        "[[agents]]\nname = \"{long}\"\npassword_hash = \"$argon2id$v=19$x\""
    ))
    .unwrap_err();
    assert!(e.to_string().contains("agents[0].name"), "{e}");
}

#[test]
fn unknown_key_is_named() {
    let e = Config::from_toml("[server]\nbnd = \"x\"").unwrap_err();
    assert!(e.to_string().contains("bnd"), "{e}");
}

#[test]
fn webhook_without_url_is_rejected_with_its_key() {
    let e = Config::from_toml("[commerce]\nbackend = \"webhook\"").unwrap_err();
    assert!(e.to_string().contains("commerce.webhook_url"), "{e}");
}

#[test]
fn agent_with_plain_password_is_rejected() {
    let e =
        Config::from_toml("[[agents]]\nname = \"ana\"\npassword_hash = \"secret\"").unwrap_err();
    assert!(e.to_string().contains("agents[0].password_hash"), "{e}");
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn every_override_is_applied_to_its_key() {
    let c = Config::load_with_env(
        None,
        env(&[
            ("FRONTDESK_BIND", "127.0.0.1:9999"),
            ("FRONTDESK_DATA", "/tmp/fd-data"),
            ("FRONTDESK_MODEL_DIR", "/m"),
            ("FRONTDESK_CACHE", "/c"),
            ("FRONTDESK_WEIGHTS", "f32"),
            ("FRONTDESK_ISA", "portable"),
            ("FRONTDESK_THREADS", "1"),
            ("FRONTDESK_SPIN_US", "300"),
            ("FRONTDESK_TELEGRAM_TOKEN", "123:abc"),
            ("FRONTDESK_TELEGRAM_API_URL", "http://127.0.0.1:8081"),
            ("FRONTDESK_DISCORD_TOKEN", "d"),
            ("FRONTDESK_DISCORD_SUPPORT_CHANNELS", "1, 2"),
        ]),
    )
    .unwrap();
    assert_eq!(c.server.bind, "127.0.0.1:9999");
    assert_eq!(c.server.data_dir, PathBuf::from("/tmp/fd-data"));
    assert_eq!(c.nlu.model_dir, Some(PathBuf::from("/m")));
    assert_eq!(c.nlu.cache(), PathBuf::from("/c"));
    assert_eq!(
        (c.nlu.weights.as_str(), c.nlu.isa.as_str()),
        ("f32", "portable")
    );
    assert_eq!((c.nlu.threads, c.nlu.spin_us), (Some(1), 300));
    assert_eq!(c.channels.telegram.token.as_deref(), Some("123:abc"));
    assert_eq!(c.channels.discord.support_channels, vec![1, 2]);
}

#[test]
fn a_bad_override_names_the_variable_and_the_key() {
    let e = Config::load_with_env(None, env(&[("FRONTDESK_THREADS", "two")])).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("FRONTDESK_THREADS") && text.contains("nlu.threads"),
        "{text}"
    );
    let e = Config::load_with_env(None, env(&[("FRONTDESK_ISA", "sse")])).unwrap_err();
    assert!(e.to_string().contains("nlu.isa"), "{e}");
    let e = Config::load_with_env(
        None,
        env(&[("FRONTDESK_TELEGRAM_WEBHOOK_SECRET", "no spaces allowed")]),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("channels.telegram.webhook_secret"),
        "{e}"
    );
}

#[test]
fn paths_in_a_file_are_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("frontdesk.toml");
    std::fs::write(
        &file,
        "[server]\ndata_dir = \"data\"\n[engine]\nintents_dir = \"my-intents\"\n",
    )
    .unwrap();
    let c = Config::load_with_env(Some(&file), |_| None).unwrap();
    assert_eq!(c.server.data_dir, dir.path().join("data"));
    assert_eq!(c.engine.intents_dir, Some(dir.path().join("my-intents")));
    // Unset paths stay unset: the built-in defaults fill them.
    assert_eq!(c.engine.rules, None);
}

#[test]
fn the_example_lists_every_variable() {
    let text = include_str!("../../frontdesk.example.toml");
    for (var, _) in ENV_OVERRIDES {
        assert!(
            text.contains(var),
            "{var} is not documented in frontdesk.example.toml"
        );
    }
}

#[test]
fn a_short_secret_is_refused_with_its_key() {
    let e = Config::from_toml("[server]\nsecret = \"too-short\"").unwrap_err();
    assert!(e.to_string().contains("server.secret"), "{e}");
    let e = Config::from_toml("[server]\nshop_secret = \"short\"").unwrap_err();
    assert!(e.to_string().contains("server.shop_secret"), "{e}");
    let long = "x".repeat(32);
    let c = Config::from_toml(&format!(
        "[server]\nsecret = \"{long}\"\nshop_secret = \"{long}\"\n"
    ))
    .unwrap();
    assert_eq!(c.server.customer_token_max_secs, 86_400);
    assert!(
        !c.demo.enabled,
        "the demo's token minting is off by default"
    );
    let e = Config::from_toml("[server]\npublic_url = \"support.example.com\"").unwrap_err();
    assert!(e.to_string().contains("server.public_url"), "{e}");
}

#[test]
fn limits_have_generous_defaults_and_the_example_lists_them() {
    let c = Config::from_toml("").unwrap();
    assert_eq!(c.limits, LimitsConfig::default());
    assert_eq!(c.limits.sockets_per_ip, 20);
    assert_eq!(c.limits.sockets_total, 5000);
    assert_eq!(c.limits.connections_per_ip, 256);
    assert_eq!(c.limits.header_read_timeout_secs, 10);
    assert!(
        c.server.trusted_proxies.is_empty(),
        "no proxy is trusted by default"
    );
    let example = Config::from_toml(include_str!("../../frontdesk.example.toml")).unwrap();
    assert_eq!(example.limits, LimitsConfig::default());
    let c =
        Config::from_toml("[limits]\nip_messages_per_sec = 0\nip_messages_burst = 0\n").unwrap();
    assert_eq!(c.limits.ip_messages_per_sec, 0.0, "0 turns a limit off");
}

#[test]
fn bad_limits_are_refused_with_their_key_and_what_to_do() {
    let e = Config::from_toml("[limits]\ncustomer_messages_burst = 0").unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("limits.customer_messages_burst") && text.contains("at least 1"),
        "{text}"
    );
    let e = Config::from_toml("[limits]\nip_sessions_per_min = -1").unwrap_err();
    assert!(e.to_string().contains("limits.ip_sessions_per_min"), "{e}");
    let e = Config::from_toml("[limits]\nsockets_per_ip = 50\nsockets_total = 10").unwrap_err();
    assert!(e.to_string().contains("limits.sockets_total"), "{e}");
    let e = Config::from_toml("[limits]\nconnections_per_ip = 20").unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("limits.connections_per_ip") && text.contains("sockets_per_ip"),
        "{text}"
    );
    let c = Config::from_toml("[limits]\nconnections_per_ip = 0").unwrap();
    assert_eq!(c.limits.connections_per_ip, 0, "0: no cap");
    let e = Config::from_toml("[limits]\nheader_read_timeout_secs = 0").unwrap_err();
    assert!(
        e.to_string().contains("limits.header_read_timeout_secs"),
        "{e}"
    );
    let e = Config::from_toml("[limits]\nsocket_idle = 5").unwrap_err();
    assert!(e.to_string().contains("socket_idle"), "{e}");
}

#[test]
fn trusted_proxies_are_addresses_or_ranges() {
    let c = Config::from_toml(
        "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\", \"fd00::/8\"]\n",
    )
    .unwrap();
    let ranges: Vec<IpRange> = c
        .server
        .trusted_proxies
        .iter()
        .map(|t| IpRange::parse(t).unwrap())
        .collect();
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    assert!(ranges[0].contains(ip("10.1.2.3")));
    assert!(!ranges[0].contains(ip("11.0.0.1")));
    assert!(ranges[1].contains(ip("127.0.0.1")));
    assert!(ranges[1].contains(ip("::ffff:127.0.0.1")), "v4-mapped v6");
    assert!(!ranges[1].contains(ip("127.0.0.2")));
    assert!(ranges[2].contains(ip("fd12::1")));
    assert!(!ranges[2].contains(ip("10.1.2.3")));
    assert!(IpRange::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
    for bad in ["proxy.example", "10.0.0.0/33", "10.0.0.0/x"] {
        let e =
            Config::from_toml(&format!("[server]\ntrusted_proxies = [\"{bad}\"]\n")).unwrap_err();
        assert!(
            e.to_string().contains("server.trusted_proxies[0]"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn the_llm_is_off_by_default_and_the_example_lists_its_defaults() {
    assert!(!Config::from_toml("").unwrap().llm.enabled());
    let example = Config::from_toml(include_str!("../../frontdesk.example.toml")).unwrap();
    assert_eq!(example.llm, LlmConfig::default());
    assert_eq!(example.llm.timeout_ms, 12_000);
    assert_eq!(example.llm.link_allow_list, vec!["https://shop.example/"]);
}

#[test]
fn llm_variables_turn_it_on_and_the_key_is_never_printed() {
    let c = Config::load_with_env(
        None,
        env(&[
            ("FRONTDESK_LLM_URL", "http://127.0.0.1:11434/v1"),
            ("FRONTDESK_LLM_MODEL", "local-model"),
            ("FRONTDESK_LLM_API_KEY", "sk-very-secret"),
        ]),
    )
    .unwrap();
    assert!(c.llm.enabled());
    assert_eq!(c.llm.model, "local-model");
    assert_eq!(c.llm.api_key.as_ref().unwrap().expose(), "sk-very-secret");
    assert!(!format!("{c:?}").contains("sk-very-secret"));
}

#[test]
fn an_llm_timeout_over_15_seconds_is_refused_with_its_key() {
    let e = Config::from_toml("[llm]\ntimeout_ms = 20000").unwrap_err();
    assert!(e.to_string().contains("llm.timeout_ms"), "{e}");
    let e = Config::from_toml("[llm]\nurl = \"localhost:1234\"").unwrap_err();
    assert!(e.to_string().contains("llm.url"), "{e}");
}

#[test]
fn canned_replies_are_built_in_by_default_and_a_broken_file_is_named_with_its_line() {
    let example = Config::from_toml(include_str!("../../frontdesk.example.toml")).unwrap();
    assert_eq!(example.assist, AssistConfig::default());
    assert!(example.assist.canned_replies.is_none());
    assert_eq!(
        example.assist.tracking_url,
        "https://shop.example/track/{tracking_number}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("canned.toml");
    std::fs::write(
        &file,
        "[[reply]]\nid = \"a\"\ntitle = \"A\"\ntext = \"Hi {{ customer.nickname }}\"\n",
    )
    .unwrap();
    let config = dir.path().join("frontdesk.toml");
    std::fs::write(&config, "[assist]\ncanned_replies = \"canned.toml\"\n").unwrap();
    let e = Config::load_with_env(Some(&config), |_| None).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("assist.canned_replies")
            && text.contains("canned.toml, line 4")
            && text.contains("customer.nickname"),
        "{text}"
    );
    let e =
        Config::from_toml("[assist]\ntracking_url = \"https://shop.example/track\"").unwrap_err();
    assert!(e.to_string().contains("assist.tracking_url"), "{e}");
}
