//! The Code Mode sandbox: model-written Starlark runs in a worker process.
//!
//! Starlark's own limits (steps, heap, call stack) catch most runaway
//! scripts, but not all: its heap limit is checked only every 1,000 steps and
//! a single builtin call cannot be interrupted (`"x" * 200_000_000` allocates
//! 200 MB before anything stops it). So every script runs in a fresh process
//! (`tollgate codemode-worker`) that limits itself (address space, CPU time)
//! before it reads the script, and that the gateway kills at its wall-clock
//! deadline. A script can take its own worker down; never the node.
//!
//! Protocol, one JSON object per line:
//! - gateway → worker: [`Job`] (the script, the tool bindings, the limits);
//! - worker → gateway: `{"call": {"server", "tool", "args"}}` for every tool
//!   call, answered with `{"ok": value}` or `{"err": "message"}`;
//! - worker → gateway, last: `{"done": {"output", "result"}}` or
//!   `{"error": {"kind", "message"}}`.
//!
//! Tools are bound as `server.tool(arg=value)` (names made Python
//! identifiers, see [`super::stubs::py_name`]); there is no `load`, no file,
//! network or clock access, and each script gets a fresh scope. Every call is
//! checked again by the gateway ([`run`]'s `call` function), whatever the
//! script did to reach it.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// How the gateway refuses a script's call past `max_tool_calls`.
const TOOL_CALL_LIMIT: &str = "tool call limit reached";

/// Limits of one script.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Limits {
    /// Starlark evaluation steps.
    pub max_steps: u64,
    /// Starlark heap, bytes.
    pub max_heap_bytes: usize,
    pub max_call_depth: usize,
    /// Tool calls per script.
    pub max_tool_calls: usize,
    /// `print` output plus the result, bytes.
    pub max_output_bytes: usize,
    /// Wall-clock time, from start to the last line.
    pub wall_ms: u64,
    /// The worker's address space, bytes (the hard stop for what Starlark's
    /// own heap check misses).
    pub memory_bytes: u64,
    /// The worker's resident memory, bytes, where it gets a cgroup of its
    /// own ([`super::cgroup`]).
    #[serde(default = "default_resident_bytes")]
    pub resident_bytes: u64,
}

fn default_resident_bytes() -> u64 {
    512 << 20
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_steps: 1_000_000,
            max_heap_bytes: 64 << 20,
            max_call_depth: 100,
            max_tool_calls: 200,
            max_output_bytes: 64 << 10,
            wall_ms: 30_000,
            // Virtual, not resident: the allocator reserves address space in
            // large arenas, and a worker capped at 1 GiB cannot even start.
            memory_bytes: 2 << 30,
            resident_bytes: default_resident_bytes(),
        }
    }
}

/// What the worker is asked to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub script: String,
    /// Tools the script may call, by server.
    pub bindings: BTreeMap<String, Vec<String>>,
    pub limits: Limits,
}

/// A finished script: what it printed and the value of its top-level `result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    pub output: String,
    pub result: Value,
}

/// Why a script did not finish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ScriptError {
    /// `compile`, `runtime`, `limit` or `sandbox`.
    pub kind: String,
    pub message: String,
}

