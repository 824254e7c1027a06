//! `tollgate launch <agent>`: runs a coding agent (Claude Code, Codex,
//! Gemini CLI, opencode) through a gateway, with the agent's own settings
//! pointed at it: its model API at the gateway's surface in the agent's
//! wire format, a virtual key (given, or created through the admin API),
//! the models it asked for, and the gateway's `/mcp` where the agent takes
//! MCP servers. Nothing is written to the agent's own configuration files.
//!
//! The settings are pure ([`settings`]); [`run`] finds the gateway, the key
//! and the agent, and runs it with the remaining arguments, passing its
//! exit code through. `--print` shows the settings instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

/// The agents `launch` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Agent {
    Claude,
    Codex,
    Gemini,
    Opencode,
}

impl Agent {
    /// The program's name on `PATH`.
    pub fn program(self) -> &'static str {
        match self {
            Agent::Claude => "claude",
            Agent::Codex => "codex",
            Agent::Gemini => "gemini",
            Agent::Opencode => "opencode",
        }
    }

    /// How to install it, for the message when it is missing.
    pub fn install_hint(self) -> &'static str {
        match self {
            Agent::Claude => "npm install -g @anthropic-ai/claude-code",
            Agent::Codex => "npm install -g @openai/codex",
            Agent::Gemini => "npm install -g @google/gemini-cli",
            Agent::Opencode => "npm install -g opencode-ai",
        }
    }
}

/// What to point the agent at.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The gateway's base URL, without a trailing `/`.
    pub url: String,
    /// The virtual key's secret.
    pub key: String,
    /// The model the agent uses by default.
    pub model: Option<String>,
    /// Claude Code's tiers: `opus`, `sonnet`, `haiku` → model.
    pub tiers: BTreeMap<String, String>,
    /// Models the gateway lists (opencode must be told which exist).
    pub models: Vec<String>,
    /// Attach the gateway's `/mcp`.
    pub mcp: bool,
}

/// How to run the agent: environment to set and unset, arguments before
/// the user's, and files to write first (path, contents).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub env: Vec<(String, String)>,
    pub unset: Vec<String>,
    pub args: Vec<String>,
    pub files: Vec<(PathBuf, String)>,
}

/// The environment variable codex reads the key from (`env_key`).
const CODEX_KEY_VAR: &str = "TOLLGATE_API_KEY";

/// TOML's basic string, for codex's `-c key=value` overrides.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The settings that point `agent` at `t`; `scratch` is a directory of
/// the launch's own for files an agent can only read settings from.
pub fn settings(agent: Agent, t: &Target, scratch: &Path) -> Settings {
    let mut s = Settings::default();
    let mut env = |k: &str, v: &str| s.env.push((k.to_string(), v.to_string()));
    let mcp_url = format!("{}/mcp", t.url);
    let bearer = format!("Bearer {}", t.key);
    match agent {
        Agent::Claude => {
            env("ANTHROPIC_BASE_URL", &format!("{}/anthropic", t.url));
            env("ANTHROPIC_AUTH_TOKEN", &t.key);
            if let Some(m) = &t.model {
                env("ANTHROPIC_MODEL", m);
            }
            for (tier, model) in &t.tiers {
                env(
                    &format!("ANTHROPIC_DEFAULT_{}_MODEL", tier.to_ascii_uppercase()),
                    model,
                );
            }
            // A key of the user's own would be sent instead of the token.
            s.unset.push("ANTHROPIC_API_KEY".into());
            if t.mcp {
                let config = json!({"mcpServers": {"tollgate": {
                    "type": "http", "url": mcp_url, "headers": {"Authorization": bearer}}}});
                s.args.push("--mcp-config".into());
                s.args.push(config.to_string());
            }
        }
        Agent::Codex => {
            env(CODEX_KEY_VAR, &t.key);
            let provider = format!(
                "model_providers.tollgate={{name={}, base_url={}, env_key={}, wire_api={}}}",
                toml_str("Tollgate"),
                toml_str(&format!("{}/v1", t.url)),
                toml_str(CODEX_KEY_VAR),
                toml_str("responses"),
            );
            let mut c = |v: String| {
                s.args.push("-c".into());
                s.args.push(v);
            };
            c(format!("model_provider={}", toml_str("tollgate")));
            c(provider);
            if let Some(m) = &t.model {
                c(format!("model={}", toml_str(m)));
            }
            if t.mcp {
                c(format!("mcp_servers.tollgate.url={}", toml_str(&mcp_url)));
                c(format!(
                    "mcp_servers.tollgate.bearer_token_env_var={}",
                    toml_str(CODEX_KEY_VAR)
                ));
            }
        }
        Agent::Gemini => {
            env("GEMINI_API_KEY", &t.key);
            env("GOOGLE_GEMINI_BASE_URL", &format!("{}/genai", t.url));
            env("GOOGLE_GENAI_API_VERSION", "v1beta");
            if let Some(m) = &t.model {
                env("GEMINI_MODEL", m);
            }
            if t.mcp {
                let path = scratch.join("gemini-settings.json");
                env(
                    "GEMINI_CLI_SYSTEM_SETTINGS_PATH",
                    &path.display().to_string(),
                );
                let settings = json!({"mcpServers": {"tollgate": {
                    "httpUrl": mcp_url, "headers": {"Authorization": bearer}}}});
                s.files.push((path, settings.to_string()));
            }
        }
        Agent::Opencode => {
            let mut models: Vec<&String> = t.models.iter().collect();
            if let Some(m) = &t.model
                && !t.models.contains(m)
            {
                models.push(m);
            }
            let listed: serde_json::Map<String, Value> =
                models.iter().map(|m| (m.to_string(), json!({}))).collect();
            let mut config = json!({
                "provider": {"tollgate": {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "Tollgate",
                    "options": {"baseURL": format!("{}/v1", t.url), "apiKey": t.key},
                    "models": listed,
                }},
            });
            if let Some(m) = &t.model {
                config["model"] = format!("tollgate/{m}").into();
            }
            if t.mcp {
                config["mcp"] = json!({"tollgate": {
                    "type": "remote", "url": mcp_url, "headers": {"Authorization": bearer}}});
            }
            env("OPENCODE_CONFIG_CONTENT", &config.to_string());
        }
    }
    s
}

