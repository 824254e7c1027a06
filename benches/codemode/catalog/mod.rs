//! Synthetic MCP catalogs and multi-step agent tasks for the Code Mode token
//! benchmark: what a model sees and does with classic MCP (every tool schema
//! in context, one tool call per turn) and with Code Mode (a few stub files,
//! one Starlark script).
//!
//! - [`generate`] builds a catalog of servers shaped like real MCP servers.
//!   The first six (`github`, `jira`, `slack`, `stripe`, `pagerduty`,
//!   `calendar`, 96 tools) are hand-written and identical at every size;
//!   larger catalogs add servers (`kubernetes`, `postgres`, `filesystem`,
//!   `datadog`, `notion`, then `salesforce`, `s3`, `gmail`, `search`, `hr`)
//!   whose tools are a few hand-written ones followed by verb × resource
//!   combinations of the server's domain, each server taking a weighted share
//!   of the remaining tool count. Naming and schema dialects vary by server as
//!   they do in the wild: snake, kebab and `API-` names; TypeScript SDK
//!   schemas (`additionalProperties: false`, `$schema`) and Python SDK ones
//!   (`title` on every property, optional arguments as `anyOf [T, null]`).
//! - [`call`] is every tool's behaviour: arguments are checked against the
//!   tool's schema, then the tools the tasks use answer from one small
//!   consistent world (Jira issues, Stripe invoices, PagerDuty on-call, ...)
//!   and every other tool answers with a generic record built from its
//!   arguments.
//! - [`tasks`] is the suite: each task has a classic-mode policy (the next
//!   step given the results so far) and the Code Mode script that computes
//!   the same answer; tasks touch only the first six servers.
//!
//! Pure: no I/O, no clock, no randomness. Everything derives from names and
//! arguments through one fixed hash, so results are the same bytes in every
//! run and at every catalog size.

use serde_json::{Map, Value, json};

mod behaviour;
mod core_servers;
mod extra;
mod tasks;
#[cfg(test)]
mod tests;
mod world;

use self::behaviour::*;
use self::core_servers::*;
use self::extra::*;
use self::tasks::*;
use self::world::*;

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/// One tool as its MCP server lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    /// A JSON Schema object, as in `tools/list`'s `inputSchema`.
    pub input_schema: Value,
}

/// One MCP server: a name that is a valid gateway server id (no `-`) and its tools.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerDef {
    pub name: String,
    pub tools: Vec<ToolDef>,
}

/// A set of MCP servers for one benchmark size.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    pub servers: Vec<ServerDef>,
}

/// The catalog of `servers` servers holding `tools` tools in all.
/// Deterministic. Sizes used: (6, 96), (11, 251), (16, 508): exactly that
/// many servers and tools in total. Any size from 6 to 16 servers works as
/// long as `tools` is at least 96 plus one per extra server and fits what the
/// extra servers can hold; other sizes panic.
pub fn generate(servers: usize, tools: usize) -> Catalog {
    let core: usize = CORE.iter().map(|s| specs(s).len()).sum();
    assert!(
        (CORE.len()..=CORE.len() + DOMAINS.len()).contains(&servers),
        "a catalog has {} to {} servers, not {servers}",
        CORE.len(),
        CORE.len() + DOMAINS.len()
    );
    assert!(
        tools >= core + (servers - CORE.len()),
        "{servers} servers need at least {} tools",
        core + (servers - CORE.len())
    );
    if servers == CORE.len() {
        assert_eq!(
            tools, core,
            "the six core servers hold exactly {core} tools"
        );
    }
    let extras = &DOMAINS[..servers - CORE.len()];
    let counts = allocate(extras, tools - core);
    let mut out: Vec<ServerDef> = CORE.iter().map(|s| server_def(s, usize::MAX)).collect();
    out.extend(
        extras
            .iter()
            .zip(counts)
            .map(|(d, n)| server_def(d.server, n)),
    );
    Catalog { servers: out }
}