fn script_error(kind: &str, message: impl Into<String>) -> ScriptError {
    ScriptError {
        kind: kind.into(),
        message: message.into(),
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WorkerLine {
    Call {
        server: String,
        tool: String,
        args: Value,
    },
    Done(Finished),
    Error(ScriptError),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Ok(Value),
    Err(String),
}

/// Runs `job` in a worker process started from `worker` (the `tollgate`
/// binary); `call` executes each tool call the script makes (and may refuse
/// it). Killed at the job's wall-clock deadline.
pub async fn run<F, Fut>(worker: &Path, job: &Job, call: F) -> Result<Finished, ScriptError>
where
    F: FnMut(String, String, Value) -> Fut,
    Fut: std::future::Future<Output = Result<Value, String>>,
{
    let mut child = tokio::process::Command::new(worker)
        .arg("codemode-worker")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .env_clear()
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| script_error("sandbox", format!("cannot start the worker: {e}")))?;
    let limits = job.limits.clone();
    // Into its own cgroup before it is sent the job: no script runs outside.
    let group = child
        .id()
        .and_then(|pid| super::cgroup::WorkerGroup::join(pid, limits.resident_bytes));
    let mut stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let talk = async {
        let line = serde_json::to_string(job).expect("jobs encode") + "\n";
        stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| script_error("sandbox", format!("worker: {e}")))?;
        converse(
            &mut tokio::io::BufReader::new(stdout),
            &mut stdin,
            &limits,
            call,
        )
        .await
    };
    let outcome = tokio::time::timeout(Duration::from_millis(limits.wall_ms), talk).await;
    let _ = child.start_kill();
    if group.is_some() {
        // The group's directories can go only once the worker has.
        let _ = child.wait().await;
        drop(group);
    }
    outcome.unwrap_or_else(|_| {
        Err(script_error(
            "limit",
            format!(
                "the script ran past its {} ms wall-clock limit",
                limits.wall_ms
            ),
        ))
    })
}

/// The gateway's side of a worker's conversation, once the job is sent:
/// reads the worker's lines from `from` (bounded, whatever the worker
/// prints), runs each tool call through `call` and writes its reply to `to`,
/// until the worker finishes or fails.
pub async fn converse<R, W, F, Fut>(
    from: &mut R,
    to: &mut W,
    limits: &Limits,
    mut call: F,
) -> Result<Finished, ScriptError>
where
    R: tokio::io::AsyncBufRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
    F: FnMut(String, String, Value) -> Fut,
    Fut: std::future::Future<Output = Result<Value, String>>,
{
    let mut calls = 0usize;
    let longest = limits.max_output_bytes + 4096;
    loop {
        let line = match bounded_line(from, longest)
            .await
            .map_err(|e| script_error("sandbox", format!("worker: {e}")))?
        {
            Line::Whole(line) => line,
            Line::End => {
                return Err(script_error(
                    "limit",
                    "the script's worker was stopped: it used more memory or CPU time than allowed",
                ));
            }
            Line::TooLong => {
                return Err(script_error(
                    "limit",
                    format!(
                        "a tool call or the output is over {} bytes",
                        limits.max_output_bytes
                    ),
                ));
            }
        };
        match serde_json::from_str::<WorkerLine>(&line) {
            Ok(WorkerLine::Call { server, tool, args }) => {
                calls += 1;
                let reply = if calls > limits.max_tool_calls {
                    Reply::Err(format!(
                        "{TOOL_CALL_LIMIT} ({} calls per script)",
                        limits.max_tool_calls
                    ))
                } else {
                    match call(server, tool, args).await {
                        Ok(v) => Reply::Ok(v),
                        Err(e) => Reply::Err(e),
                    }
                };
                let line = serde_json::to_string(&reply).expect("replies encode") + "\n";
                to.write_all(line.as_bytes())
                    .await
                    .map_err(|e| script_error("sandbox", format!("worker: {e}")))?;
            }
            Ok(WorkerLine::Done(f)) => return Ok(f),
            Ok(WorkerLine::Error(e)) => return Err(e),
            Err(e) => return Err(script_error("sandbox", format!("bad worker line: {e}"))),
        }
    }
}

/// One line of the worker's output, read without ever holding more than the
/// longest line allowed: a worker cannot make the gateway buffer more than
/// that, whatever it prints.
enum Line {
    Whole(String),
    TooLong,
    End,
}

async fn bounded_line<R>(r: &mut R, longest: usize) -> std::io::Result<Line>
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let mut buf = Vec::new();
    let n = (&mut *r)
        .take(longest as u64 + 1)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(Line::End);
    }
    if buf.last() != Some(&b'\n') {
        return Ok(if buf.len() > longest {
            Line::TooLong
        } else {
            Line::End
        });
    }
    buf.pop();
    Ok(String::from_utf8(buf).map_or(Line::TooLong, Line::Whole))
}