/// `tollgate launch`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct LaunchArgs {
    /// The agent to run.
    #[arg(value_enum)]
    pub agent: Agent,
    /// The gateway (default: `TOLLGATE_URL`, else http://localhost:8080).
    #[arg(long, env = "TOLLGATE_URL", default_value = "http://localhost:8080")]
    pub url: String,
    /// A virtual key to use (`sk-tg-…`); without one, a key is created
    /// through the admin API with `--admin-token`.
    #[arg(long, env = "TOLLGATE_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// The admin token that creates a key when none is given.
    #[arg(long, env = "TOLLGATE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// How long a created key lasts (it is limited to the models named).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub key_ttl: Duration,
    /// The agent's default model, as the gateway names it.
    #[arg(long)]
    pub model: Option<String>,
    /// Claude Code's `opus` tier.
    #[arg(long)]
    pub opus: Option<String>,
    /// Claude Code's `sonnet` tier.
    #[arg(long)]
    pub sonnet: Option<String>,
    /// Claude Code's `haiku` tier.
    #[arg(long)]
    pub haiku: Option<String>,
    /// Do not attach the gateway's `/mcp`.
    #[arg(long)]
    pub no_mcp: bool,
    /// Print the settings (as shell lines) instead of running the agent.
    #[arg(long)]
    pub print: bool,
    /// Arguments for the agent.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(
        "no gateway answers at {url} ({why}): start one with `tollgate serve`, or name it with --url or TOLLGATE_URL"
    )]
    Unreachable { url: String, why: String },
    #[error(
        "no virtual key: pass --key (or TOLLGATE_API_KEY), or --admin-token (or TOLLGATE_ADMIN_TOKEN) to create one"
    )]
    NoKey,
    #[error("the gateway refused to create a key ({status}): {body}")]
    KeyRefused { status: u16, body: String },
    #[error("{program} is not installed (not found on PATH): install it with `{hint}`")]
    Missing { program: String, hint: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Http(String),
}