/// Runs `server`'s `tool` with `args` (a JSON object, or null for none).
/// Ok is the tool's structured result (always a JSON object); Err is the
/// message a failing tool returns: bad arguments (missing required ones,
/// wrong types, values outside an enum or a range, unknown arguments) or
/// unknown ids. Deterministic, and the same at every catalog size.
pub fn call(server: &str, tool: &str, args: &Value) -> Result<Value, String> {
    let all = specs(server);
    if all.is_empty() {
        return Err(format!("unknown server '{server}'"));
    }
    let spec = all
        .iter()
        .find(|s| s.def.name == tool)
        .ok_or_else(|| format!("unknown tool '{tool}' on server '{server}'"))?;
    let args = match args {
        Value::Null => Value::Object(Map::new()),
        Value::Object(_) => args.clone(),
        _ => return Err("arguments must be a JSON object".into()),
    };
    validate(&spec.def.input_schema, &args, "")
        .map_err(|e| format!("invalid arguments for {tool}: {e}"))?;
    let args = match strip_nulls(args) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let a = Args(&args);
    match (server, tool) {
        ("github", "list_pull_requests") => gh_list_pulls(&a),
        ("github", "get_pull_request") => gh_get_pull(&a),
        ("github", "list-check-runs") => gh_check_runs(&a),
        ("github", "create-comment") => gh_comment(&a),
        ("github", "list_workflow_runs") => gh_list_runs(&a),
        ("github", "list_workflow_jobs") => gh_list_jobs(&a),
        ("github", "get_job_logs") => gh_job_logs(&a),
        ("jira", "list_projects") => Ok(jira_projects()),
        ("jira", "list_issues") => jira_list(&a),
        ("jira", "get_issue") => jira_get(&a),
        ("jira", "create_issue") => jira_create(&a),
        ("slack", "slack_list_channels") => Ok(slack_channels(&a)),
        ("slack", "slack_get_channel_history") => slack_history(&a),
        ("slack", "slack_post_message") => slack_post(&a),
        ("stripe", "list_customers") => stripe_customers(&a),
        ("stripe", "retrieve_customer") => stripe_customer(&a),
        ("stripe", "list_invoices") => stripe_invoices(&a),
        ("stripe", "retrieve_invoice") => stripe_invoice(&a),
        ("pagerduty", "list_incidents") => Ok(pd_incidents(&a)),
        ("pagerduty", "get_incident") => pd_incident(&a),
        ("pagerduty", "list_escalation_policies") => Ok(pd_policies(&a)),
        ("pagerduty", "list_oncalls") => Ok(pd_oncalls(&a)),
        ("pagerduty", "get_user") => pd_user(&a),
        ("pagerduty", "list_users") => Ok(pd_users(&a)),
        ("calendar", "list-events") => cal_events(&a),
        _ => Ok(generic(server, spec, &args)),
    }
}

/// One benchmark task: a prompt, a classic-mode policy and a Code Mode script
/// that reach the same answer string.
pub struct Task {
    /// Short stable name, for reports.
    pub name: &'static str,
    /// What the user asks; says exactly how the answer is formatted.
    pub prompt: String,
    policy: fn(&mut Replay<'_>) -> Result<String, Pending>,
    servers: &'static [&'static str],
    docs: &'static [(&'static str, &'static str)],
    script: &'static str,
}

/// One step of the classic-mode agent.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Call one tool (by its names at its server, not the gateway's
    /// `server-tool` name).
    Call {
        server: String,
        tool: String,
        args: Value,
    },
    /// The final answer.
    Answer(String),
}

impl Task {
    /// Classic mode policy: given the JSON results of this task's previous
    /// calls (in order), the next step. The policy is straight-line code
    /// replayed over `results`: it stops at the first call without a result.
    pub fn classic_next(&self, results: &[Value]) -> Step {
        let mut replay = Replay { results, used: 0 };
        match (self.policy)(&mut replay) {
            Ok(answer) => Step::Answer(answer),
            Err(Pending(step)) => step,
        }
    }