/// The worker's whole life: limit itself, read one job, run it, answer.
pub fn worker_main() -> i32 {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut first = String::new();
    if input.read_line(&mut first).is_err() {
        return 2;
    }
    let job: Job = match serde_json::from_str(&first) {
        Ok(j) => j,
        Err(e) => {
            emit(&WorkerLine::Error(script_error("sandbox", e.to_string())));
            return 2;
        }
    };
    limit_self(&job.limits);
    if let Err(e) = super::seccomp::confine() {
        emit(&WorkerLine::Error(script_error("sandbox", e.to_string())));
        return 2;
    }
    let line = match eval::run(&job, &mut input) {
        Ok(f) => WorkerLine::Done(f),
        Err(e) => WorkerLine::Error(e),
    };
    emit(&line);
    0
}

/// `tollgate codemode-worker --check-confinement`: confines this process
/// as a worker is confined (default limits), then tries what it must not
/// do, and prints one JSON object saying what each attempt got (`"ok"`, or
/// the OS error). The test suite runs it to check the real confinement.
pub fn confinement_report() -> i32 {
    limit_self(&Limits::default());
    let seccomp = match super::seccomp::confine() {
        Ok(()) => "installed".to_string(),
        Err(e) => e.to_string(),
    };
    let outcome = |rc: i64| {
        if rc >= 0 {
            "ok".to_string()
        } else {
            std::io::Error::last_os_error().to_string()
        }
    };
    // SAFETY: each call takes plain integers or a NUL-terminated string that
    // lives across the call; descriptors that open are leaked on purpose
    // (the process exits right after).
    let (open, socket, uid, write) = unsafe {
        let path = c"/proc/self/status";
        (
            outcome(libc::open(path.as_ptr(), libc::O_RDONLY) as i64),
            outcome(libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) as i64),
            libc::getuid(),
            outcome(libc::write(1, b" ".as_ptr().cast(), 1) as i64),
        )
    };
    let spawn = match std::process::Command::new("/bin/true").status() {
        Ok(_) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    let thread = match std::thread::Builder::new().spawn(|| ()) {
        Ok(h) => h.join().map_or("panicked", |_| "ok").to_string(),
        Err(e) => e.to_string(),
    };
    let report = serde_json::json!({
        "seccomp": seccomp,
        "filter_available": super::seccomp::AVAILABLE,
        "uid": uid,
        "open": open,
        "socket": socket,
        "spawn": spawn,
        "thread": thread,
        "write_stdout": write,
    });
    println!("{report}");
    0
}

fn emit(line: &WorkerLine) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{}",
        serde_json::to_string(line).expect("lines encode")
    );
    let _ = out.flush();
}

/// Confines this process before it reads any script (Unix): no new
/// privileges, the unprivileged `nobody` user when started as root, and
/// limits on address space, CPU time, processes, open files, file size and
/// core dumps. The seccomp filter ([`super::seccomp`]) comes after.
fn limit_self(l: &Limits) {
    #[cfg(unix)]
    // SAFETY: prctl, getuid, setgroups, setgid, setuid and setrlimit take
    // plain integers or read only the structs given; none touches memory
    // Rust owns.
    unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        if libc::getuid() == 0 {
            const NOBODY: libc::uid_t = 65534;
            libc::setgroups(0, std::ptr::null());
            libc::setgid(NOBODY);
            libc::setuid(NOBODY);
        }
        let set = |resource, soft: u64, hard: u64| {
            let r = libc::rlimit {
                rlim_cur: soft as libc::rlim_t,
                rlim_max: hard as libc::rlim_t,
            };
            libc::setrlimit(resource, &r);
        };
        set(libc::RLIMIT_AS, l.memory_bytes, l.memory_bytes);
        let secs = l.wall_ms.div_ceil(1000).max(1);
        set(libc::RLIMIT_CPU, secs, secs + 1);
        set(libc::RLIMIT_NPROC, 0, 0);
        set(libc::RLIMIT_NOFILE, 8, 8);
        set(libc::RLIMIT_FSIZE, 0, 0);
        set(libc::RLIMIT_CORE, 0, 0);
    }
}