/// Runs the agent (or prints its settings); the exit code to leave with.
pub async fn run(a: LaunchArgs) -> Result<i32, LaunchError> {
    let url = a.url.trim_end_matches('/').to_string();
    let client = Http(crate::proxy::upstream::http_client(Duration::from_secs(5)));
    match client
        .call(http::Method::GET, &format!("{url}/health"), None, None)
        .await
    {
        Ok((200, _)) => {}
        Ok((status, _)) => {
            return Err(LaunchError::Unreachable {
                url,
                why: format!("/health answered {status}"),
            });
        }
        Err(why) => return Err(LaunchError::Unreachable { url, why }),
    }
    let mut tiers = BTreeMap::new();
    for (tier, m) in [
        ("opus", &a.opus),
        ("sonnet", &a.sonnet),
        ("haiku", &a.haiku),
    ] {
        if let Some(m) = m {
            tiers.insert(tier.to_string(), m.clone());
        }
    }
    let program = find_on_path(a.agent.program());
    if program.is_none() && !a.print {
        return Err(LaunchError::Missing {
            program: a.agent.program().into(),
            hint: a.agent.install_hint().into(),
        });
    }
    let key = match (&a.key, &a.admin_token) {
        (Some(k), _) => k.clone(),
        (None, Some(admin)) => {
            let scope: Vec<&String> = a.model.iter().chain(tiers.values()).collect();
            create_key(&client, &url, admin, a.agent, &scope, a.key_ttl).await?
        }
        (None, None) => return Err(LaunchError::NoKey),
    };
    let models = list_models(&client, &url, &key).await;
    let target = Target {
        url: url.clone(),
        key,
        model: a.model.clone(),
        tiers,
        models,
        mcp: !a.no_mcp,
    };
    let scratch = std::env::temp_dir().join(format!("tollgate-launch-{}", std::process::id()));
    let s = settings(a.agent, &target, &scratch);
    if a.print {
        print!("{}", shell_lines(a.agent, &s, &a.rest));
        return Ok(0);
    }
    for (path, text) in &s.files {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Only this user may read it: it holds the key.
        crate::config::write_private(path, text.as_bytes())?;
    }
    let mut cmd = tokio::process::Command::new(program.expect("checked above"));
    cmd.args(&s.args).args(&a.rest);
    for k in &s.unset {
        cmd.env_remove(k);
    }
    cmd.envs(s.env.iter().map(|(k, v)| (k, v)));
    let status = cmd.status().await?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(exit_code(status))
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// JSON over the gateway's own HTTP client, bounded in time and bytes.
struct Http(crate::proxy::upstream::HttpClient);

impl Http {
    async fn call(
        &self,
        method: http::Method,
        url: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        use http_body_util::BodyExt;
        let mut req = http::Request::builder().method(method).uri(url);
        if let Some(b) = bearer {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {b}"));
        }
        if body.is_some() {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        let bytes = body.map_or_else(Vec::new, |b| b.to_string().into_bytes());
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(bytes)))
            .map_err(|e| e.to_string())?;
        let ask = async {
            let resp = self.0.request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let body = http_body_util::Limited::new(resp.into_body(), 1024 * 1024)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
        };
        tokio::time::timeout(Duration::from_secs(10), ask)
            .await
            .unwrap_or_else(|_| Err("timed out".into()))
    }
}

async fn create_key(
    client: &Http,
    url: &str,
    admin: &str,
    agent: Agent,
    models: &[&String],
    ttl: Duration,
) -> Result<String, LaunchError> {
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        + ttl;
    let mut body = json!({
        "name": format!("launch-{}", agent.program()),
        "expires_at": expires.as_millis() as u64,
    });
    if !models.is_empty() {
        body["models"] = json!(models);
    }
    let r = client
        .call(
            http::Method::POST,
            &format!("{url}/api/keys"),
            Some(admin),
            Some(&body),
        )
        .await
        .map_err(LaunchError::Http)?;
    if r.0 != 201 {
        return Err(LaunchError::KeyRefused {
            status: r.0,
            body: r.1.to_string(),
        });
    }
    r.1["secret"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| LaunchError::Http("the created key has no secret".into()))
}

/// The model ids the gateway lists for `key` (empty when it cannot say).
async fn list_models(client: &Http, url: &str, key: &str) -> Vec<String> {
    match client
        .call(
            http::Method::GET,
            &format!("{url}/v1/models"),
            Some(key),
            None,
        )
        .await
    {
        Ok((200, v)) => v["data"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(|m| m["id"].as_str().map(str::to_string))
                    .take(200)
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Where `program` is on `PATH`.
fn find_on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| {
                p.metadata()
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    })
}

/// The settings as lines a shell runs: files, exports, then the command.
fn shell_lines(agent: Agent, s: &Settings, rest: &[String]) -> String {
    let q = |v: &str| format!("'{}'", v.replace('\'', r"'\''"));
    let mut out = String::new();
    for (path, text) in &s.files {
        out.push_str(&format!(
            "printf '%s' {} > {}\n",
            q(text),
            q(&path.display().to_string())
        ));
    }
    for k in &s.unset {
        out.push_str(&format!("unset {k}\n"));
    }
    for (k, v) in &s.env {
        out.push_str(&format!("export {k}={}\n", q(v)));
    }
    let args: Vec<String> = s.args.iter().chain(rest).map(|a| q(a)).collect();
    out.push_str(agent.program());
    for a in args {
        out.push(' ');
        out.push_str(&a);
    }
    out.push('\n');
    out
}
