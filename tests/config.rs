//! Configuration: defaults, file, env overrides, every error named, secrets redacted.
#![allow(clippy::unwrap_used)]
//! The environment is a map passed in (never `set_var`).

use std::collections::HashMap;
use std::time::Duration;

use dashbridge::config::Config;
use dashbridge::dashscope::Endpoint;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dashbridge-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn defaults_match_the_documented_values() {
    let c = Config::load(None, &env(&[])).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.body_budget_bytes, 128 * 1024 * 1024);
    assert!(!c.allow_anonymous);
    assert_eq!(c.upstream.base_url, "https://dashscope.aliyuncs.com");
    assert!(c.upstream.api_key.is_none());
    assert_eq!(c.upstream_timeout, Duration::from_secs(300));
    assert_eq!(c.connect_timeout, Duration::from_secs(5));
    assert_eq!(c.retries, 2);
    assert_eq!(c.max_body_bytes, 20 * 1024 * 1024);
    assert_eq!(c.shutdown_grace, Duration::from_secs(30));
    assert!(c.client_keys.is_empty());
    assert!(c.access_log);
    // Routing defaults (wire-format §1.3).
    for m in [
        "qwen3-vl-plus",
        "qvq-max",
        "qwen3.5-plus",
        "qwen3.6-flash",
        "qwen-vl-max",
    ] {
        assert_eq!(c.endpoint_for(m, None), Endpoint::Multimodal, "{m}");
    }
    for m in [
        "qwen-plus",
        "qwen3-max",
        "qwq-plus",
        "deepseek-v3",
        "qwen3.7-max",
    ] {
        assert_eq!(c.endpoint_for(m, None), Endpoint::Text, "{m}");
    }
    assert!(c.is_stream_only("qwq-plus", None));
    assert!(!c.is_stream_only("qwen-plus", None));
}

#[test]
fn the_shipped_config_file_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/dashbridge.toml");
    let c = Config::load(Some(&path), &env(&[])).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
}

#[test]
fn env_overrides_the_file_and_regions_resolve() {
    let path = write(
        "override.toml",
        r#"
listen = "127.0.0.1:9000"
[upstream]
region = "singapore"
retries = 5
[models."gpt-4o"]
target = "qwen-plus"
defaults = { enable_thinking = false }
[models."vision-alias"]
target = "my-custom-model"
endpoint = "multimodal"
"#,
    );
    let c = Config::load(
        Some(&path),
        &env(&[
            ("DASHBRIDGE_LISTEN", "127.0.0.1:9100"),
            ("DASHBRIDGE_UPSTREAM_RETRIES", "1"),
            ("DASHSCOPE_API_KEY", "sk-from-env"),
            ("DASHSCOPE_WORKSPACE", "ws-1"),
            ("DASHBRIDGE_ACCESS_LOG", "false"),
        ]),
    )
    .unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:9100");
    assert_eq!(c.upstream.base_url, "https://dashscope-intl.aliyuncs.com");
    assert_eq!(c.retries, 1);
    assert!(!c.access_log);
    assert_eq!(c.upstream.workspace.as_deref(), Some("ws-1"));
    assert_eq!(c.upstream.api_key.as_ref().unwrap().expose(), "sk-from-env");
    let alias = c.models.get("gpt-4o").unwrap();
    assert_eq!(alias.target.as_deref(), Some("qwen-plus"));
    assert_eq!(
        alias.defaults.get("enable_thinking"),
        Some(&serde_json::json!(false))
    );
    let vision = c.models.get("vision-alias");
    assert_eq!(
        c.endpoint_for("my-custom-model", vision),
        Endpoint::Multimodal
    );
}

