//! `/mcp` in both protocol eras, end to end: 2026-07-28 stateless requests
//! beside sealed sessions, on any node of a cluster; resources and prompts
//! aggregated from upstream servers under key scopes; progress relayed and
//! cancellation passed on; upstream servers spoken to in their own era.

mod common;

use std::time::{Duration, Instant};

use common::mcp::*;
use common::sse_data;
use rmcp::model::{
    CallToolRequestParams, GetPromptRequestParams, ProtocolVersion, ReadResourceRequestParams,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt};
use serde_json::{Value, json};

/// Two nodes of one cluster, each connected to the stdio sample server
/// `local` (with `extra` arguments).
async fn two_nodes(extra: &[&str]) -> (common::Gateway, common::Gateway, Admin) {
    let gw1 = start_gateway(tempfile::tempdir().unwrap()).await;
    let admin = Admin::new(&gw1);
    let (_, cluster) = admin.get("/api/cluster").await;
    let seed = cluster["quic"].as_str().unwrap().to_string();
    let gw2 = start_node(tempfile::tempdir().unwrap(), SECRET, Some(&seed)).await;
    admin
        .put("/api/mcp/servers/local", stdio_server(extra))
        .await;
    admin.connected("local").await;
    Admin::new(&gw2).connected("local").await;
    (gw1, gw2, admin)
}