    /// Code mode: the servers whose stub files the agent reads (`servers/<name>.pyi`).
    pub fn code_servers(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.to_string()).collect()
    }

    /// Code mode: (server, tool) pairs whose full docs the agent asks for
    /// with `getToolDocs` (tools with nested or enum arguments).
    pub fn code_docs(&self) -> Vec<(String, String)> {
        self.docs
            .iter()
            .map(|(s, t)| (s.to_string(), t.to_string()))
            .collect()
    }

    /// Code mode: the Starlark script; it sets `result` to the answer string.
    pub fn script(&self) -> String {
        self.script.to_string()
    }
}

/// The suite: seven tasks over the first six servers, so the same tasks run
/// at every catalog size.
pub fn tasks() -> Vec<Task> {
    vec![
        Task {
            name: "jira_p1_points",
            prompt: "In Jira project ENG, add up the story points of the issues that are \
                     assigned to alice, have status Open and priority P1 (an issue without an \
                     estimate counts as 0). Reply exactly `points=<total> issues=<keys>`, the \
                     keys comma-separated in the order Jira lists them."
                .into(),
            policy: policy_p1_points,
            servers: &["jira"],
            docs: &[("jira", "list_issues")],
            script: SCRIPT_P1_POINTS,
        },
        Task {
            name: "overdue_invoice_to_slack",
            prompt: format!(
                "Today is {TODAY}. Among the open Stripe invoices, find the overdue one (due_date \
                 before today) with the largest amount_due and look up its customer. Post \
                 `Largest overdue invoice: <invoice number> from <customer name>, $<amount_due in \
                 whole dollars> due <due_date>` to the #billing Slack channel. Reply exactly \
                 `customer=<name> invoice=<number> amount=<amount_due in cents> ts=<ts of the \
                 posted message>`."
            ),
            policy: policy_overdue_invoice,
            servers: &["stripe", "slack"],
            docs: &[],
            script: SCRIPT_OVERDUE_INVOICE,
        },
        Task {
            name: "release_blocker_ci",
            prompt: "In GitHub repository acme/checkout-service, take the open pull requests \
                     labelled `release-blocker`. For each, list the check runs of its head \
                     commit; if any concluded `failure`, comment on the pull request `CI is \
                     failing on this release blocker: <failing check names, comma-separated, in \
                     the order listed>`. Reply exactly `#<number>:<failing checks joined by \
                     +>:<comment id>` for each pull request you commented on, joined by `;` in \
                     ascending number order (or `none`)."
                .into(),
            policy: policy_release_blockers,
            servers: &["github"],
            docs: &[("github", "list-check-runs")],
            script: SCRIPT_RELEASE_BLOCKERS,
        },
        Task {
            name: "failed_runs_errors",
            prompt: "In GitHub repository acme/platform, take the workflow runs on branch main \
                     whose status is failure. For each run, list its jobs; for every job that \
                     concluded failure, read its log and take the last line containing `ERROR`, \
                     without the timestamp (everything before the first space). Reply exactly \
                     `<run id>/<job name>: <line>` for each, joined by ` | `, runs in the order \
                     listed and jobs in the order listed."
                .into(),
            policy: policy_failed_runs,
            servers: &["github"],
            docs: &[("github", "list_workflow_runs")],
            script: SCRIPT_FAILED_RUNS,
        },
        Task {
            name: "oncall_calendar",
            prompt: format!(
                "Who is on call at escalation level 1 for the PagerDuty escalation policy named \
                 exactly `Payments`, and what is on their calendar today ({TODAY}, UTC)? Skip \
                 events they declined. Reply exactly `oncall=<name> <<email>> events=<HH:MM \
                 summary>` with the events comma-separated in start order."
            ),
            policy: policy_oncall_calendar,
            servers: &["pagerduty", "calendar"],
            docs: &[("calendar", "list-events")],
            script: SCRIPT_ONCALL_CALENDAR,
        },
        Task {
            name: "incident_tickets",
            prompt: "For every high-urgency PagerDuty incident that is triggered or \
                     acknowledged, make sure Jira project OPS has a ticket for it: tickets are \
                     labelled `pd-<incident number>`. Where there is none, create a Bug with \
                     summary `[PD-<incident number>] <incident title>`, priority P1 and labels \
                     `pd-<incident number>` and `incident`. Reply exactly `<incident \
                     number>:<issue key>` per incident in ascending incident number order, \
                     comma-separated, with `*` after the keys you created."
                .into(),
            policy: policy_incident_tickets,
            servers: &["pagerduty", "jira"],
            docs: &[("pagerduty", "list_incidents"), ("jira", "create_issue")],
            script: SCRIPT_INCIDENT_TICKETS,
        },
        Task {
            name: "standup_open_issues",
            prompt: "Read the last 20 messages of Slack channel #eng-standup and collect every \
                     Jira key of the form ENG-<number> they mention (a word may carry `,` `.` \
                     `:` `;` `(` `)` around it). Look each issue up in Jira and reply with the \
                     ones whose status is not Done, exactly as `<key>:<assignee username, or \
                     unassigned>`, comma-separated, in ascending issue number order."
                .into(),
            policy: policy_standup,
            servers: &["slack", "jira"],
            docs: &[],
            script: SCRIPT_STANDUP,
        },
    ]
}

