//! The Code Mode sandbox with the real worker process: scripts that call
//! tools, and scripts that try to take the node down, each stopped with its
//! own clear error while the test process (standing in for the node) goes on.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use tollgate::codemode::sandbox::{Finished, Job, Limits, ScriptError, run};

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

fn job(script: &str, limits: Limits) -> Job {
    Job {
        script: script.to_string(),
        bindings: BTreeMap::from([
            ("math".to_string(), vec!["add".to_string()]),
            ("files".to_string(), vec!["read-file".to_string()]),
        ]),
        limits,
    }
}

/// Runs `script` with tools `math.add` and `files.read-file`; the gateway side
/// also refuses anything else, as the real one does.
async fn go(script: &str, limits: Limits) -> Result<Finished, ScriptError> {
    run(
        Path::new(BIN),
        &job(script, limits),
        |server, tool, args| async move {
            match (server.as_str(), tool.as_str()) {
                ("math", "add") => Ok(json!(
                    args["a"].as_i64().unwrap_or(0) + args["b"].as_i64().unwrap_or(0)
                )),
                ("files", "read-file") => Ok(
                    json!({"text": format!("contents of {}", args["path"].as_str().unwrap_or(""))}),
                ),
                _ => Err(format!(
                    "tool '{server}-{tool}' is not available to this key"
                )),
            }
        },
    )
    .await
}

fn small() -> Limits {
    Limits {
        wall_ms: 10_000,
        ..Limits::default()
    }
}

#[tokio::test]
async fn scripts_call_tools_print_and_return_a_result() {
    let out = go(
        r#"
total = 0
for i in range(5):
    total = total + math.add(a = i, b = 10)
doc = files.read_file(path = "notes.txt")
print("total", total)
result = {"total": total, "doc": doc["text"]}
"#,
        small(),
    )
    .await
    .unwrap();
    assert_eq!(out.output, "total 60\n");
    assert_eq!(
        out.result,
        json!({"total": 60, "doc": "contents of notes.txt"})
    );
}

#[tokio::test]
async fn every_escape_is_stopped_with_its_own_error() {
    let cases: Vec<(&str, &str, Limits, &str)> = vec![
        (
            "endless loop",
            "def f():\n    for i in range(1000000000):\n        pass\nf()\n",
            small(),
            "limit",
        ),
        (
            "deep recursion",
            "def f(n):\n    return f(n + 1)\nf(0)\n",
            small(),
            "limit",
        ),
        (
            "huge list",
            "def f():\n    xs = []\n    for i in range(100000000):\n        xs.append('item-%d' % i)\nf()\n",
            small(),
            "limit",
        ),
        (
            "one huge string in a single builtin",
            "s = 'xxxxxxxxxx' * 300000000\nresult = len(s)\n",
            small(),
            "limit",
        ),
        (
            "megabytes of print",
            "for i in range(100000):\n    print('line %d of much output' % i)\n",
            small(),
            "limit",
        ),
        (
            "ten thousand tool calls",
            "for i in range(10000):\n    math.add(a = 1, b = 2)\n",
            small(),
            "limit",
        ),
        (
            "a tool outside the key's scope",
            "shell.run(cmd = 'rm -rf /')\n",
            small(),
            "runtime",
        ),
        (
            "reaching a tool through getattr",
            "getattr(math, 'sub')(a = 1, b = 2)\n",
            small(),
            "runtime",
        ),
        ("load", "load('x.star', 'y')\n", small(), "compile"),
        ("a syntax error", "x = (1 +\n", small(), "compile"),
        (
            "a wall-clock limit",
            "def f():\n    for i in range(1000000000):\n        pass\nf()\n",
            Limits {
                max_steps: u64::MAX / 2,
                wall_ms: 1_500,
                ..small()
            },
            "limit",
        ),
    ];
    for (what, script, limits, kind) in cases {
        let e = go(script, limits).await.expect_err(what);
        println!("{what}: {e}");
        assert_eq!(e.kind, kind, "{what}: {e}");
        assert!(!e.message.is_empty(), "{what}");
    }
    // The tool-call limit and the scope refusal say so.
    let e = go(
        "for i in range(10000):\n    math.add(a = 1, b = 2)\n",
        small(),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("tool call limit"), "{e}");
    let e = go("getattr(math, 'sub')\n", small()).await.unwrap_err();
    assert!(e.message.contains("sub"), "{e}");
    // And after all that the sandbox still works.
    let ok = go("result = math.add(a = 2, b = 3)\n", small())
        .await
        .unwrap();
    assert_eq!(ok.result, Value::from(5));
}

/// The worker's confinement, checked in the real binary: once confined it
/// cannot open files, make sockets, start programs or threads, and runs as
/// `nobody` when started as root; its stdout still works.
#[test]
fn a_confined_worker_cannot_reach_outside_its_process() {
    let out = std::process::Command::new(BIN)
        .args(["codemode-worker", "--check-confinement"])
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let report: Value = serde_json::from_str(text.trim()).unwrap();
    println!("{report}");
    assert_eq!(report["write_stdout"], "ok", "{report}");
    if !cfg!(target_os = "linux") {
        return;
    }
    if report["filter_available"] == true {
        assert_eq!(report["seccomp"], "installed", "{report}");
        let refused = "Operation not permitted (os error 1)";
        for what in ["open", "socket", "spawn", "thread"] {
            assert_eq!(report[what], refused, "{what}: {report}");
        }
    }
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } == 0 {
        assert_eq!(report["uid"], 65534, "{report}");
    }
}

/// Where the node can make a cgroup (root, a writable hierarchy), each
/// worker gets one bounding its resident memory: a script that touches
/// 200 MB — well inside its 2 GiB address space — is stopped at a 64 MiB
/// bound, and finishes under a looser one.
#[tokio::test]
async fn a_worker_is_held_to_its_resident_memory_by_its_own_cgroup() {
    use tollgate::codemode::cgroup::WorkerGroup;
    let mut probe = std::process::Command::new("sleep")
        .arg("5")
        .spawn()
        .unwrap();
    let group = WorkerGroup::join(probe.id(), 64 << 20);
    let available = group.is_some();
    let _ = probe.kill();
    let _ = probe.wait();
    drop(group);
    if !available {
        println!("no cgroup can be made here: the bound is not checked");
        return;
    }
    let script = "s = 'x' * 200000000\nresult = len(s)\n";
    // Starlark's own heap bound raised out of the way: only the cgroup
    // can stop the script.
    let patient = Limits {
        wall_ms: 60_000,
        max_heap_bytes: 1 << 30,
        ..small()
    };
    let tight = Limits {
        resident_bytes: 64 << 20,
        ..patient.clone()
    };
    let e = go(script, tight).await.expect_err("held to 64 MiB");
    println!("at 64 MiB: {e}");
    assert_eq!(e.kind, "limit", "{e}");
    assert!(e.message.contains("stopped"), "{e}");
    let loose = Limits {
        resident_bytes: 1 << 30,
        ..patient
    };
    let started = std::time::Instant::now();
    let done = go(script, loose).await.expect("finishes under 1 GiB");
    println!("at 1 GiB: finished in {:?}", started.elapsed());
    assert_eq!(done.result, json!(200_000_000));
}