mod eval {
    //! Starlark evaluation inside the worker.

    use std::io::{BufRead, Write};

    use starlark::any::ProvidesStaticType;
    use starlark::environment::{GlobalsBuilder, LibraryExtension, Module};
    use starlark::eval::Evaluator;
    use starlark::starlark_module;
    use starlark::syntax::{AstModule, Dialect};
    use starlark::values::Value as SValue;
    use starlark::values::dict::DictRef;

    use super::{Finished, Job, Reply, ScriptError, TOOL_CALL_LIMIT, WorkerLine, script_error};

    /// The script's file name in errors.
    const SCRIPT: &str = "script.star";
    use crate::codemode::stubs::py_name;

    struct Printed {
        text: std::cell::RefCell<String>,
        max: usize,
    }

    impl starlark::PrintHandler for Printed {
        fn println(&self, text: &str) -> starlark::Result<()> {
            let mut out = self.text.borrow_mut();
            if out.len() + text.len() + 1 > self.max {
                return Err(starlark::Error::new_other(anyhow::anyhow!(
                    "output limit: print wrote more than {} bytes",
                    self.max
                )));
            }
            out.push_str(text);
            out.push('\n');
            Ok(())
        }
    }

    /// What builtins reach through `eval.extra`: the line to the gateway.
    #[derive(ProvidesStaticType)]
    struct Line<'a> {
        input: std::cell::RefCell<&'a mut dyn BufRead>,
        /// The last refusal or failure of a tool call, which a script error
        /// may be (so that it is not mistaken for a sandbox limit).
        failed_call: std::cell::RefCell<Option<String>>,
    }

    #[starlark_module]
    fn tool_calls(builder: &mut GlobalsBuilder) {
        /// Calls `server`'s `tool` with keyword arguments (bound by the prelude).
        fn __call_tool<'v>(
            #[starlark(require = pos)] server: &str,
            #[starlark(require = pos)] tool: &str,
            #[starlark(require = pos)] args: SValue<'v>,
            eval: &mut Evaluator<'v, '_, '_>,
        ) -> anyhow::Result<serde_json::Value> {
            let line = eval
                .extra
                .and_then(|e| e.downcast_ref::<Line>())
                .ok_or_else(|| anyhow::anyhow!("no gateway line"))?;
            let args = if DictRef::from_value(args).is_some() {
                args.to_json_value()?
            } else {
                serde_json::json!({})
            };
            let request = WorkerLine::Call {
                server: server.to_string(),
                tool: tool.to_string(),
                args,
            };
            {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}", serde_json::to_string(&request)?)?;
                out.flush()?;
            }
            let mut reply = String::new();
            line.input.borrow_mut().read_line(&mut reply)?;
            match serde_json::from_str::<Reply>(&reply)? {
                Reply::Ok(v) => Ok(v),
                Reply::Err(e) => {
                    let message = format!("{server}.{tool}: {e}");
                    *line.failed_call.borrow_mut() = Some(message.clone());
                    Err(anyhow::anyhow!(message))
                }
            }
        }
    }

    /// `server = struct(tool = lambda **kw: __call_tool("server", "tool", kw), ...)`
    fn prelude(job: &Job) -> String {
        let mut out = String::new();
        for (server, tools) in &job.bindings {
            let fields: Vec<String> = tools
                .iter()
                .map(|t| {
                    format!(
                        "{} = lambda **kw: __call_tool({server:?}, {t:?}, kw)",
                        py_name(t)
                    )
                })
                .collect();
            out.push_str(&format!(
                "{} = struct({})\n",
                py_name(server),
                fields.join(", ")
            ));
        }
        out
    }

    /// What went wrong, where in the script: its own line even when the
    /// error is raised inside a tool binding (whose frames are the prelude's).
    fn describe(e: &starlark::Error) -> String {
        let text = e.without_diagnostic().to_string();
        let what = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("error")
            .to_string();
        let in_script = |s: &&starlark::codemap::FileSpan| s.filename() == SCRIPT;
        let at = e.span().filter(in_script).or_else(|| {
            e.call_stack()
                .frames
                .iter()
                .rev()
                .filter_map(|f| f.location.as_ref())
                .find(in_script)
        });
        match at.or(e.span()) {
            Some(at) => format!("{what} ({at})"),
            None => what,
        }
    }

    pub(super) fn run(job: &Job, input: &mut dyn BufRead) -> Result<Finished, ScriptError> {
        // Extended, for top-level `for`/`if` (scripts are not libraries),
        // without `load`.
        let dialect = Dialect {
            enable_load: false,
            ..Dialect::Extended
        };
        // The prelude is its own module so that script line numbers are the
        // model's own.
        let globals = GlobalsBuilder::extended_by(&[
            LibraryExtension::Json,
            LibraryExtension::Print,
            LibraryExtension::StructType,
            LibraryExtension::Map,
            LibraryExtension::Filter,
        ])
        .with(tool_calls)
        .build();
        let script = AstModule::parse(SCRIPT, job.script.clone(), &dialect)
            .map_err(|e| script_error("compile", describe(&e)))?;
        let prelude = AstModule::parse("prelude.star", prelude(job), &dialect)
            .map_err(|e| script_error("sandbox", describe(&e)))?;
        let printed = Printed {
            text: Default::default(),
            max: job.limits.max_output_bytes,
        };
        let line = Line {
            input: std::cell::RefCell::new(input),
            failed_call: Default::default(),
        };
        let l = &job.limits;
        Module::with_temp_heap(|module| {
            let mut eval = Evaluator::new(&module);
            eval.extra = Some(&line);
            eval.set_print_handler(&printed);
            eval.set_max_callstack_size(l.max_call_depth)
                .map_err(|e| script_error("sandbox", e.to_string()))?;
            eval.eval_module(prelude, &globals)
                .map_err(|e| script_error("sandbox", describe(&e)))?;
            eval.set_max_tick_count(l.max_steps)
                .map_err(|e| script_error("sandbox", e.to_string()))?;
            eval.set_max_heap_size(l.max_heap_bytes)
                .map_err(|e| script_error("sandbox", e.to_string()))?;
            eval.eval_module(script, &globals).map_err(|e| {
                let message = describe(&e);
                // A failed tool call is the script's runtime error, whatever
                // its text says, unless the gateway refused it for the limit.
                let failed_call = line.failed_call.borrow().clone();
                let kind = match failed_call {
                    Some(call) if message.contains(&call) => {
                        if call.contains(TOOL_CALL_LIMIT) {
                            "limit"
                        } else {
                            "runtime"
                        }
                    }
                    _ => {
                        let lower = message.to_ascii_lowercase();
                        let limit = ["limit", "exceeded", "too many", "overflow", "stack"]
                            .iter()
                            .any(|w| lower.contains(w));
                        if limit { "limit" } else { "runtime" }
                    }
                };
                script_error(kind, message)
            })?;
            let result = match module.get("result") {
                Some(v) => v
                    .to_json_value()
                    .unwrap_or_else(|_| serde_json::Value::String(v.to_repr())),
                None => serde_json::Value::Null,
            };
            let output = printed.text.borrow().clone();
            if output.len() + result.to_string().len() > l.max_output_bytes {
                return Err(script_error(
                    "limit",
                    format!("output limit: more than {} bytes", l.max_output_bytes),
                ));
            }
            Ok(Finished { output, result })
        })
    }
}