// ---------------------------------------------------------------------------
// Catalog shape: servers, tool counts, schema dialects
// ---------------------------------------------------------------------------

/// The servers present at every size, in order. Their tool lists are fixed.
const CORE: [&str; 6] = ["github", "jira", "slack", "stripe", "pagerduty", "calendar"];

/// How a server's SDK writes input schemas.
#[derive(Clone, Copy, PartialEq)]
enum Sdk {
    /// zod-to-json-schema: `additionalProperties: false` and `$schema`.
    TypeScript,
    /// pydantic: a `title` on every property and the schema, optional
    /// arguments as `anyOf [T, null]` with `default: null`.
    Python,
}

/// How a server spells generated tool names.
#[derive(Clone, Copy, PartialEq)]
enum Style {
    Snake,
    Kebab,
    /// Notion's `API-get-page` style.
    Api,
}

/// What a tool does, for its generic behaviour.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    List,
    Search,
    Get,
    Create,
    Update,
    Delete,
    /// Does something to one object (restart, send, archive...).
    Action,
}

/// A tool with what [`generic`] needs to answer it.
struct Spec {
    def: ToolDef,
    kind: Kind,
    res: &'static Res,
    host: &'static str,
}

fn server_def(server: &str, n: usize) -> ServerDef {
    ServerDef {
        name: server.to_string(),
        tools: specs(server).into_iter().take(n).map(|s| s.def).collect(),
    }
}

/// Every tool `server` can list, in listing order: a catalog takes a prefix.
fn specs(server: &str) -> Vec<Spec> {
    match server {
        "github" => github_tools(),
        "jira" => jira_tools(),
        "slack" => slack_tools(),
        "stripe" => stripe_tools(),
        "pagerduty" => pagerduty_tools(),
        "calendar" => calendar_tools(),
        _ => match DOMAINS.iter().find(|d| d.server == server) {
            Some(d) => domain_tools(d),
            None => Vec::new(),
        },
    }
}

