//! The `tollgate` command line. The only place errors are `anyhow`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tollgate::config::Config;
use tollgate::mcp::sample::{self, SampleServer};
use tollgate::mock::{self, MockOptions};

// mimalloc: measured faster than glibc malloc on the proxy path, and it returns
// memory to the OS promptly, which keeps the node's RSS small.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "tollgate", version, about = "A clustered AI gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a gateway node (no config needed: HTTP on :8080, data in ./data).
    Serve {
        /// TOML config file; `TOLLGATE_*` environment variables override it.
        #[arg(long, short, env = "TOLLGATE_CONFIG")]
        config: Option<PathBuf>,
        /// Also run the bundled mock provider (`demo`) and the sample MCP
        /// server (`demo`) in this process, to try every surface without an
        /// account.
        #[arg(long)]
        demo: bool,
    },
    /// The audit log of admin writes: `tollgate audit verify` checks every
    /// node's chain held in a (stopped) node's data directory.
    Audit {
        #[command(subcommand)]
        what: AuditCommand,
    },
    /// Check a config file (and the environment) without starting anything.
    CheckConfig {
        #[arg(long, short, env = "TOLLGATE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run the mock LLM provider (OpenAI wire format), a fixture for tests and benchmarks.
    Mock {
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        /// Delay before every answer, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Content chunks per streamed answer.
        #[arg(long, default_value_t = 8)]
        chunks: usize,
        /// Delay between streamed chunks, in milliseconds.
        #[arg(long, default_value_t = 0)]
        chunk_delay_ms: u64,
        /// Words of generated text per answer.
        #[arg(long, default_value_t = 12)]
        words: usize,
        /// Share of requests that fail (0.0–1.0), exactly, spread evenly.
        #[arg(long, default_value_t = 0.0)]
        error_rate: f64,
        /// Status of injected failures.
        #[arg(long, default_value_t = 500)]
        error_status: u16,
        /// Lifetime of the access tokens the Vertex token endpoint issues, in seconds.
        #[arg(long, default_value_t = 3600)]
        token_ttl: u64,
    },
    /// Run the sample MCP server (echo, add, files, N synthetic tools), a fixture
    /// for tests and demos.
    SampleMcp {
        /// Speak MCP on stdin/stdout.
        #[arg(long, conflicts_with_all = ["http", "sse"])]
        stdio: bool,
        /// Serve streamable HTTP at this address (under /mcp).
        #[arg(long, conflicts_with = "sse")]
        http: Option<SocketAddr>,
        /// Serve the legacy HTTP+SSE transport at this address (/sse, /messages).
        #[arg(long)]
        sse: Option<SocketAddr>,
        /// Synthetic tools to expose besides the real ones.
        #[arg(long, default_value_t = 0)]
        tools: usize,
        /// Directory for write_file/read_file (default: a new temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Add the `count` tool, which reports progress.
        #[arg(long)]
        progress_tool: bool,
        /// Speak only the protocol versions with the initialize handshake.
        #[arg(long)]
        legacy_only: bool,
        /// Streamable HTTP only: require OAuth tokens of this authorization
        /// server (its issuer URL), checked by introspection; adds `whoami`.
        #[arg(long, requires = "http")]
        oauth_issuer: Option<String>,
    },
    /// Run a coding agent (claude, codex, gemini, opencode) through a gateway:
    /// its model API, a virtual key and the gateway's /mcp set in the agent's
    /// own settings; the agent gets the remaining arguments.
    Launch(tollgate::launch::LaunchArgs),
    /// Internal: runs one Code Mode script sent on stdin, in this limited process.
    #[command(hide = true)]
    CodemodeWorker {
        /// Confine this process as a worker is, try what the confinement
        /// must refuse, and print what happened (for the test suite).
        #[arg(long)]
        check_confinement: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every chain: names the first entry of each that was altered,
    /// removed or reordered; exits 1 if any was. The node must be stopped
    /// (its database is opened here).
    Verify {
        /// The node's data directory.
        #[arg(long, default_value = "./data", env = "TOLLGATE_SERVER__DATA_DIR")]
        data_dir: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The sandbox worker speaks its protocol on stdout and needs nothing else.
    if let Command::CodemodeWorker { check_confinement } = cli.command {
        std::process::exit(if check_confinement {
            tollgate::codemode::sandbox::confinement_report()
        } else {
            tollgate::codemode::sandbox::worker_main()
        });
    }
    let logs = tracing_subscriber::fmt().with_env_filter(
        tracing_subscriber::EnvFilter::try_from_env("TOLLGATE_LOG")
            .unwrap_or_else(|_| "info".into()),
    );
    // An MCP server on stdio owns stdout, and so do a launched agent and the
    // settings `launch --print` prints: their logs go to stderr.
    if matches!(cli.command, Command::SampleMcp { .. } | Command::Launch(_)) {
        logs.with_writer(std::io::stderr).init();
    } else {
        logs.init();
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // Worker threads: the number of cores unless TOLLGATE_WORKER_THREADS says otherwise.
    if let Some(n) = std::env::var("TOLLGATE_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        builder.worker_threads(n);
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve { config, demo } => {
            let mut config = Config::load(config.as_deref()).context("configuration")?;
            runtime.block_on(async {
                if !demo {
                    return tollgate::node::run(config, shutdown_signal(), |_| {}).await;
                }
                let fixtures = tollgate::demo::start(&mut config)
                    .await
                    .map_err(tollgate::node::NodeError::Serve)?;
                let mcp = fixtures.mcp;
                let token = config.server.admin_token.clone();
                let data_dir = config.server.data_dir.clone();
                tollgate::node::run(config, shutdown_signal(), move |bound| {
                    // Read after start: a node without admin_token made one.
                    let token = token
                        .map(|t| t.expose().to_string())
                        .or_else(|| std::fs::read_to_string(data_dir.join("admin-token")).ok());
                    if let Some(token) = token {
                        tokio::spawn(tollgate::demo::register_mcp(bound, token, mcp));
                    }
                })
                .await
            })?;
        }
        Command::Audit {
            what: AuditCommand::Verify { data_dir },
        } => {
            let store = tollgate::store::Store::open(&data_dir.join("db"))
                .with_context(|| format!("cannot open the database in {}", data_dir.display()))?;
            let chains =
                tollgate::observability::audit::verify(&store).context("reading the audit log")?;
            let mut broken = false;
            for c in &chains {
                match &c.broken {
                    None => println!("chain {}: {} entries, intact", c.node, c.entries),
                    Some(why) => {
                        broken = true;
                        println!(
                            "chain {}: BROKEN after {} good entries: {why}",
                            c.node, c.entries
                        );
                    }
                }
            }
            if chains.is_empty() {
                println!("no audit entries");
            }
            if broken {
                std::process::exit(1);
            }
        }
        Command::CheckConfig { config } => {
            let config = Config::load(config.as_deref()).context("configuration")?;
            println!("config ok: {} provider(s)", config.providers.len());
            for (name, p) in &config.providers {
                let kind = p
                    .resolved_kind(name)
                    .map(|k| k.preset().name)
                    .unwrap_or("?");
                println!("  {name}: kind {kind}, {} key(s)", p.all_keys().len());
            }
        }
        Command::Mock {
            listen,
            latency_ms,
            chunks,
            chunk_delay_ms,
            words,
            error_rate,
            error_status,
            token_ttl,
        } => {
            anyhow::ensure!(
                (0.0..=1.0).contains(&error_rate),
                "--error-rate must be within 0..=1"
            );
            let opts = MockOptions {
                latency: Duration::from_millis(latency_ms),
                chunks,
                chunk_delay: Duration::from_millis(chunk_delay_ms),
                words,
                error_rate,
                error_status,
                token_ttl: Duration::from_secs(token_ttl),
            };
            runtime.block_on(mock::serve(listen, opts))?;
        }
        Command::SampleMcp {
            stdio,
            http,
            sse,
            tools,
            dir,
            progress_tool,
            legacy_only,
            oauth_issuer,
        } => {
            let dir = match dir {
                Some(d) => d,
                None => {
                    let d = std::env::temp_dir()
                        .join(format!("tollgate-sample-mcp-{}", std::process::id()));
                    std::fs::create_dir_all(&d).context("sample directory")?;
                    d
                }
            };
            let mut server = SampleServer::new(tools, dir);
            if progress_tool {
                server = server.with_progress_tool();
            }
            if legacy_only {
                server = server.legacy_only();
            }
            match (stdio, http, sse) {
                (true, _, _) => runtime.block_on(sample::serve_stdio(server))?,
                (_, Some(addr), _) => runtime.block_on(async {
                    let guard = match &oauth_issuer {
                        Some(issuer) => Some(sample::guard::Guard::new(issuer)?),
                        None => None,
                    };
                    if guard.is_some() {
                        server = server.with_whoami();
                    }
                    let listener = tokio::net::TcpListener::bind(addr).await?;
                    sample::serve_http_guarded(server, listener, guard).await
                })?,
                (_, _, Some(addr)) => runtime.block_on(sample::serve_sse(server, addr))?,
                _ => anyhow::bail!("choose one of --stdio, --http ADDR, --sse ADDR"),
            }
        }
        Command::Launch(args) => match runtime.block_on(tollgate::launch::run(args)) {
            Ok(code) => std::process::exit(code),
            Err(e) => {
                eprintln!("tollgate launch: {e}");
                let code = match e {
                    tollgate::launch::LaunchError::Missing { .. } => 127,
                    _ => 1,
                };
                std::process::exit(code);
            }
        },
        Command::CodemodeWorker { .. } => unreachable!("handled before start-up"),
    }
    Ok(())
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