#[test]
fn every_bad_setting_is_named_at_once() {
    let path = write(
        "bad.toml",
        r#"
[models."x"]
endpoint = "video"
upstream = "nowhere"
"#,
    );
    let err = Config::load(
        Some(&path),
        &env(&[
            ("DASHBRIDGE_UPSTREAM_TIMEOUT_SECS", "abc"),
            ("DASHBRIDGE_LOG_FORMAT", "xml"),
            ("DASHBRIDGE_UPSTREAM", "ftp://example"),
            ("DASHBRIDGE_MAX_CONCURRENCY", "0"),
            ("DASHBRIDGE_API_KEYS", "k1"),
        ]),
    )
    .unwrap_err();
    let text = err.to_string();
    for needle in [
        "DASHBRIDGE_UPSTREAM_TIMEOUT_SECS",
        "DASHBRIDGE_LOG_FORMAT",
        "DASHBRIDGE_UPSTREAM: 'ftp://example'",
        "DASHBRIDGE_MAX_CONCURRENCY",
        "models.\"x\".endpoint",
        "models.\"x\".upstream",
        "DASHBRIDGE_API_KEYS / auth.api_keys_file need DASHSCOPE_API_KEY",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert_eq!(err.0.len(), 7, "{text}");
}

#[test]
fn unknown_file_keys_are_errors_with_their_path() {
    let path = write("typo.toml", "[upstream]\nbase_ur = \"https://x.example\"\n");
    let err = Config::load(Some(&path), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("base_ur"), "{err}");
}

#[test]
fn per_model_upstreams_take_their_key_from_a_named_env_var() {
    let path = write(
        "routes.toml",
        r#"
[upstreams.sg]
region = "singapore"
api_key_env = "SG_KEY"
workspace = "ws-sg"
[models."ft"]
target = "qwen-plus-ft-1"
upstream = "sg"
"#,
    );
    let c = Config::load(
        Some(&path),
        &env(&[("SG_KEY", "sk-sg-secret"), ("DASHSCOPE_API_KEY", "sk-main")]),
    )
    .unwrap();
    let u = c.upstream_for(c.models.get("ft"));
    assert_eq!(u.base_url, "https://dashscope-intl.aliyuncs.com");
    assert_eq!(u.api_key.as_ref().unwrap().expose(), "sk-sg-secret");
    assert_eq!(u.workspace.as_deref(), Some("ws-sg"));
    // Secrets never print.
    let summary = c.summary();
    assert!(!summary.contains("sk-sg-secret") && !summary.contains("sk-main"));
    assert!(summary.contains("[redacted]"));

    let missing = Config::load(Some(&path), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("upstreams.sg.api_key_env: environment variable SG_KEY is not set"));
}

fn errors(pairs: &[(&str, &str)]) -> String {
    Config::load(None, &env(pairs)).unwrap_err().to_string()
}

/// Item 13: a server key, no client keys and a non-loopback address is an open relay.
#[test]
fn a_server_key_without_client_keys_on_a_public_address_is_refused() {
    for listen in ["0.0.0.0:8080", "[::]:8080", "10.1.2.3:8080"] {
        let err = errors(&[("DASHBRIDGE_LISTEN", listen), ("DASHSCOPE_API_KEY", "sk-x")]);
        for needle in [
            "open relay refused",
            listen,
            "DASHBRIDGE_API_KEYS",
            "127.0.0.1",
            "DASHBRIDGE_ALLOW_ANONYMOUS=true",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
        }
        assert!(!err.contains("sk-x"), "{err}");
    }
    // The README's run command: the key alone, default address (loopback).
    let c = Config::load(None, &env(&[("DASHSCOPE_API_KEY", "sk-x")])).unwrap();
    assert!(c.listen.ip().is_loopback() && !c.anonymous_relay());
    // Each way out named in the message works.
    let ok = |pairs: &[(&str, &str)]| Config::load(None, &env(pairs)).unwrap();
    let public = [
        ("DASHBRIDGE_LISTEN", "0.0.0.0:8080"),
        ("DASHSCOPE_API_KEY", "sk-x"),
    ];
    let with = |extra: (&'static str, &'static str)| {
        let mut v = public.to_vec();
        v.push(extra);
        v
    };
    assert!(!ok(&with(("DASHBRIDGE_API_KEYS", "ck-1"))).anonymous_relay());
    let anon = ok(&with(("DASHBRIDGE_ALLOW_ANONYMOUS", "true")));
    assert!(anon.allow_anonymous && anon.anonymous_relay());
    assert!(
        !ok(&[
            ("DASHBRIDGE_LISTEN", "127.0.0.1:8080"),
            ("DASHSCOPE_API_KEY", "sk-x")
        ])
        .anonymous_relay()
    );
    assert!(
        !ok(&[
            ("DASHBRIDGE_LISTEN", "[::1]:8080"),
            ("DASHSCOPE_API_KEY", "sk-x")
        ])
        .anonymous_relay()
    );
    // Pass-through (no server key): clients spend their own keys.
    ok(&[("DASHBRIDGE_LISTEN", "0.0.0.0:8080")]);
    // `false` is not a way out, and the file switch works too.
    let err = errors(&with(("DASHBRIDGE_ALLOW_ANONYMOUS", "false")));
    assert!(err.contains("open relay refused"), "{err}");
    let path = write(
        "anon.toml",
        "listen = \"0.0.0.0:8080\"\n[auth]\nallow_anonymous = true\n",
    );
    assert!(
        Config::load(Some(&path), &env(&[("DASHSCOPE_API_KEY", "sk-x")]))
            .unwrap()
            .allow_anonymous
    );
    // A key held only for a named upstream is a relay too.
    let path = write(
        "relay-named.toml",
        "listen = \"0.0.0.0:8080\"\n[upstreams.sg]\nregion = \"singapore\"\napi_key_env = \"SG_KEY\"\n",
    );
    let err = Config::load(Some(&path), &env(&[("SG_KEY", "sk-sg")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("open relay refused"), "{err}");
}

/// Item 14: keys, workspaces and every `api_key_env` are trimmed, and refused (naming the
/// variable, never the value) when no HTTP header could carry them.
#[test]
fn header_bound_settings_are_trimmed_and_validated() {
    let path = write(
        "headers.toml",
        "[upstreams.sg]\nregion = \"singapore\"\napi_key_env = \" SG_KEY \"\nworkspace = \" ws-sg\\t\"\n",
    );
    let c = Config::load(
        Some(&path),
        &env(&[
            ("DASHSCOPE_API_KEY", "  sk-main\n"),
            ("DASHSCOPE_WORKSPACE", " ws-1 "),
            ("DASHBRIDGE_API_KEYS", " ck-1 ,ck-2\r, ,"),
            ("SG_KEY", "\tsk-sg "),
        ]),
    )
    .unwrap();
    assert_eq!(c.upstream.api_key.as_ref().unwrap().expose(), "sk-main");
    assert_eq!(c.upstream.workspace.as_deref(), Some("ws-1"));
    let keys: Vec<&str> = c.client_keys.iter().map(|k| k.secret.expose()).collect();
    assert_eq!(keys, ["ck-1", "ck-2"]);
    let sg = &c.upstreams["sg"];
    assert_eq!(sg.api_key.as_ref().unwrap().expose(), "sk-sg");
    assert_eq!(sg.workspace.as_deref(), Some("ws-sg"));

    let keys_file = write(
        "keys.txt",
        "# clients\nck-file-1\n\nname-x key with spaces\n",
    );
    let path = write(
        "headers-bad.toml",
        "[upstream]\nworkspace = \"ws\u{00e9}1\"\n[upstreams.sg]\nregion = \"singapore\"\napi_key_env = \"SG_KEY\"\nworkspace = \"ws\\nx\"\n[upstreams.us]\nregion = \"us\"\napi_key_env = \"US KEY\"\n",
    );
    let err = Config::load(
        Some(&path),
        &env(&[
            ("DASHSCOPE_API_KEY", "sk-SECRET-a b"),
            ("DASHBRIDGE_API_KEYS", "ck-1,ck-SECRET-\u{7f}"),
            ("DASHBRIDGE_API_KEYS_FILE", keys_file.to_str().unwrap()),
            ("SG_KEY", "   "),
        ]),
    )
    .unwrap_err();
    let text = err.to_string();
    for needle in [
        "DASHSCOPE_API_KEY contains whitespace at byte 11",
        "DASHBRIDGE_API_KEYS (key 2) contains a control character",
        "(line 4) contains whitespace",
        "upstream.workspace contains a non-ASCII character",
        "SG_KEY (upstreams.sg.api_key_env) is blank",
        "upstreams.sg.workspace contains whitespace",
        "upstreams.us.api_key_env: 'US KEY' is not an environment variable name",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert_eq!(err.0.len(), 7, "{text}");
    assert!(!text.contains("SECRET"), "{text}");
}

/// Item 14: DashScope keys are regional; a named upstream names its key or errors.
#[test]
fn a_named_upstream_never_inherits_the_default_key_silently() {
    let path = write("inherit.toml", "[upstreams.sg]\nregion = \"singapore\"\n");
    let err = Config::load(Some(&path), &env(&[("DASHSCOPE_API_KEY", "sk-main")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("upstreams.sg: no api_key_env")
            && err.contains("api_key_env = \"DASHSCOPE_API_KEY\" to reuse it knowingly"),
        "{err}"
    );
    // Reusing it explicitly is fine.
    let path = write(
        "reuse.toml",
        "[upstreams.sg]\nregion = \"singapore\"\napi_key_env = \"DASHSCOPE_API_KEY\"\n",
    );
    let c = Config::load(Some(&path), &env(&[("DASHSCOPE_API_KEY", "sk-main")])).unwrap();
    assert_eq!(
        c.upstreams["sg"].api_key.as_ref().unwrap().expose(),
        "sk-main"
    );
    // Pass-through: the named upstream forwards the client's key like the default one.
    let path = write(
        "passthrough.toml",
        "[upstreams.sg]\nregion = \"singapore\"\n",
    );
    let c = Config::load(Some(&path), &env(&[])).unwrap();
    assert!(c.upstreams["sg"].api_key.is_none() && c.upstream.api_key.is_none());
}

/// Item 14: every prefix list extends the shipped defaults; `shipped_defaults = false` makes
/// every one of them replace instead.
#[test]
fn prefix_lists_all_extend_the_shipped_defaults_or_all_replace_them() {
    let path = write(
        "extend.toml",
        "[routing]\nmultimodal_prefixes = [\"my-vision\"]\ntext_prefixes = [\"qwen3.5-plus-text\"]\nstream_only_prefixes = [\"my-thinker\"]\n",
    );
    let c = Config::load(Some(&path), &env(&[])).unwrap();
    assert_eq!(c.endpoint_for("my-vision-1", None), Endpoint::Multimodal);
    assert_eq!(c.endpoint_for("qwen3-vl-plus", None), Endpoint::Multimodal);
    assert_eq!(c.endpoint_for("qwen3.5-plus", None), Endpoint::Multimodal);
    assert_eq!(c.endpoint_for("qwen3.5-plus-text-1", None), Endpoint::Text);
    assert!(c.is_stream_only("my-thinker-2", None) && c.is_stream_only("qwq-plus", None));

    let path = write(
        "replace.toml",
        "[routing]\nshipped_defaults = false\nmultimodal_prefixes = [\"my-vision\"]\nstream_only_prefixes = [\"my-thinker\"]\n",
    );
    let c = Config::load(Some(&path), &env(&[])).unwrap();
    assert_eq!(c.endpoint_for("my-vision-1", None), Endpoint::Multimodal);
    assert_eq!(c.endpoint_for("qwen3-vl-plus", None), Endpoint::Text);
    assert!(c.is_stream_only("my-thinker-2", None) && !c.is_stream_only("qwq-plus", None));
    assert_eq!(c.routes.len(), 1);
}

/// Item 14: durations take fractional seconds, from the environment and from the file.
#[test]
fn durations_accept_fractional_seconds() {
    let path = write(
        "durations.toml",
        "[upstream]\ntimeout_secs = 0.75\nretry_after_cap_secs = 1.5\n[server]\nshutdown_grace_secs = 0\nrequest_read_timeout_secs = 10\n",
    );
    let c = Config::load(
        Some(&path),
        &env(&[("DASHBRIDGE_CONNECT_TIMEOUT_SECS", "2.5")]),
    )
    .unwrap();
    assert_eq!(c.upstream_timeout, Duration::from_millis(750));
    assert_eq!(c.connect_timeout, Duration::from_millis(2500));
    assert_eq!(c.retry_after_cap, Duration::from_millis(1500));
    assert_eq!(c.shutdown_grace, Duration::ZERO);
    assert_eq!(c.request_read_timeout, Duration::from_secs(10));

    let err = errors(&[
        ("DASHBRIDGE_UPSTREAM_TIMEOUT_SECS", "-1"),
        ("DASHBRIDGE_CONNECT_TIMEOUT_SECS", "0"),
        ("DASHBRIDGE_REQUEST_READ_TIMEOUT_SECS", "NaN"),
        ("DASHBRIDGE_SHUTDOWN_GRACE_SECS", "1e12"),
    ]);
    for needle in [
        "DASHBRIDGE_UPSTREAM_TIMEOUT_SECS / upstream.timeout_secs: -1 is not a number of seconds",
        "DASHBRIDGE_CONNECT_TIMEOUT_SECS / upstream.connect_timeout_secs must be greater than 0",
        "DASHBRIDGE_REQUEST_READ_TIMEOUT_SECS / server.request_read_timeout_secs: NaN",
        "DASHBRIDGE_SHUTDOWN_GRACE_SECS / server.shutdown_grace_secs: 1000000000000",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

/// Item 14: the request-bytes budget is a setting and must hold one largest body.
#[test]
fn the_request_bytes_budget_is_configurable_and_holds_one_largest_body() {
    let c = Config::load(
        None,
        &env(&[
            ("DASHBRIDGE_BODY_BUDGET_BYTES", "65536"),
            ("DASHBRIDGE_MAX_BODY_BYTES", "4096"),
        ]),
    )
    .unwrap();
    assert_eq!(c.body_budget_bytes, 65536);
    let path = write(
        "budget.toml",
        "[server]\nbody_budget_bytes = 2048\nmax_body_bytes = 4096\n",
    );
    let err = Config::load(Some(&path), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("server.body_budget_bytes (2048) must be at least DASHBRIDGE_MAX_BODY_BYTES / server.max_body_bytes (4096)"),
        "{err}"
    );
}

#[test]
fn translation_tables_and_the_required_tool_choice_switch() {
    use dashbridge::translate::request::RequiredToolChoice;
    let c = Config::load(None, &env(&[])).unwrap();
    assert_eq!(c.required_tool_choice, RequiredToolChoice::Emulate);
    assert!(c.takes_max_completion_tokens("qwen3.6-plus"));
    assert!(!c.takes_max_completion_tokens("qwen-plus"));
    assert!(c.thinks_by_default("qwen3.5-flash"));
    assert!(!c.thinks_by_default("qwen-max"));

    // Given lists extend the shipped ones, like every prefix list.
    let path = write(
        "tables.toml",
        r#"
[translate]
tool_choice_required = "reject"
[routing]
max_completion_tokens_prefixes = ["deepseek-v4"]
thinking_by_default_prefixes = []
"#,
    );
    let c = Config::load(Some(&path), &env(&[])).unwrap();
    assert_eq!(c.required_tool_choice, RequiredToolChoice::Reject);
    assert!(c.takes_max_completion_tokens("deepseek-v4-pro"));
    assert!(c.takes_max_completion_tokens("qwen3.6-plus"));
    assert!(c.thinks_by_default("qwen3.6-plus"));
    // `shipped_defaults = false` makes them replace the shipped ones, all alike.
    let path = write(
        "tables-replace.toml",
        r#"
[routing]
shipped_defaults = false
max_completion_tokens_prefixes = ["deepseek-v4"]
thinking_by_default_prefixes = []
"#,
    );
    let c = Config::load(Some(&path), &env(&[])).unwrap();
    assert!(c.takes_max_completion_tokens("deepseek-v4-pro"));
    assert!(!c.takes_max_completion_tokens("qwen3.6-plus"));
    assert!(!c.thinks_by_default("qwen3.6-plus"));
    let c = Config::load(
        Some(&path),
        &env(&[("DASHBRIDGE_TOOL_CHOICE_REQUIRED", "emulate")]),
    )
    .unwrap();
    assert_eq!(c.required_tool_choice, RequiredToolChoice::Emulate);
    let e = Config::load(None, &env(&[("DASHBRIDGE_TOOL_CHOICE_REQUIRED", "maybe")])).unwrap_err();
    assert!(
        e.to_string().contains("DASHBRIDGE_TOOL_CHOICE_REQUIRED"),
        "{e}"
    );
}