/// Waits until a key written on one node is known on `gw`.
async fn known_on(gw: &common::Gateway, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while stateless(gw, key, "tools/list", Value::Null).await.0 != 200 {
        assert!(Instant::now() < deadline, "the key never reached the node");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list["result"][field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {list}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn stateless_requests_are_served_on_any_node_beside_sessions() {
    // Each node runs its own sample process; they share one directory, as
    // the nodes of a real deployment would share what a server serves.
    let dir = tempfile::tempdir().unwrap();
    let (gw1, gw2, admin) = two_nodes(&["--dir", dir.path().to_str().unwrap()]).await;
    let all = admin.key(json!({"name": "all"})).await;
    let echo_only = admin
        .key(json!({"name": "echo", "tools": ["local-echo"]}))
        .await;
    known_on(&gw2, &all).await;
    known_on(&gw2, &echo_only).await;

    // Discovery: both eras, the gateway's own name, no session.
    let (status, d) = stateless(&gw2, &all, "server/discover", Value::Null).await;
    assert_eq!(status, 200, "{d}");
    let versions = d["result"]["supportedVersions"].as_array().unwrap();
    assert!(versions.contains(&json!("2025-06-18")) && versions.contains(&json!("2026-07-28")));
    assert_eq!(d["result"]["resultType"], "complete");
    assert_eq!(
        d["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "tollgate"
    );
    assert!(d["result"]["capabilities"]["resources"].is_object());

    // Lists carry their cache hints, scoped to the key.
    let (status, tools) = stateless(&gw1, &all, "tools/list", Value::Null).await;
    assert_eq!(status, 200, "{tools}");
    assert_eq!(
        names(&tools, "tools"),
        prefixed("local"),
        "every tool of the sample server"
    );
    assert_eq!(tools["result"]["ttlMs"], 60_000);
    assert_eq!(tools["result"]["cacheScope"], "private");
    assert_eq!(tools["result"]["resultType"], "complete");
    let (_, called) = stateless(
        &gw2,
        &all,
        "tools/call",
        json!({"name": "local-write_file", "arguments": {"path": "note.txt", "content": "from a tool"}}),
    )
    .await;
    assert_eq!(called["result"]["resultType"], "complete", "{called}");
    assert_eq!(called["result"]["isError"], false);

    // Resources, templates and prompts, named server-name, on either node.
    let (_, resources) = stateless(&gw1, &all, "resources/list", Value::Null).await;
    assert_eq!(names(&resources, "resources"), ["local-readme"]);
    assert_eq!(
        resources["result"]["resources"][0]["uri"],
        "sample://readme"
    );
    let (_, templates) = stateless(&gw2, &all, "resources/templates/list", Value::Null).await;
    assert_eq!(names(&templates, "resourceTemplates"), ["local-file"]);
    let (_, read) = stateless(
        &gw2,
        &all,
        "resources/read",
        json!({"uri": "sample://readme"}),
    )
    .await;
    assert_eq!(
        read["result"]["contents"][0]["text"], "# The sample MCP server\n",
        "{read}"
    );
    // A URI no server lists, read through the template that matches it.
    let (_, read) = stateless(
        &gw1,
        &all,
        "resources/read",
        json!({"uri": "sample://files/note.txt"}),
    )
    .await;
    assert_eq!(
        read["result"]["contents"][0]["text"], "from a tool",
        "{read}"
    );
    let (_, prompts) = stateless(&gw1, &all, "prompts/list", Value::Null).await;
    assert_eq!(names(&prompts, "prompts"), ["local-greet"]);
    let (_, got) = stateless(
        &gw2,
        &all,
        "prompts/get",
        json!({"name": "local-greet", "arguments": {"name": "Ada"}}),
    )
    .await;
    assert_eq!(
        got["result"]["messages"][0]["content"]["text"], "Say hello to Ada.",
        "{got}"
    );

    // A scoped key sees only its tool, and nothing else exists for it.
    let (_, tools) = stateless(&gw2, &echo_only, "tools/list", Value::Null).await;
    assert_eq!(names(&tools, "tools"), ["local-echo"]);
    let (_, resources) = stateless(&gw2, &echo_only, "resources/list", Value::Null).await;
    assert_eq!(names(&resources, "resources"), Vec::<String>::new());
    let (status, read) = stateless(
        &gw1,
        &echo_only,
        "resources/read",
        json!({"uri": "sample://readme"}),
    )
    .await;
    assert_eq!(
        (status, &read["error"]["code"]),
        (200, &json!(-32002)),
        "{read}"
    );
    let (status, got) = stateless(
        &gw1,
        &echo_only,
        "prompts/get",
        json!({"name": "local-greet", "arguments": {"name": "Ada"}}),
    )
    .await;
    assert_eq!(
        (status, &got["error"]["code"]),
        (400, &json!(-32602)),
        "{got}"
    );

    // What the 2026-07-28 checks refuse, with the status its code maps to.
    let url = gw1.url("/mcp");
    let no_meta = json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}});
    let (status, _, body) = stateless_raw(&url, &all, "tools/list", no_meta, &[]).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("-32602") && body.contains("clientCapabilities"),
        "{body}"
    );
    let (status, _, body) = stateless_raw(
        &url,
        &all,
        "tools/call",
        json!({"name": "local-echo", "arguments": {"text": "x"}}),
        &[("mcp-name", "local-add")],
    )
    .await;
    assert_eq!(status, 400, "a second, different Mcp-Name: {body}");
    assert!(body.contains("-32020"), "{body}");
    let future = json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2099-01-01",
                                  "io.modelcontextprotocol/clientCapabilities": {}}});
    let r = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&all)
        .header("mcp-protocol-version", "2099-01-01")
        .header("mcp-method", "tools/list")
        .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": future}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32022);
    assert_eq!(v["error"]["data"]["supported"], json!(["2026-07-28"]));
    assert_eq!(v["id"], 9);
    let (status, ping) = stateless(&gw1, &all, "ping", Value::Null).await;
    assert_eq!(
        (status, &ping["error"]["code"]),
        (404, &json!(-32601)),
        "2026-07-28 has no ping"
    );
    let note = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&all)
        .header("mcp-protocol-version", "2026-07-28")
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(note.status(), 202);
    // That era has no event stream and no session to end.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let r = reqwest::Client::new()
            .request(method.clone(), &url)
            .bearer_auth(&all)
            .header("mcp-protocol-version", "2026-07-28")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method}");
        assert_eq!(r.headers()["allow"], "POST");
    }
    // Without a key, nothing.
    let r = reqwest::Client::new()
        .post(&url)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": stateless_meta()}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The session era, beside it: initialize on one node, go on on the other.
    let (status, sid, init) = post(&gw1, &all, None, init_body()).await;
    assert_eq!(status, 200, "{init}");
    assert!(init["result"]["capabilities"]["prompts"]["listChanged"] == true);
    let sid = sid.unwrap();
    let (_, _, listed) = post(
        &gw2,
        &all,
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 2, "method": "resources/list"}),
    )
    .await;
    assert_eq!(names(&listed, "resources"), ["local-readme"]);
    assert!(
        listed["result"].get("ttlMs").is_none() && listed["result"].get("resultType").is_none()
    );
    let (_, _, got) = post(
        &gw2,
        &all,
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 3, "method": "prompts/get",
               "params": {"name": "local-greet", "arguments": {"name": "Bo"}}}),
    )
    .await;
    assert_eq!(
        got["result"]["messages"][0]["content"]["text"],
        "Say hello to Bo."
    );
    assert!(got["result"].get("resultType").is_none(), "{got}");
    let (_, _, pong) = post(
        &gw1,
        &all,
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 4, "method": "ping"}),
    )
    .await;
    assert_eq!(pong["result"], json!({}));

    // Reads and prompts are logged like tool calls, by method.
    let admin2 = Admin::new(&gw2);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, logs) = admin2.get("/api/tool-logs?method=prompts/get").await;
        let data = logs["data"].as_array().cloned().unwrap_or_default();
        if data.len() >= 2 {
            assert!(
                data.iter()
                    .all(|r| r["tool"] == "local-greet" && r["server"] == "local")
            );
            assert!(data.iter().any(|r| r["is_error"] == false));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prompts/get never logged: {logs}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, logs) = admin2.get("/api/tool-logs?method=resources/read").await;
    let data = logs["data"].as_array().unwrap();
    assert!(
        data.iter().any(|r| r["tool"] == "local-readme"
            && r["arguments"].as_str().unwrap().contains("sample://readme")),
        "{logs}"
    );
}

