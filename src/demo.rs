//! `tollgate serve --demo`: a node that shows every surface without any
//! account. The bundled mock provider (`mock`) and the sample MCP server
//! (`mcp::sample`) run inside the node's process on loopback ports of their
//! own; the mock is added to the config as provider `demo` (unless one of
//! that name exists), and once the node is ready the sample server is
//! registered through the node's own admin API as MCP server `demo`
//! (a `PUT`, so a data directory used before gets the new port).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;

use crate::config::{Config, ProviderConfig};

/// The in-process fixtures of a demo node.
pub struct Demo {
    pub mock: SocketAddr,
    pub mcp: SocketAddr,
    /// Where the sample server's `write_file` writes; removed on drop.
    files: std::path::PathBuf,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.files);
    }
}

/// Starts the mock provider and the sample MCP server, and adds provider
/// `demo` to `config`.
pub async fn start(config: &mut Config) -> std::io::Result<Demo> {
    let mock = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mock_addr = mock.local_addr()?;
    tokio::spawn(async move {
        let app = crate::mock::router(crate::mock::MockOptions::default());
        if let Err(e) = axum::serve(mock, app).await {
            tracing::error!(error = %e, "the demo's mock provider stopped");
        }
    });
    let files = std::env::temp_dir().join(format!("tollgate-demo-{}", std::process::id()));
    crate::config::private_dir(&files)?;
    let mcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mcp_addr = mcp.local_addr()?;
    let server = crate::mcp::sample::SampleServer::new(0, files.clone());
    tokio::spawn(async move {
        if let Err(e) = crate::mcp::sample::serve_http_on(server, mcp).await {
            tracing::error!(error = %e, "the demo's MCP server stopped");
        }
    });
    if !config.providers.contains_key("demo") {
        let provider: ProviderConfig = toml::from_str(&format!(
            "kind = \"mock\"\nbase_url = \"http://{mock_addr}/v1\"\n"
        ))
        .expect("a mock provider's config");
        config.providers.insert("demo".into(), provider);
    }
    tracing::info!(mock = %mock_addr, mcp = %mcp_addr, "demo: mock provider `demo` and MCP server `demo` run in this process");
    Ok(Demo {
        mock: mock_addr,
        mcp: mcp_addr,
        files,
    })
}

/// Registers the sample server as MCP server `demo` through the node at
/// `node` once it is ready, with the admin token `token`.
pub async fn register_mcp(node: SocketAddr, token: String, mcp: SocketAddr) {
    let client = crate::proxy::upstream::http_client(Duration::from_secs(2));
    let body = json!({"transport": {"type": "http", "url": format!("http://{mcp}/mcp")}});
    for _ in 0..300 {
        let req = http::Request::put(format!("http://{node}/api/mcp/servers/demo"))
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_string(),
            )))
            .expect("a request");
        match client.request(req).await {
            Ok(r) if r.status().is_success() => {
                tracing::info!("demo: MCP server `demo` registered");
                return;
            }
            Ok(r) if r.status().is_client_error() => {
                tracing::warn!(status = %r.status(), "demo: the node refused to register MCP server `demo`");
                return;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    tracing::warn!("demo: the node never took MCP server `demo`");
}
