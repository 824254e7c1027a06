//! `tollgate launch` through the real binary, against a real gateway, with
//! stand-in agents: executables named `claude`, `codex`, `gemini` and
//! `opencode` on a `PATH` of the test's own that record the environment and
//! arguments they were started with (and any settings file they were
//! pointed at) and exit with a code of their own. The recorded key is then
//! used against the gateway, as the agent would use it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "launch-admin-token-0123456789abcdef";

/// A stand-in agent: writes `{"args": [...], "env": {...}, "files": {...}}`
/// to `$RECORD` and exits with 7.
fn fake_agent(dir: &Path, name: &str) {
    let path = dir.join(name);
    std::fs::write(
        &path,
        "#!/usr/bin/env python3\n\
         import json, os, sys\n\
         env = {k: v for k, v in os.environ.items() if k.startswith(('ANTHROPIC', 'GEMINI', 'GOOGLE', 'OPENCODE', 'TOLLGATE'))}\n\
         files = {}\n\
         p = os.environ.get('GEMINI_CLI_SYSTEM_SETTINGS_PATH')\n\
         if p: files[p] = open(p).read()\n\
         json.dump({'args': sys.argv[1:], 'env': env, 'files': files}, open(os.environ['RECORD'], 'w'))\n\
         sys.exit(7)\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

struct Run {
    out: Output,
    record: Option<Value>,
}

fn launch(path_dir: &Path, args: &[&str]) -> Run {
    let record = path_dir.join("record.json");
    let _ = std::fs::remove_file(&record);
    let out = Command::new(BIN)
        .arg("launch")
        .args(args)
        // Only the stand-ins (and python3 for them) are found.
        .env("PATH", format!("{}:/usr/bin:/bin", path_dir.display()))
        .env("RECORD", &record)
        .env("ANTHROPIC_API_KEY", "the-users-own-key")
        .env_remove("TOLLGATE_API_KEY")
        .env_remove("TOLLGATE_ADMIN_TOKEN")
        .env_remove("TOLLGATE_URL")
        .env("TOLLGATE_LOG", "warn")
        .output()
        .unwrap();
    let record = std::fs::read_to_string(&record)
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap());
    Run { out, record }
}

fn stderr(r: &Run) -> String {
    String::from_utf8_lossy(&r.out.stderr).into_owned()
}

async fn gateway(mock: &Proc) -> Gateway {
    Gateway::start(&format!(
        "[server]\nadmin_token = \"{TOKEN}\"\n[client]\nenforce_auth = true\n{}",
        mock_provider("mock", mock, "")
    ))
    .await
}

async fn keys(gw: &Gateway) -> Vec<Value> {
    let (_, v) = admin_call(gw.url("/api/keys"), TOKEN, reqwest::Method::GET, None).await;
    v["data"].as_array().unwrap().clone()
}

fn agents_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for a in ["claude", "codex", "gemini", "opencode"] {
        fake_agent(dir.path(), a);
    }
    let p = dir.path().to_path_buf();
    (dir, p)
}