/// The JSON-RPC messages of an event-stream answer.
fn messages(body: &str) -> Vec<Value> {
    sse_data(body)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// Checks a relayed call's frames: progress under `token` only, counting up
/// within 1..=n (a notification that races the result may be dropped, as
/// rmcp hands each to a task of its own; none may follow the result), then
/// the result, last. Returns the result.
fn progress_then_result(msgs: &[Value], token: &Value, n: u64) -> Value {
    let (last, progress) = msgs.split_last().expect("frames");
    assert!(
        !progress.is_empty() && progress.len() as u64 <= n,
        "{msgs:?}"
    );
    let mut before = 0.0;
    for m in progress {
        assert_eq!(m["method"], "notifications/progress", "{msgs:?}");
        assert_eq!(&m["params"]["progressToken"], token, "{msgs:?}");
        assert_eq!(m["params"]["total"], n as f64, "{msgs:?}");
        let done = m["params"]["progress"].as_f64().unwrap();
        assert!(done > before && done <= n as f64, "{msgs:?}");
        before = done;
    }
    assert!(
        last.get("method").is_none(),
        "the result comes last: {msgs:?}"
    );
    last.clone()
}

#[tokio::test]
async fn progress_is_relayed_and_a_caller_that_goes_away_cancels_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap().to_string();
    let (gw1, gw2, admin) = two_nodes(&["--progress-tool", "--dir", &dir_arg]).await;
    let key = admin.key(json!({"name": "k"})).await;
    known_on(&gw2, &key).await;

    // Stateless: the progress under the client's token, then the result.
    let mut meta = stateless_meta();
    meta["progressToken"] = json!("p-1");
    let (status, ctype, body) = stateless_raw(
        &gw2.url("/mcp"),
        &key,
        "tools/call",
        json!({"name": "local-count", "arguments": {"n": 3, "delay_ms": 20}, "_meta": meta}),
        &[],
    )
    .await;
    assert_eq!(
        (status, ctype.as_str()),
        (200, "text/event-stream"),
        "{body}"
    );
    let result = progress_then_result(&messages(&body), &json!("p-1"), 3);
    assert_eq!(result["id"], 1);
    assert_eq!(result["result"]["content"][0]["text"], "counted to 3");
    assert_eq!(result["result"]["resultType"], "complete");

    // A session, with a numeric token.
    let (_, sid, _) = post(&gw1, &key, None, init_body()).await;
    let r = reqwest::Client::new()
        .post(gw1.url("/mcp"))
        .bearer_auth(&key)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", sid.unwrap())
        .json(&json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                      "params": {"name": "local-count", "arguments": {"n": 2, "delay_ms": 20},
                                 "_meta": {"progressToken": 7}}}))
        .send()
        .await
        .unwrap();
    let result = progress_then_result(&messages(&r.text().await.unwrap()), &json!(7), 2);
    assert_eq!(result["result"]["content"][0]["text"], "counted to 2");
    assert!(result["result"].get("resultType").is_none());

    // Two servers' calls at once: each stream carries its own server's
    // progress only (their connections number progress tokens alike).
    admin
        .put("/api/mcp/servers/other", stdio_server(&["--progress-tool"]))
        .await;
    admin.connected("other").await;
    let count = |server: &'static str, n: u64| {
        let (url, key) = (gw1.url("/mcp"), key.clone());
        async move {
            let mut meta = stateless_meta();
            meta["progressToken"] = json!(server);
            let params = json!({"name": format!("{server}-count"),
                                "arguments": {"n": n, "delay_ms": 15}, "_meta": meta});
            let (_, _, body) = stateless_raw(&url, &key, "tools/call", params, &[]).await;
            messages(&body)
        }
    };
    let (a, b) = tokio::join!(count("local", 4), count("other", 7));
    for (msgs, server, n) in [(a, "local", 4), (b, "other", 7)] {
        let result = progress_then_result(&msgs, &json!(server), n);
        assert_eq!(
            result["result"]["content"][0]["text"],
            format!("counted to {n}")
        );
    }

    // A long count whose caller hangs up after the first step: the upstream
    // server is told, and stops.
    let mut meta = stateless_meta();
    meta["progressToken"] = json!("p-2");
    let params =
        json!({"name": "local-count", "arguments": {"n": 1000, "delay_ms": 50}, "_meta": meta});
    let mut r = reqwest::Client::new()
        .post(gw1.url("/mcp"))
        .bearer_auth(&key)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "local-count")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params}))
        .send()
        .await
        .unwrap();
    let first = r.chunk().await.unwrap().expect("a first progress event");
    assert!(String::from_utf8_lossy(&first).contains("notifications/progress"));
    drop(r);
    let marker = dir.path().join("cancelled-count");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !marker.exists() {
        assert!(
            Instant::now() < deadline,
            "the upstream never heard of the cancellation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let step: u64 = std::fs::read_to_string(&marker).unwrap().parse().unwrap();
    assert!(step < 1000, "cancelled at step {step}");
}

#[tokio::test]
async fn upstream_servers_are_spoken_to_in_their_own_era() {
    let gw = start_gateway(tempfile::tempdir().unwrap()).await;
    let admin = Admin::new(&gw);
    admin
        .put("/api/mcp/servers/modern", stdio_server(&[]))
        .await;
    admin
        .put("/api/mcp/servers/old", stdio_server(&["--legacy-only"]))
        .await;
    let http = start_sample("--http", free_addr()).await;
    admin
        .put(
            "/api/mcp/servers/web",
            json!({"transport": {"type": "http", "url": http.url("/mcp")}}),
        )
        .await;
    let modern = admin.connected("modern").await;
    let old = admin.connected("old").await;
    let web = admin.connected("web").await;
    assert_eq!(
        modern["status"]["protocol_version"], "2026-07-28",
        "{modern}"
    );
    assert_eq!(web["status"]["protocol_version"], "2026-07-28", "{web}");
    let old_version = old["status"]["protocol_version"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"].contains(&old_version.as_str()),
        "{old}"
    );
    assert_eq!(old["status"]["resources"], 1);
    assert_eq!(modern["status"]["prompts"], 1);
    let key = admin.key(json!({"name": "k"})).await;
    for server in ["modern", "old", "web"] {
        let (_, r) = stateless(
            &gw,
            &key,
            "tools/call",
            json!({"name": format!("{server}-add"), "arguments": {"a": 2, "b": 3}}),
        )
        .await;
        assert_eq!(r["result"]["content"][0]["text"], "5", "{server}: {r}");
        let (_, read) = stateless(
            &gw,
            &key,
            "resources/read",
            json!({"uri": "sample://readme"}),
        )
        .await;
        assert!(read["result"]["contents"].is_array(), "{read}");
    }
    // Liveness checks in each era keep every connection up (ping_interval
    // is 200 ms here): ten rounds later, still the first connection.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for server in ["modern", "old", "web"] {
        let (_, v) = admin.get(&format!("/api/mcp/servers/{server}")).await;
        assert_eq!(v["status"]["state"], "connected", "{v}");
        assert_eq!(v["status"]["connects"], 1, "{server} reconnected: {v}");
    }
    // Listed once per name even though three servers offer the same URI.
    let (_, resources) = stateless(&gw, &key, "resources/list", Value::Null).await;
    assert_eq!(
        names(&resources, "resources"),
        ["modern-readme", "old-readme", "web-readme"]
    );
}

