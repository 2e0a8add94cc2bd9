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
    assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
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
    assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
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

#[test]
fn translation_tables_and_the_required_tool_choice_switch() {
    use dashbridge::translate::request::RequiredToolChoice;
    let c = Config::load(None, &env(&[])).unwrap();
    assert_eq!(c.required_tool_choice, RequiredToolChoice::Emulate);
    assert!(c.takes_max_completion_tokens("qwen3.6-plus"));
    assert!(!c.takes_max_completion_tokens("qwen-plus"));
    assert!(c.thinks_by_default("qwen3.5-flash"));
    assert!(!c.thinks_by_default("qwen-max"));

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
