//! The MCP gateway end to end: the real binary as gateway and as sample MCP
//! servers (stdio, streamable HTTP, legacy SSE), and rmcp as the client of `/mcp`.

mod common;

use std::time::{Duration, Instant};

use common::mcp::*;
use common::{Gateway, Proc, metrics_text};
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

#[tokio::test]
async fn keys_see_and_call_exactly_their_tools() {
    let http = start_sample("--http", free_addr()).await;
    let gw = start_gateway(tempfile::tempdir().unwrap()).await;
    let admin = Admin::new(&gw);
    admin
        .put(
            "/api/mcp/servers/files",
            json!({"transport": {"type": "http", "url": format!("http://{}/mcp", http.addr)},
                   "tool_prices": {"echo": 1500}}),
        )
        .await;
    admin
        .put("/api/mcp/servers/local", stdio_server(&["--tools", "3"]))
        .await;
    admin
        .put(
            "/api/mcp/tool-groups/readers",
            json!({"tools": ["files-read_file", "files-echo"]}),
        )
        .await;
    assert_eq!(admin.connected("files").await["status"]["tools"], 5);
    let local = admin.connected("local").await;
    assert_eq!(local["status"]["tools"], 8);
    assert_eq!(local["tools"].as_array().unwrap().len(), 8);

    // A key scoped by a group plus one single tool.
    let scoped = admin
        .key(json!({"name": "scoped", "tool_groups": ["readers"], "tools": ["local-add"]}))
        .await;
    let open = admin.key(json!({"name": "open"})).await;

    let c = client(&gw, &scoped).await;
    assert_eq!(
        tool_names(&c).await,
        ["files-echo", "files-read_file", "local-add"]
    );
    let r = call(&c, "files-echo", json!({"text": "hello"}))
        .await
        .unwrap();
    assert_eq!(text(&r), "hello");
    assert_ne!(r.is_error, Some(true));
    let r = call(&c, "local-add", json!({"a": 2, "b": 3.5}))
        .await
        .unwrap();
    assert_eq!(text(&r), "5.5");
    // Outside the scope: refused exactly like a tool that does not exist.
    let forbidden = call(&c, "files-write_file", json!({"path": "x", "content": "y"}))
        .await
        .unwrap_err()
        .to_string();
    let missing = call(&c, "files-nonexistent", json!({}))
        .await
        .unwrap_err()
        .to_string();
    assert!(forbidden.contains("unknown tool"), "{forbidden}");
    assert_eq!(
        forbidden.replace("files-write_file", "T"),
        missing.replace("files-nonexistent", "T")
    );

    let c2 = client(&gw, &open).await;
    let mut all = prefixed("files");
    all.extend(prefixed("local"));
    all.extend((0..3).map(|i| format!("local-synthetic_{i}")));
    all.sort();
    assert_eq!(tool_names(&c2).await, all);
    let w = call(
        &c2,
        "files-write_file",
        json!({"path": "note.txt", "content": "kept"}),
    )
    .await
    .unwrap();
    assert_ne!(w.is_error, Some(true), "{}", text(&w));
    let r = call(&c2, "files-read_file", json!({"path": "note.txt"}))
        .await
        .unwrap();
    assert_eq!(text(&r), "kept");
    // A tool that fails reports it in its result.
    let r = call(&c2, "files-read_file", json!({"path": "../escape"}))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));

    // A bad key gets no session at all.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = StreamableHttpClientTransportConfig::with_uri(gw.url("/mcp"));
    config.auth_header = Some("sk-tg-wrong".into());
    assert!(
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
            .is_err()
    );

    // Every execution is logged, with its price charged.
    let deadline = Instant::now() + Duration::from_secs(10);
    let logs = loop {
        let (_, page) = admin
            .send(reqwest::Method::GET, "/api/tool-logs?server=files", None)
            .await;
        if page["data"].as_array().is_some_and(|d| d.len() >= 4) {
            break page;
        }
        assert!(Instant::now() < deadline, "tool logs: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let echo = logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["tool"] == "files-echo")
        .expect("the echo call is logged");
    assert_eq!(echo["cost_micros"], 1500);
    assert_eq!(echo["arguments"], r#"{"text":"hello"}"#);
    assert!(echo["result"].as_str().unwrap().contains("hello"));
    assert!(echo["virtual_key"].as_str().unwrap().starts_with("vk_"));
    let escape = logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["is_error"] == true)
        .expect("the failed read is logged");
    assert_eq!(escape["tool"], "files-read_file");
    assert_eq!(escape["cost_micros"], 0);

    // The same calls in /metrics, by server, tool and result.
    let metrics = metrics_text(&gw).await;
    for series in [
        "tollgate_mcp_tool_calls_total{result=\"ok\",server=\"files\",tool=\"files-echo\"}",
        "tollgate_mcp_tool_calls_total{result=\"error\",server=\"files\",tool=\"files-read_file\"}",
        "tollgate_mcp_tool_latency_seconds_count{server=\"files\",tool=\"files-echo\"}",
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
}

#[tokio::test]
async fn admin_refuses_bad_servers_groups_and_references() {
    let gw = start_gateway(tempfile::tempdir().unwrap()).await;
    let admin = Admin::new(&gw);
    for (path, body) in [
        ("/api/mcp/servers/has-dash", stdio_server(&[])),
        (
            "/api/mcp/servers/nocmd",
            json!({"transport": {"type": "stdio", "command": ""}}),
        ),
        (
            "/api/mcp/servers/notype",
            json!({"transport": {"command": "x"}}),
        ),
        (
            "/api/mcp/servers/badurl",
            json!({"transport": {"type": "http", "url": "ftp://x"}}),
        ),
        (
            "/api/mcp/servers/unsetvar",
            json!({"transport": {"type": "sse", "url": "http://127.0.0.1:1/sse",
                   "headers": {"authorization": "env.MCP_TEST_UNSET_VAR"}}}),
        ),
        (
            "/api/mcp/servers/provider_secret",
            json!({"transport": {"type": "http", "url": "http://127.0.0.1:1/mcp",
                   "headers": {"authorization": "env.OPENAI_API_KEY"}}}),
        ),
        (
            "/api/mcp/servers/extra",
            json!({"transport": {"type": "stdio", "command": "x"}, "colour": 1}),
        ),
        ("/api/mcp/tool-groups/empty", json!({"tools": []})),
    ] {
        let (status, v) = admin.send(reqwest::Method::PUT, path, Some(body)).await;
        assert_eq!(status, 400, "{path}: {v}");
    }
    let (status, _) = admin
        .send(
            reqwest::Method::POST,
            "/api/keys",
            Some(json!({"name": "k", "tool_groups": ["nope"]})),
        )
        .await;
    assert_eq!(status, 400);
    let (_, list) = admin
        .send(reqwest::Method::GET, "/api/mcp/servers", None)
        .await;
    assert_eq!(list["data"], json!([]), "nothing refused was written");

    // Literal header secrets are never shown; env references are.
    let v = admin
        .put(
            "/api/mcp/servers/remote",
            json!({"transport": {"type": "http", "url": "http://127.0.0.1:1/mcp",
                   "headers": {"authorization": "Bearer literal-secret", "x-env": "env.MCP_TEST_TOKEN"}},
                   "enabled": false}),
        )
        .await;
    assert_eq!(v["transport"]["headers"]["authorization"], "***");
    assert_eq!(v["transport"]["headers"]["x-env"], "env.MCP_TEST_TOKEN");
    assert_eq!(v["status"]["state"], "disabled");
    let (status, v) = admin
        .send(
            reqwest::Method::PATCH,
            "/api/mcp/servers/remote",
            Some(json!({"tool_prices": {"t": 5}})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["tool_prices"]["t"], 5);
    let (status, _) = admin
        .send(reqwest::Method::DELETE, "/api/mcp/servers/remote", None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = admin
        .send(reqwest::Method::GET, "/api/mcp/servers/remote", None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_crashed_stdio_server_is_restarted_and_its_tools_return() {
    let gw = start_gateway(tempfile::tempdir().unwrap()).await;
    let admin = Admin::new(&gw);
    admin.put("/api/mcp/servers/local", stdio_server(&[])).await;
    assert_eq!(admin.connected("local").await["status"]["connects"], 1);
    let key = admin.key(json!({"name": "k"})).await;
    let c = client(&gw, &key).await;
    let r = call(&c, "local-echo", json!({"text": "before"}))
        .await
        .unwrap();
    assert_eq!(text(&r), "before");

    // `exit` ends the process mid-call.
    let r = call(&c, "local-exit", json!({})).await.unwrap();
    assert_eq!(
        r.is_error,
        Some(true),
        "the call cannot succeed: {}",
        text(&r)
    );
    admin
        .server_until("local", "restarted", |v| {
            v["status"]["state"] == "connected" && v["status"]["connects"] == 2
        })
        .await;
    assert_eq!(tool_names(&c).await, prefixed("local"));
    let r = call(&c, "local-echo", json!({"text": "after"}))
        .await
        .unwrap();
    assert_eq!(text(&r), "after");
}

#[tokio::test]
async fn an_http_server_that_goes_away_is_disconnected_then_reconnected() {
    let addr = free_addr();
    let http = start_sample("--http", addr).await;
    let gw = start_gateway(tempfile::tempdir().unwrap()).await;
    let admin = Admin::new(&gw);
    admin
        .put(
            "/api/mcp/servers/remote",
            json!({"transport": {"type": "http", "url": format!("http://{addr}/mcp")}}),
        )
        .await;
    admin.connected("remote").await;
    let key = admin.key(json!({"name": "k"})).await;
    let c = client(&gw, &key).await;
    assert_eq!(tool_names(&c).await, prefixed("remote"));

    drop(http);
    let down = admin
        .server_until("remote", "disconnected", |v| {
            matches!(
                v["status"]["state"].as_str(),
                Some("disconnected" | "error")
            )
        })
        .await;
    assert!(down["status"]["last_error"].is_string(), "{down}");
    assert_eq!(down["status"]["tools"], 0);
    assert_eq!(tool_names(&c).await, Vec::<String>::new());
    let r = call(&c, "remote-echo", json!({"text": "x"})).await;
    assert!(
        r.is_err(),
        "a tool of a server that is down is not listed, so unknown"
    );

    let _back = start_sample("--http", addr).await;
    admin.connected("remote").await;
    let r = call(&c, "remote-echo", json!({"text": "back"}))
        .await
        .unwrap();
    assert_eq!(text(&r), "back");
}

#[tokio::test]
async fn legacy_sse_servers_are_reached_through_our_transport() {
    let sse = start_sample("--sse", free_addr()).await;
    let gw = start_gateway(tempfile::tempdir().unwrap()).await;
    let admin = Admin::new(&gw);
    admin
        .put(
            "/api/mcp/servers/old",
            json!({"transport": {"type": "sse", "url": format!("http://{}/sse", sse.addr)}}),
        )
        .await;
    assert_eq!(admin.connected("old").await["status"]["tools"], 5);
    let key = admin.key(json!({"name": "k", "tools": ["old-add"]})).await;
    let c = client(&gw, &key).await;
    assert_eq!(tool_names(&c).await, ["old-add"]);
    let r = call(&c, "old-add", json!({"a": 40, "b": 2})).await.unwrap();
    assert_eq!(text(&r), "42");
}

/// Two nodes of one cluster: the server and keys written on the first reach
/// the second by replication, and a session sealed by one node is served by
/// the other (and by no node of another cluster).
#[tokio::test]
async fn a_session_begun_on_one_node_continues_on_another() {
    let gw1 = start_gateway(tempfile::tempdir().unwrap()).await;
    let admin = Admin::new(&gw1);
    let (_, cluster) = admin.get("/api/cluster").await;
    let seed = cluster["quic"].as_str().unwrap().to_string();
    let gw2 = start_node(tempfile::tempdir().unwrap(), SECRET, Some(&seed)).await;
    admin.put("/api/mcp/servers/local", stdio_server(&[])).await;
    admin.connected("local").await;
    let key = admin
        .key(json!({"name": "k", "tools": ["local-echo"]}))
        .await;
    let other_key = admin.key(json!({"name": "other"})).await;
    // Replicated: the second node connects to the server itself, and knows
    // the keys (which may arrive after the server).
    Admin::new(&gw2).connected("local").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    for k in [&key, &other_key] {
        while post(&gw2, k, None, init_body()).await.0 != 200 {
            assert!(Instant::now() < deadline, "the keys never reached node 2");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (status, sid, init) = post(&gw1, &key, None, init_body()).await;
    assert_eq!(status, 200, "{init}");
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    let sid = sid.expect("initialize answers with a session id");
    // Continued on the other node.
    let (status, _, list) = post(&gw2, &key, Some(&sid), list_body()).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["result"]["tools"][0]["name"], "local-echo");
    let (status, _, called) = post(
        &gw2,
        &key,
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
               "params": {"name": "local-echo", "arguments": {"text": "hop"}}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(called["result"]["content"][0]["text"], "hop");

    // The Code Mode switch replicates: turned on at node 1, node 2 shows
    // the meta-tools in the same session and runs the script itself.
    let (status, v) = admin
        .send(
            reqwest::Method::PATCH,
            "/api/mcp/servers/local",
            Some(json!({"code_mode": true})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    Admin::new(&gw2)
        .server_until("local", "in Code Mode and connected", |v| {
            v["code_mode"] == true && v["status"]["state"] == "connected"
        })
        .await;
    let (_, _, list) = post(&gw2, &key, Some(&sid), list_body()).await;
    let mut names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, META_TOOLS);
    let (_, _, ran) = post(
        &gw2,
        &key,
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
               "params": {"name": "executeToolCode", "arguments": {"code": "result = local.echo(text = 'hop')"}}}),
    )
    .await;
    assert_eq!(
        ran["result"]["content"][0]["text"], "result = \"hop\"\n",
        "{ran}"
    );

    // The session is bound to its key.
    let (status, _, _) = post(&gw2, &other_key, Some(&sid), list_body()).await;
    assert_eq!(status, 404);
    // Without a session, or with a forged one, nothing but initialize works.
    let (status, _, _) = post(&gw2, &key, None, list_body()).await;
    assert_eq!(status, 400);
    let forged = format!("{}x", &sid[..sid.len() - 1]);
    let (status, _, _) = post(&gw2, &key, Some(&forged), list_body()).await;
    assert_eq!(status, 404);

    // A node with another cluster secret does not accept the session.
    let dir3 = tempfile::tempdir().unwrap();
    let gw3 = start_node(dir3, "another cluster's secret, not ours", None).await;
    let k3 = Admin::new(&gw3).key(json!({"name": "k3"})).await;
    let (_, sid3, _) = post(&gw3, &k3, None, init_body()).await;
    let (status, _, _) = post(&gw3, &k3, Some(&sid), list_body()).await;
    assert_eq!(status, 404);
    assert!(sid3.is_some());
}

#[tokio::test]
async fn mcp_refuses_hosts_it_is_not_told_to_allow() {
    let gw = start_gateway(tempfile::tempdir().unwrap()).await;
    let key = Admin::new(&gw).key(json!({"name": "k"})).await;
    let send = |host: &'static str| {
        reqwest::Client::new()
            .post(gw.url("/mcp"))
            .bearer_auth(&key)
            .header("host", host)
            .json(&init_body())
            .send()
    };
    assert_eq!(send("gateway.example.com").await.unwrap().status(), 403);
    assert_eq!(send("localhost:8080").await.unwrap().status(), 200);

    let dir = tempfile::tempdir().unwrap();
    let config = format!("{CONFIG}allowed_hosts = [\"gateway.example.com\"]\n");
    let gw2 = Gateway::start_with_env(&config, dir, &[]).await;
    let key2 = Admin::new(&gw2).key(json!({"name": "k"})).await;
    let r = reqwest::Client::new()
        .post(gw2.url("/mcp"))
        .bearer_auth(&key2)
        .header("host", "gateway.example.com")
        .json(&init_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn chat(gw: &Gateway, key: &str, headers: &[(&str, &str)]) -> (u16, Option<String>, Value) {
    let mut req = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&common::chat_body("mock/mock-1"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let depth = r
        .headers()
        .get("x-tollgate-mcp-depth")
        .map(|v| v.to_str().unwrap().to_string());
    (status, depth, r.json().await.unwrap())
}

fn tool_calls(answer: &Value) -> Vec<String> {
    answer["choices"][0]["message"]["tool_calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .map(|c| c["function"]["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A gateway in front of the mock model with the sample server connected,
/// and a key that may call and auto-execute `local-echo`.
async fn agent_setup() -> (Proc, Gateway, Admin, String) {
    let mock = common::start_mock(&[]).await;
    let config = format!(
        "{CONFIG}agent_max_depth = 3\n{}",
        common::mock_provider("mock", &mock, "")
    );
    let gw = Gateway::start_with_env(&config, tempfile::tempdir().unwrap(), &[]).await;
    let admin = Admin::new(&gw);
    admin.put("/api/mcp/servers/local", stdio_server(&[])).await;
    admin.connected("local").await;
    let auto = admin
        .key(json!({"name": "auto", "tools": ["local-echo"], "auto_execute": ["local-echo"]}))
        .await;
    (mock, gw, admin, auto)
}

/// The mock model calls the first tool it is offered whenever the last
/// message is the user's, and answers in text after a tool result.
#[tokio::test]
async fn agent_mode_executes_auto_tools_and_returns_the_others() {
    let (_mock, gw, admin, auto) = agent_setup().await;
    let manual = admin
        .key(json!({"name": "manual", "tools": ["local-add"]}))
        .await;

    // Agent mode: the call is executed and the model called again.
    let (status, depth, answer) = chat(&gw, &auto, &[("x-tollgate-mcp", "agent")]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(depth.as_deref(), Some("1"));
    assert_eq!(tool_calls(&answer), Vec::<String>::new());
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    let deadline = Instant::now() + Duration::from_secs(10);
    let logged = loop {
        let (_, page) = admin
            .send(reqwest::Method::GET, "/api/tool-logs?tool=local-echo", None)
            .await;
        if let Some(first) = page["data"].as_array().and_then(|d| d.first()) {
            break first.clone();
        }
        assert!(Instant::now() < deadline, "no tool log: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(logged["arguments"], r#"{"text":"example"}"#);
    let parent = logged["parent_request"].as_str().expect("a parent request");
    common::logs_until(&gw, "", None, |page| {
        page["data"]
            .as_array()
            .is_some_and(|d| d.iter().any(|r| r["id"] == parent))
    })
    .await;

    // The depth limit: no round allowed, so the call goes to the client.
    let (status, depth, answer) = chat(
        &gw,
        &auto,
        &[
            ("x-tollgate-mcp", "agent"),
            ("x-tollgate-mcp-max-depth", "0"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(depth.as_deref(), Some("0"));
    assert_eq!(tool_calls(&answer), ["local-echo"]);

    // A tool that is not auto-executed goes back to the client unexecuted.
    let (_, depth, answer) = chat(&gw, &manual, &[("x-tollgate-mcp", "agent")]).await;
    assert_eq!(depth.as_deref(), Some("0"));
    assert_eq!(tool_calls(&answer), ["local-add"]);
    // Tools mode injects without executing.
    let (_, _, answer) = chat(&gw, &auto, &[("x-tollgate-mcp", "tools")]).await;
    assert_eq!(tool_calls(&answer), ["local-echo"]);
    let (_, page) = admin
        .send(reqwest::Method::GET, "/api/tool-logs", None)
        .await;
    let tools: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["tool"].as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        ["local-echo"],
        "only the agent round executed a tool"
    );

    let (status, _, _) = chat(&gw, &auto, &[("x-tollgate-mcp", "sometimes")]).await;
    assert_eq!(status, 400);
}

/// Agent mode on the native surfaces: the request is read into a chat
/// completion, the loop runs, and the answer comes back in the client's own
/// format; a streaming request is refused in that format.
#[tokio::test]
async fn agent_mode_answers_native_formats_in_their_own_shape() {
    let (_mock, gw, _admin, auto) = agent_setup().await;
    let send = |path: &str, body: Value| {
        reqwest::Client::new()
            .post(gw.url(path))
            .header("x-api-key", &auto)
            .header("x-tollgate-mcp", "agent")
            .json(&body)
            .send()
    };
    let depth = |r: &reqwest::Response| {
        r.headers()
            .get("x-tollgate-mcp-depth")
            .map(|v| v.to_str().unwrap().to_string())
    };

    let r = send(
        "/anthropic/v1/messages",
        json!({"model": "mock/mock-1", "max_tokens": 64,
               "messages": [{"role": "user", "content": "hello there"}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(depth(&r).as_deref(), Some("1"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "message", "{v}");
    assert_eq!(v["stop_reason"], "end_turn", "{v}");
    assert!(
        v["content"][0]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{v}"
    );

    let r = send(
        "/genai/v1beta/models/mock/mock-1:generateContent",
        json!({"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(depth(&r).as_deref(), Some("1"));
    let v: Value = r.json().await.unwrap();
    assert!(
        v["candidates"][0]["content"]["parts"][0]["text"].is_string(),
        "{v}"
    );

    let r = send(
        "/v1/responses",
        json!({"model": "mock/mock-1", "input": "hello there"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(depth(&r).as_deref(), Some("1"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "response", "{v}");

    let r = send(
        "/anthropic/v1/messages",
        json!({"model": "mock/mock-1", "max_tokens": 64, "stream": true,
               "messages": [{"role": "user", "content": "hello there"}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error", "Anthropic-shaped: {v}");
}

#[tokio::test]
async fn the_get_stream_announces_list_changes() {
    let gw = start_gateway(tempfile::tempdir().unwrap()).await;
    let admin = Admin::new(&gw);
    let key = admin.key(json!({"name": "k"})).await;
    let (_, sid, _) = post(&gw, &key, None, init_body()).await;
    let sid = sid.unwrap();
    let mut stream = reqwest::Client::new()
        .get(gw.url("/mcp"))
        .bearer_auth(&key)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    admin.put("/api/mcp/servers/local", stdio_server(&[])).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = String::new();
    let every = |seen: &str| {
        ["tools", "resources", "prompts"]
            .iter()
            .all(|k| seen.contains(&format!("notifications/{k}/list_changed")))
    };
    while !every(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, stream.chunk())
            .await
            .expect("a list_changed notification in time")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(
        seen.contains(
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n"
        ),
        "{seen}"
    );
    // Once the server is connected its tools are listed.
    admin.connected("local").await;
    let (_, _, list) = post(&gw, &key, Some(&sid), list_body()).await;
    assert_eq!(list["result"]["tools"].as_array().unwrap().len(), 5);

    // GET and DELETE need the session too.
    let r = reqwest::Client::new()
        .get(gw.url("/mcp"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = reqwest::Client::new()
        .delete(gw.url("/mcp"))
        .bearer_auth(&key)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

/// The text of one tool-log page's records of `query`, once there are `n`.
async fn tool_logs_until(admin: &Admin, query: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, page) = admin
            .send(
                reqwest::Method::GET,
                &format!("/api/tool-logs?{query}"),
                None,
            )
            .await;
        if let Some(d) = page["data"].as_array().filter(|d| d.len() >= n) {
            return d.clone();
        }
        assert!(Instant::now() < deadline, "tool logs {query}: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The execution id an `executeToolCode` record names.
fn execution_of(record: &Value) -> String {
    let args: Value = serde_json::from_str(record["arguments"].as_str().unwrap()).unwrap();
    args["execution"].as_str().unwrap().to_string()
}

const META_TOOLS: [&str; 4] = [
    "executeToolCode",
    "getToolDocs",
    "listToolFiles",
    "readToolFile",
];

/// A Code Mode server's tools are not listed; the four meta-tools are, and
/// through them a client reads stubs and docs and runs a script whose tool
/// calls are scoped, charged and logged like direct ones.
#[tokio::test]
async fn code_mode_servers_are_reached_through_the_meta_tools() {
    let http = start_sample("--http", free_addr()).await;
    let gw = start_gateway(tempfile::tempdir().unwrap()).await;
    let admin = Admin::new(&gw);
    admin
        .put(
            "/api/mcp/servers/files",
            json!({"transport": {"type": "http", "url": format!("http://{}/mcp", http.addr)},
                   "code_mode": true, "tool_prices": {"add": 700}}),
        )
        .await;
    admin.put("/api/mcp/servers/local", stdio_server(&[])).await;
    assert_eq!(admin.connected("files").await["code_mode"], true);
    admin.connected("local").await;
    let open = admin.key(json!({"name": "open"})).await;
    let echo_only = admin
        .key(json!({"name": "echo-only", "tools": ["files-echo", "local-*"]}))
        .await;
    let direct_only = admin
        .key(json!({"name": "direct-only", "tools": ["local-*"]}))
        .await;

    let c = client(&gw, &open).await;
    let mut expected = prefixed("local");
    expected.extend(META_TOOLS.iter().map(|t| t.to_string()));
    expected.sort();
    assert_eq!(tool_names(&c).await, expected);
    // Not callable directly either.
    let e = call(&c, "files-echo", json!({"text": "x"}))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown tool"), "{e}");

    let files = call(&c, "listToolFiles", json!({})).await.unwrap();
    assert_eq!(text(&files), "servers/files.pyi  (5 tools)\n");
    let stub = text(
        &call(&c, "readToolFile", json!({"fileName": "servers/files.pyi"}))
            .await
            .unwrap(),
    );
    assert!(
        stub.contains("def add(a: float, b: float) -> Any:"),
        "{stub}"
    );
    assert!(stub.contains("def echo(text: str) -> Any:"), "{stub}");
    let part = text(
        &call(
            &c,
            "readToolFile",
            json!({"fileName": "servers/files.pyi", "startLine": 1, "endLine": 2}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(part.lines().count(), 2, "{part}");
    assert!(stub.starts_with(&part));
    let missing = call(&c, "readToolFile", json!({"fileName": "servers/nope.pyi"}))
        .await
        .unwrap();
    assert_eq!(missing.is_error, Some(true));
    assert!(text(&missing).contains("listToolFiles"));
    let docs = text(
        &call(
            &c,
            "getToolDocs",
            json!({"server": "files", "tool": "write_file"}),
        )
        .await
        .unwrap(),
    );
    assert!(
        docs.contains("Args:") && docs.contains("content (str, required)"),
        "{docs}"
    );
    assert!(docs.contains("files.write_file("), "{docs}");

    let script = r#"
total = files.add(a = 2, b = 3)
files.write_file(path = "sum.txt", content = "sum " + total)
print(files.read_file(path = "sum.txt"))
result = {"total": total}
"#;
    let (failed, out) = run_script(&c, script).await;
    assert!(!failed, "{out}");
    assert_eq!(out, "sum 5\nresult = {\"total\":\"5\"}\n");

    // Errors say what, where, and give a hint.
    let (failed, said) = run_script(&c, "x = 1\ny = = 2\n").await;
    assert!(failed);
    assert!(said.starts_with("compile error:"), "{said}");
    assert!(
        said.contains("script.star:2") && said.contains("hint:"),
        "{said}"
    );
    let (_, said) = run_script(&c, "files.read_file(path = '../x')").await;
    assert!(
        said.starts_with("runtime error: files.read_file:"),
        "{said}"
    );
    assert!(said.contains("script.star:1"), "{said}");
    // Runaway scripts stop at their limits; the node goes on serving.
    let forever = "def f():\n    for i in range(1000000000):\n        pass\nf()\n";
    let huge = "s = 'xxxxxxxxxx' * 300000000\nresult = len(s)\n";
    for code in [forever, huge] {
        let (failed, said) = run_script(&c, code).await;
        assert!(failed && said.starts_with("limit error:"), "{said}");
    }
    let (_, again) = run_script(&c, "result = files.add(a = 1, b = 1)").await;
    assert_eq!(again, "result = \"2\"\n");

    // A key sees only its own Code Mode tools, in its files and its scripts.
    let scoped = client(&gw, &echo_only).await;
    let stub = text(
        &call(
            &scoped,
            "readToolFile",
            json!({"fileName": "servers/files.pyi"}),
        )
        .await
        .unwrap(),
    );
    assert!(
        stub.contains("def echo(") && !stub.contains("def add("),
        "{stub}"
    );
    let (failed, said) = run_script(&scoped, "result = files.add(a = 1, b = 2)").await;
    assert!(failed && said.contains("has no attribute `add`"), "{said}");
    assert!(said.contains("hint: the stub files"), "{said}");
    let by_name = r#"result = __call_tool("files", "add", {"a": 1, "b": 2})"#;
    let (failed, said) = run_script(&scoped, by_name).await;
    assert!(failed, "{said}");
    assert!(
        said.contains("no tool add on server files for this key"),
        "{said}"
    );
    // A key without Code Mode tools sees no meta-tools and cannot call them.
    let plain = client(&gw, &direct_only).await;
    assert_eq!(tool_names(&plain).await, prefixed("local"));
    assert!(call(&plain, "listToolFiles", json!({})).await.is_err());

    // The script's calls are logged with its execution as their parent and
    // charged like direct calls.
    let runs = tool_logs_until(&admin, "tool=executeToolCode&is_error=false", 2).await;
    let first = runs
        .iter()
        .find(|r| r["result"].as_str().unwrap().contains("sum 5"))
        .expect("the first script's run is logged");
    assert_eq!(first["server"], "codemode");
    let execution = execution_of(first);
    let calls = tool_logs_until(&admin, &format!("parent_request={execution}"), 3).await;
    let mut tools: Vec<&str> = calls.iter().map(|l| l["tool"].as_str().unwrap()).collect();
    tools.sort();
    assert_eq!(tools, ["files-add", "files-read_file", "files-write_file"]);
    let add = calls.iter().find(|l| l["tool"] == "files-add").unwrap();
    assert_eq!(add["cost_micros"], 700);
    assert_eq!(add["arguments"], r#"{"a":2,"b":3}"#);

    // Budgets and rate limits hold inside a script as outside: a budget of
    // 0.001 $ pays for one `add` (700 µ$); three calls a minute allow three.
    let budgeted = admin
        .key(json!({"name": "budgeted", "budgets": [{"limit_usd": "0.001", "period": "1d"}]}))
        .await;
    let b = client(&gw, &budgeted).await;
    let twice = "x = files.add(a = 1, b = 1)\nprint(x)\ny = files.add(a = 2, b = 2)\nprint(y)";
    let (failed, said) = run_script(&b, twice).await;
    assert!(failed);
    assert!(
        said.starts_with("runtime error: files.add: budget"),
        "{said}"
    );
    assert!(said.contains("script.star:3"), "{said}");
    let limited = admin
        // Four requests: the run itself is one, then three of its calls.
        .key(json!({"name": "limited", "rate_limits": [{"requests": 4, "window": "1m"}]}))
        .await;
    let l = client(&gw, &limited).await;
    let five = "for i in range(5):\n    print(files.echo(text = str(i)))";
    let (failed, said) = run_script(&l, five).await;
    assert!(failed);
    assert!(
        said.starts_with("runtime error: files.echo: rate limit"),
        "{said}"
    );
    // Three calls ran and were logged under the run. The run's own record is
    // queued after its calls' (one writer, in order): once it shows, so have they.
    let run = tool_log_where(&admin, "tool=executeToolCode&is_error=true", |r| {
        r["result"]
            .as_str()
            .is_some_and(|t| t.contains("files.echo: rate limit"))
    })
    .await;
    let (_, page) = admin
        .get(&format!(
            "/api/tool-logs?parent_request={}",
            execution_of(&run)
        ))
        .await;
    let echoes = page["data"].as_array().unwrap();
    assert_eq!(echoes.len(), 3, "{page}");
    assert!(echoes.iter().all(|l| l["tool"] == "files-echo"), "{page}");
}

/// The newest record of `query` that `pred` accepts, once there is one.
async fn tool_log_where(admin: &Admin, query: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, page) = admin.get(&format!("/api/tool-logs?{query}")).await;
        if let Some(r) = page["data"]
            .as_array()
            .and_then(|d| d.iter().find(|r| pred(r)))
        {
            return r.clone();
        }
        assert!(Instant::now() < deadline, "tool logs {query}: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs a script through `executeToolCode`: (failed, what came back).
async fn run_script(c: &Client, code: &str) -> (bool, String) {
    let r = call(c, "executeToolCode", json!({"code": code}))
        .await
        .unwrap();
    (r.is_error == Some(true), text(&r))
}

/// Code Mode in agent mode: the read-only meta-tools always run; a script
/// runs when every tool it can reach is auto-executable, and otherwise goes
/// back to the client.
#[tokio::test]
async fn agent_mode_runs_code_mode_scripts_that_reach_only_auto_tools() {
    let mock = common::start_mock(&[]).await;
    let config = format!(
        "{CONFIG}agent_max_depth = 3\n{}",
        common::mock_provider("mock", &mock, "")
    );
    let gw = Gateway::start_with_env(&config, tempfile::tempdir().unwrap(), &[]).await;
    let admin = Admin::new(&gw);
    let mut server = stdio_server(&[]);
    server["code_mode"] = json!(true);
    server["auto_execute"] = json!(["echo"]);
    admin.put("/api/mcp/servers/local", server).await;
    admin.connected("local").await;
    let key = admin.key(json!({"name": "agent"})).await;
    let ask = |content: String| {
        let gw = &gw;
        let key = key.clone();
        async move {
            let body =
                json!({"model": "mock/mock-1", "messages": [{"role": "user", "content": content}]});
            let r = reqwest::Client::new()
                .post(gw.url("/v1/chat/completions"))
                .bearer_auth(&key)
                .header("x-tollgate-mcp", "agent")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let depth = r.headers()["x-tollgate-mcp-depth"]
                .to_str()
                .unwrap()
                .to_string();
            (depth, r.json::<Value>().await.unwrap())
        }
    };
    let script_call = |code: &str| format!("call executeToolCode {}", json!({"code": code}));
    let last_tool_result = || async {
        let last: Value = reqwest::get(format!("http://{}/mock/last", mock.addr))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let messages = last["body"]["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        messages.last().unwrap()["content"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };

    // Offered: the meta-tools, not the server's own tools.
    let (depth, answer) = ask("call listToolFiles {}".into()).await;
    assert_eq!(depth, "1", "{answer}");
    assert_eq!(last_tool_result().await, "servers/local.pyi  (5 tools)\n");
    let (depth, _) = ask("call readToolFile {\"fileName\": \"servers/local.pyi\"}".into()).await;
    assert_eq!(depth, "1");
    assert!(last_tool_result().await.contains("def echo(text: str)"));

    // Reaches only `echo`, which the server auto-executes: run.
    let (depth, answer) = ask(script_call("result = local.echo(text = 'from a script')")).await;
    assert_eq!(depth, "1", "{answer}");
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(last_tool_result().await, "result = \"from a script\"\n");
    let runs = tool_logs_until(&admin, "tool=executeToolCode", 1).await;
    let parent = runs[0]["parent_request"]
        .as_str()
        .expect("the model call is the parent");
    assert!(!parent.is_empty());
    let nested = tool_logs_until(
        &admin,
        &format!("parent_request={}", execution_of(&runs[0])),
        1,
    )
    .await;
    assert_eq!(nested[0]["tool"], "local-echo");

    // Reaches `add` (not auto-executed), or everything: back to the client.
    for code in [
        "result = local.add(a = 1, b = 2)",
        "f = getattr(local, 'ad' + 'd')\nresult = f(a = 1, b = 2)",
        "s = local\nresult = s.echo(text = 'x')",
    ] {
        let (depth, answer) = ask(script_call(code)).await;
        assert_eq!(depth, "0", "{code}: {answer}");
        assert_eq!(tool_calls(&answer), ["executeToolCode"], "{code}");
    }
    // One more auto-executable script: its record is queued after any the
    // refused ones would have made, so once it shows, the count is final.
    let (depth, _) = ask(script_call("result = local.echo(text = 'last')")).await;
    assert_eq!(depth, "1");
    let runs = tool_logs_until(&admin, "tool=executeToolCode", 2).await;
    assert_eq!(runs.len(), 2, "only the auto-executable scripts ran");
    assert!(runs[0]["result"].as_str().unwrap().contains("last"));
}

/// Reported: three scripts passing a 300 MB string to a tool took the
/// gateway from 45 MiB to 1.6 GiB peak RSS (1.2 GiB stayed), because it read
/// a worker's line whole; and scripts had no concurrency cap. Now a line
/// past the output limit is refused while it is read, so the gateway's peak
/// RSS stays near where it was, and a key runs at most two scripts at once.
#[tokio::test]
async fn scripts_cannot_take_the_gateways_memory_or_its_workers() {
    // Workers big enough to build a 300 MB string and slow scripts to run
    // for a while: what is tested is the gateway's side.
    let gw = Gateway::start_with_env(
        CONFIG,
        tempfile::tempdir().unwrap(),
        &[
            ("TOLLGATE_MCP__CODE_MODE__MAX_HEAP_BYTES", "1500000000"),
            ("TOLLGATE_MCP__CODE_MODE__MAX_STEPS", "1000000000"),
        ],
    )
    .await;
    let admin = Admin::new(&gw);
    let mut server = stdio_server(&[]);
    server["code_mode"] = json!(true);
    admin.put("/api/mcp/servers/local", server).await;
    admin.connected("local").await;
    let key = admin.key(json!({"name": "k"})).await;
    let c = client(&gw, &key).await;
    let peak_before = common::status_kib(gw.proc.child.id(), "VmHWM:");
    let huge = "big = 'x' * 30000000\nprint(local.echo(text = big))";
    let t = Instant::now();
    for _ in 0..2 {
        let (failed, said) = run_script(&c, huge).await;
        assert!(failed, "{said}");
        assert!(said.starts_with("limit error"), "{said}");
    }
    let peak_after = common::status_kib(gw.proc.child.id(), "VmHWM:");
    println!(
        "gateway peak RSS {peak_before} KiB before, {peak_after} KiB after ({:?})",
        t.elapsed()
    );
    assert!(
        peak_after < peak_before + 32 * 1024,
        "peak RSS grew from {peak_before} KiB to {peak_after} KiB"
    );
    // Two scripts of one key at a time: of four started together, two run
    // and two are refused; then a place is free again.
    let slow = "x = 0\nfor i in range(300000):\n    x += i\nprint(x)";
    let mut runs = Vec::new();
    for _ in 0..4 {
        let c = client(&gw, &key).await;
        runs.push(tokio::spawn(async move { run_script(&c, slow).await }));
    }
    let mut refused = 0;
    for r in runs {
        let (failed, said) = r.await.unwrap();
        if failed && said.contains("max_workers_per_key") {
            assert!(said.starts_with("limit error"), "{said}");
            refused += 1;
        }
    }
    assert!(refused >= 1, "a third script of the key was refused");
    let (failed, said) = run_script(&c, "print(1)").await;
    assert!(!failed, "a place is free again: {said}");
}

/// `GET /mcp` streams stay open for as long as the client wants: a key may
/// hold at most `mcp.max_streams_per_key` of them (4 by default), and a
/// place is given back when a stream's client goes away.
#[tokio::test]
async fn a_key_holds_a_bounded_number_of_event_streams() {
    let gw = start_gateway(tempfile::tempdir().unwrap()).await;
    let admin = Admin::new(&gw);
    let key = admin.key(json!({"name": "k"})).await;
    let (_, sid, _) = post(&gw, &key, None, init_body()).await;
    let sid = sid.unwrap();
    let open = || {
        reqwest::Client::new()
            .get(gw.url("/mcp"))
            .bearer_auth(&key)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &sid)
            .send()
    };
    let mut streams = Vec::new();
    for _ in 0..4 {
        let r = open().await.unwrap();
        assert_eq!(r.status(), 200);
        streams.push(r);
    }
    assert_eq!(
        open().await.unwrap().status(),
        429,
        "a fifth stream of the key"
    );
    let other = admin.key(json!({"name": "other"})).await;
    let (_, other_sid, _) = post(&gw, &other, None, init_body()).await;
    let r = reqwest::Client::new()
        .get(gw.url("/mcp"))
        .bearer_auth(&other)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", other_sid.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "another key has places of its own");
    drop(streams.pop());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = open().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the place never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