/// rmcp as the client, in each era, through a load balancer that sends each
/// request to the other node.
#[tokio::test]
async fn rmcp_clients_of_both_eras_work_through_two_nodes_without_stickiness() {
    let (gw1, gw2, admin) = two_nodes(&[]).await;
    let key = admin
        .key(json!({"name": "k", "tools": ["local-echo", "local-greet", "local-readme", "local-file"]}))
        .await;
    known_on(&gw2, &key).await;
    let lb = alternating_proxy(vec![gw1.url(""), gw2.url("")]).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    for lifecycle in [
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
        ClientLifecycleMode::Initialize,
    ] {
        let label = format!("{lifecycle:?}");
        let mut config = StreamableHttpClientTransportConfig::with_uri(format!("http://{lb}/mcp"));
        config.auth_header = Some(key.clone());
        let c = ()
            .serve_with_lifecycle(
                StreamableHttpClientTransport::from_config(config),
                lifecycle,
            )
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let version = c.peer_info().unwrap().protocol_version.clone();
        assert_eq!(
            version.has_initialize(),
            label.contains("Initialize"),
            "{label}: {version}"
        );
        for _ in 0..2 {
            let tools = c.list_all_tools().await.unwrap();
            let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
            assert_eq!(names, ["local-echo"], "{label}");
            let mut args = serde_json::Map::new();
            args.insert("text".into(), json!("hop"));
            let r = c
                .call_tool(CallToolRequestParams::new("local-echo").with_arguments(args))
                .await
                .unwrap();
            assert_eq!(text(&r), "hop", "{label}");
            let refused = c
                .call_tool(CallToolRequestParams::new("local-add"))
                .await
                .unwrap_err();
            assert!(
                refused.to_string().contains("unknown tool"),
                "{label}: {refused}"
            );
        }
        let resources = c.list_all_resources().await.unwrap();
        assert_eq!(resources[0].name, "local-readme", "{label}");
        let templates = c.list_all_resource_templates().await.unwrap();
        assert_eq!(templates[0].name, "local-file", "{label}");
        let read = c
            .read_resource(ReadResourceRequestParams::new("sample://readme"))
            .await
            .unwrap();
        assert_eq!(read.contents.len(), 1, "{label}");
        let prompts = c.list_all_prompts().await.unwrap();
        assert_eq!(prompts[0].name, "local-greet", "{label}");
        let mut args = serde_json::Map::new();
        args.insert("name".into(), json!("Cy"));
        let mut p = GetPromptRequestParams::new("local-greet");
        p.arguments = Some(args);
        let got = c.get_prompt(p).await.unwrap();
        assert_eq!(got.messages.len(), 1, "{label}");
        c.cancel().await.unwrap();
    }
}