#[tokio::test]
async fn claude_gets_the_anthropic_surface_a_scoped_new_key_and_the_mcp_endpoint() {
    let mock = start_mock(&[]).await;
    let gw = gateway(&mock).await;
    let url = format!("http://{}", gw.proc.addr);
    let (_dir, path) = agents_dir();
    let r = launch(
        &path,
        &[
            "--url",
            &url,
            "--admin-token",
            TOKEN,
            "--model",
            "mock/mock-1",
            "--haiku",
            "mock/mock-2",
            "claude",
            "-p",
            "--verbose",
            "hello",
        ],
    );
    assert_eq!(r.out.status.code(), Some(7), "{}", stderr(&r));
    let rec = r.record.unwrap();
    let env = &rec["env"];
    assert_eq!(env["ANTHROPIC_BASE_URL"], format!("{url}/anthropic"));
    assert_eq!(env["ANTHROPIC_MODEL"], "mock/mock-1");
    assert_eq!(env["ANTHROPIC_DEFAULT_HAIKU_MODEL"], "mock/mock-2");
    assert!(env.get("ANTHROPIC_API_KEY").is_none(), "{env}");
    let key = env["ANTHROPIC_AUTH_TOKEN"].as_str().unwrap().to_string();
    assert!(key.starts_with("sk-tg-"), "{key}");
    // The agent's own arguments come last, untouched.
    let args: Vec<&str> = rec["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "--mcp-config");
    assert_eq!(&args[2..], ["-p", "--verbose", "hello"]);
    let mcp: Value = serde_json::from_str(args[1]).unwrap();
    let server = &mcp["mcpServers"]["tollgate"];
    assert_eq!(server["url"], format!("{url}/mcp"));
    assert_eq!(server["headers"]["Authorization"], format!("Bearer {key}"));

    // The created key is limited to the models named, expires, and works
    // on the surface the agent was pointed at.
    let created = keys(&gw).await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["name"], "launch-claude");
    assert_eq!(created[0]["models"], json!(["mock/mock-1", "mock/mock-2"]));
    assert!(created[0]["expires_at"].as_u64().is_some());
    let asked = |model: &str| {
        reqwest::Client::new()
            .post(format!("{url}/anthropic/v1/messages"))
            .bearer_auth(&key)
            .json(&json!({"model": model, "max_tokens": 16,
                "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    assert_eq!(asked("mock/mock-1").await.unwrap().status(), 200);
    assert_eq!(asked("mock/other").await.unwrap().status(), 403);
}

#[tokio::test]
async fn codex_gemini_and_opencode_get_their_own_settings_with_a_given_key() {
    let mock = start_mock(&[]).await;
    let gw = gateway(&mock).await;
    let url = format!("http://{}", gw.proc.addr);
    let key = create_key(&gw, TOKEN, json!({"name": "mine"})).await;
    let (_dir, path) = agents_dir();
    let common = ["--url", &url, "--key", &key, "--model", "mock/mock-1"];

    let run = |agent: &str, extra: &[&str]| {
        let mut args: Vec<&str> = common.to_vec();
        args.extend_from_slice(extra);
        args.push(agent);
        let r = launch(&path, &args);
        assert_eq!(r.out.status.code(), Some(7), "{agent}: {}", stderr(&r));
        r.record.unwrap()
    };

    let codex = run("codex", &[]);
    let args: Vec<String> = codex["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codex["env"]["TOLLGATE_API_KEY"], key.as_str());
    for expected in [
        "model_provider=\"tollgate\"".to_string(),
        format!(
            "model_providers.tollgate={{name=\"Tollgate\", base_url=\"{url}/v1\", env_key=\"TOLLGATE_API_KEY\", wire_api=\"responses\"}}"
        ),
        "model=\"mock/mock-1\"".to_string(),
        format!("mcp_servers.tollgate.url=\"{url}/mcp\""),
        "mcp_servers.tollgate.bearer_token_env_var=\"TOLLGATE_API_KEY\"".to_string(),
    ] {
        let at = args.iter().position(|a| *a == expected);
        assert!(
            at.is_some_and(|i| i > 0 && args[i - 1] == "-c"),
            "{expected} in {args:?}"
        );
    }

    let gemini = run("gemini", &[]);
    assert_eq!(gemini["env"]["GEMINI_API_KEY"], key.as_str());
    assert_eq!(
        gemini["env"]["GOOGLE_GEMINI_BASE_URL"],
        format!("{url}/genai")
    );
    assert_eq!(gemini["env"]["GEMINI_MODEL"], "mock/mock-1");
    let settings_path = gemini["env"]["GEMINI_CLI_SYSTEM_SETTINGS_PATH"]
        .as_str()
        .unwrap();
    let settings: Value =
        serde_json::from_str(gemini["files"][settings_path].as_str().unwrap()).unwrap();
    assert_eq!(
        settings["mcpServers"]["tollgate"]["httpUrl"],
        format!("{url}/mcp")
    );
    assert!(
        !Path::new(settings_path).exists(),
        "the settings file is removed after the agent exits"
    );

    let opencode = run("opencode", &["--no-mcp"]);
    let config: Value =
        serde_json::from_str(opencode["env"]["OPENCODE_CONFIG_CONTENT"].as_str().unwrap()).unwrap();
    let provider = &config["provider"]["tollgate"];
    assert_eq!(provider["options"]["baseURL"], format!("{url}/v1"));
    assert_eq!(provider["options"]["apiKey"], key.as_str());
    // The gateway's listed models, and the one asked for.
    assert!(
        provider["models"].get("mock/mock-1").is_some(),
        "{provider}"
    );
    assert_eq!(config["model"], "tollgate/mock/mock-1");
    assert!(config.get("mcp").is_none(), "--no-mcp: {config}");

    // A given key creates none.
    assert_eq!(keys(&gw).await.len(), 1);
}

#[tokio::test]
async fn print_shows_the_settings_and_failures_say_what_to_do() {
    let mock = start_mock(&[]).await;
    let gw = gateway(&mock).await;
    let url = format!("http://{}", gw.proc.addr);
    let key = create_key(&gw, TOKEN, json!({"name": "mine"})).await;
    let empty = tempfile::tempdir().unwrap();

    // --print runs nothing, and needs no agent installed.
    let r = launch(
        empty.path(),
        &["--url", &url, "--key", &key, "--print", "claude", "-p", "x"],
    );
    assert_eq!(r.out.status.code(), Some(0), "{}", stderr(&r));
    assert!(r.record.is_none());
    let printed = String::from_utf8(r.out.stdout.clone()).unwrap();
    assert!(
        printed.contains(&format!("export ANTHROPIC_BASE_URL='{url}/anthropic'")),
        "{printed}"
    );
    assert!(printed.contains("unset ANTHROPIC_API_KEY"), "{printed}");
    assert!(printed.trim_end().ends_with("'-p' 'x'"), "{printed}");

    // No agent on PATH: how to install it, and 127.
    let r = launch(empty.path(), &["--url", &url, "--key", &key, "claude"]);
    assert_eq!(r.out.status.code(), Some(127));
    assert!(
        stderr(&r).contains("npm install -g @anthropic-ai/claude-code"),
        "{}",
        stderr(&r)
    );

    // No gateway there.
    let (_dir, path) = agents_dir();
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let r = launch(&path, &["--url", &nowhere, "--key", &key, "claude"]);
    assert_eq!(r.out.status.code(), Some(1));
    assert!(
        stderr(&r).contains("no gateway answers at"),
        "{}",
        stderr(&r)
    );
    assert!(r.record.is_none());

    // No key and no admin token; a wrong admin token.
    let r = launch(&path, &["--url", &url, "claude"]);
    assert_eq!(r.out.status.code(), Some(1));
    assert!(stderr(&r).contains("no virtual key"), "{}", stderr(&r));
    let r = launch(
        &path,
        &[
            "--url",
            &url,
            "--admin-token",
            "wrong-token-0123456789abcdef",
            "claude",
        ],
    );
    assert_eq!(r.out.status.code(), Some(1));
    assert!(
        stderr(&r).contains("refused to create a key (401)"),
        "{}",
        stderr(&r)
    );
}