/// Splits `total` tools over `domains` by weight, at least one each, none
/// past what a domain can list; what one cannot hold spills to the next.
fn allocate(domains: &'static [Domain], total: usize) -> Vec<usize> {
    let caps: Vec<usize> = domains.iter().map(|d| domain_tools(d).len()).collect();
    assert!(
        total <= caps.iter().sum(),
        "{} extra servers hold at most {} tools, not {total}",
        domains.len(),
        caps.iter().sum::<usize>()
    );
    let weights: u64 = domains.iter().map(|d| d.weight).sum();
    let mut counts: Vec<usize> = domains
        .iter()
        .map(|d| ((total as u64 * d.weight / weights) as usize).max(1))
        .collect();
    let mut spill = total as isize - counts.iter().sum::<usize>() as isize;
    for (c, cap) in counts.iter_mut().zip(&caps) {
        if *c > *cap {
            spill += (*c - *cap) as isize;
            *c = *cap;
        }
    }
    let mut i = 0;
    while spill != 0 {
        let j = i % counts.len();
        if spill > 0 && counts[j] < caps[j] {
            counts[j] += 1;
            spill -= 1;
        } else if spill < 0 && counts[j] > 1 {
            counts[j] -= 1;
            spill += 1;
        }
        i += 1;
    }
    counts
}

fn finish(sdk: Sdk, tool: &str, props: Value, required: &[&str]) -> Value {
    let mut props = match props {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let mut schema = Map::new();
    match sdk {
        Sdk::TypeScript => {
            schema.insert("type".into(), json!("object"));
            schema.insert("properties".into(), Value::Object(props));
            if !required.is_empty() {
                schema.insert("required".into(), json!(required));
            }
            schema.insert("additionalProperties".into(), json!(false));
            schema.insert(
                "$schema".into(),
                json!("http://json-schema.org/draft-07/schema#"),
            );
        }
        Sdk::Python => {
            for (name, p) in props.iter_mut() {
                let title = title_case(name);
                let mut inner = match p.take() {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                let optional_scalar = !required.contains(&name.as_str())
                    && !inner.contains_key("default")
                    && inner.get("type") != Some(&json!("object"));
                let mut out = Map::new();
                if optional_scalar {
                    let description = inner.remove("description");
                    out.insert(
                        "anyOf".into(),
                        json!([Value::Object(inner), {"type": "null"}]),
                    );
                    out.insert("default".into(), Value::Null);
                    if let Some(d) = description {
                        out.insert("description".into(), d);
                    }
                } else {
                    out = inner;
                }
                out.insert("title".into(), json!(title));
                *p = Value::Object(out);
            }
            schema.insert("properties".into(), Value::Object(props));
            if !required.is_empty() {
                schema.insert("required".into(), json!(required));
            }
            schema.insert("title".into(), json!(format!("{tool}Arguments")));
            schema.insert("type".into(), json!("object"));
        }
    }
    Value::Object(schema)
}

fn title_case(name: &str) -> String {
    name.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Builds one hand-written tool of a server.
struct Builder {
    sdk: Sdk,
    host: &'static str,
    out: Vec<Spec>,
}

impl Builder {
    fn new(sdk: Sdk, host: &'static str) -> Builder {
        Builder {
            sdk,
            host,
            out: Vec::new(),
        }
    }

    fn tool(
        &mut self,
        name: &str,
        kind: Kind,
        res: &'static Res,
        description: &str,
        props: Value,
        required: &[&str],
    ) -> &mut Builder {
        self.out.push(Spec {
            def: ToolDef {
                name: name.to_string(),
                description: description.to_string(),
                input_schema: finish(self.sdk, name, props, required),
            },
            kind,
            res,
            host: self.host,
        });
        self
    }
}

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn integer(description: &str, min: i64, max: i64) -> Value {
    json!({"type": "integer", "description": description, "minimum": min, "maximum": max})
}

fn integer_or(description: &str, min: i64, max: i64, default: i64) -> Value {
    json!({"type": "integer", "description": description, "minimum": min, "maximum": max, "default": default})
}

fn boolean(description: &str, default: bool) -> Value {
    json!({"type": "boolean", "description": description, "default": default})
}

fn choice(values: &[&str], description: &str) -> Value {
    json!({"type": "string", "enum": values, "description": description})
}

fn strings(description: &str) -> Value {
    json!({"type": "array", "items": {"type": "string"}, "description": description})
}

fn bare(ty: &str) -> Value {
    json!({ "type": ty })
}

// ---------------------------------------------------------------------------