/// 2026-07-28's `subscriptions/listen`: acknowledged with what it will send,
/// then each asked-for kind of list change, stamped with the subscription.
#[tokio::test]
async fn a_listen_stream_announces_the_changes_it_was_asked_for() {
    let gw = start_gateway(tempfile::tempdir().unwrap()).await;
    let admin = Admin::new(&gw);
    let key = admin.key(json!({"name": "k"})).await;
    let params = json!({"notifications": {"toolsListChanged": true, "promptsListChanged": true,
                                          "resourceSubscriptions": ["sample://readme"]},
                        "_meta": stateless_meta()});
    let mut stream = reqwest::Client::new()
        .post(gw.url("/mcp"))
        .bearer_auth(&key)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .json(&json!({"jsonrpc": "2.0", "id": "l-1", "method": "subscriptions/listen", "params": params}))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut read_until = async |seen: &mut String, what: &str| {
        while !seen.contains(what) {
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, stream.chunk())
                .await
                .unwrap_or_else(|_| panic!("no {what} in time: {seen}"))
                .unwrap()
                .expect("the stream stays open");
            seen.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    };
    read_until(&mut seen, "\n\n").await;
    let ack: Value = serde_json::from_str(&sse_data(&seen)[0]).unwrap();
    assert_eq!(
        ack,
        json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
               "params": {"notifications": {"toolsListChanged": true, "promptsListChanged": true},
                          "_meta": {"io.modelcontextprotocol/subscriptionId": "l-1"}}})
    );
    admin.put("/api/mcp/servers/local", stdio_server(&[])).await;
    read_until(&mut seen, "notifications/tools/list_changed").await;
    read_until(&mut seen, "notifications/prompts/list_changed").await;
    let frames: Vec<Value> = sse_data(&seen)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        frames[1..]
            .iter()
            .all(|f| f["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "l-1"),
        "{seen}"
    );
    assert!(
        !seen.contains("resources/list_changed"),
        "resources were not asked for: {seen}"
    );

    // Only the stateless era has it; a session-era client is told so.
    let (_, sid, _) = post(&gw, &key, None, init_body()).await;
    let (_, _, r) = post(
        &gw,
        &key,
        sid.as_deref(),
        json!({"jsonrpc": "2.0", "id": 3, "method": "subscriptions/listen", "params": {"notifications": {}}}),
    )
    .await;
    assert_eq!(r["error"]["code"], -32601, "{r}");
}
