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
    assert!(!c.agents.is_empty());
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
