//! The task suite: for each task a classic-mode policy and the Code Mode
//! script that computes the same answer.

use super::*;

// Tasks: classic-mode policies and Code Mode scripts
// ---------------------------------------------------------------------------

/// Replays a policy over the results it already has: each `call` returns
/// the next recorded result, or stops the policy with that call as the step
/// to take.
pub(super) struct Replay<'a> {
    pub(super) results: &'a [Value],
    pub(super) used: usize,
}

/// A policy stopped at a call that has no result yet.
pub(super) struct Pending(pub(super) Step);

impl<'a> Replay<'a> {
    pub(super) fn call(
        &mut self,
        server: &str,
        tool: &str,
        args: Value,
    ) -> Result<&'a Value, Pending> {
        let results: &'a [Value] = self.results;
        match results.get(self.used) {
            Some(r) => {
                self.used += 1;
                Ok(r)
            }
            None => Err(Pending(Step::Call {
                server: server.into(),
                tool: tool.into(),
                args,
            })),
        }
    }
}

pub(super) fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

pub(super) fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

pub(super) fn policy_p1_points(r: &mut Replay<'_>) -> Result<String, Pending> {
    let found = r.call(
        "jira",
        "list_issues",
        json!({"project": "ENG", "filters": {"status": "Open", "assignee": "alice"}, "limit": 50}),
    )?;
    let mut points = 0;
    let mut keys = Vec::new();
    for summary in list(&found["issues"]) {
        let issue = r.call("jira", "get_issue", json!({"issue_key": summary["key"]}))?;
        if issue["priority"] == "P1" {
            points += issue["story_points"].as_i64().unwrap_or(0);
            keys.push(text(&issue["key"]));
        }
    }
    Ok(format!("points={points} issues={}", keys.join(",")))
}

pub(super) const SCRIPT_P1_POINTS: &str = r##"found = jira.list_issues(project="ENG", filters={"status": "Open", "assignee": "alice"}, limit=50)
points = 0
keys = []
for summary in found["issues"]:
    issue = jira.get_issue(issue_key=summary["key"])
    if issue["priority"] == "P1":
        points += issue["story_points"] or 0
        keys.append(issue["key"])
result = "points=%d issues=%s" % (points, ",".join(keys))
"##;

pub(super) fn policy_overdue_invoice(r: &mut Replay<'_>) -> Result<String, Pending> {
    let invoices = r.call(
        "stripe",
        "list_invoices",
        json!({"status": "open", "limit": 100}),
    )?;
    let mut best: Option<&Value> = None;
    for inv in list(&invoices["data"]) {
        let overdue = text(&inv["due_date"]) < TODAY;
        if overdue && best.is_none_or(|b| inv["amount_due"].as_i64() > b["amount_due"].as_i64()) {
            best = Some(inv);
        }
    }
    let Some(best) = best else {
        return Ok("no overdue invoice".into());
    };
    let customer = r.call(
        "stripe",
        "retrieve_customer",
        json!({"customer": best["customer"]}),
    )?;
    let channels = r.call("slack", "slack_list_channels", json!({}))?;
    let billing = list(&channels["channels"])
        .iter()
        .find(|c| c["name"] == "billing")
        .map_or("", |c| text(&c["id"]));
    let amount = best["amount_due"].as_i64().unwrap_or(0);
    let message = format!(
        "Largest overdue invoice: {} from {}, ${} due {}",
        text(&best["number"]),
        text(&customer["name"]),
        amount / 100,
        text(&best["due_date"])
    );
    let posted = r.call(
        "slack",
        "slack_post_message",
        json!({"channel_id": billing, "text": message}),
    )?;
    Ok(format!(
        "customer={} invoice={} amount={amount} ts={}",
        text(&customer["name"]),
        text(&best["number"]),
        text(&posted["ts"])
    ))
}

pub(super) const SCRIPT_OVERDUE_INVOICE: &str = r##"invoices = stripe.list_invoices(status="open", limit=100)["data"]
best = None
for inv in invoices:
    if inv["due_date"] < "2026-03-12" and (best == None or inv["amount_due"] > best["amount_due"]):
        best = inv
customer = stripe.retrieve_customer(customer=best["customer"])
channels = slack.slack_list_channels()["channels"]
billing = [c for c in channels if c["name"] == "billing"][0]
message = "Largest overdue invoice: %s from %s, $%d due %s" % (best["number"], customer["name"], best["amount_due"] // 100, best["due_date"])
posted = slack.slack_post_message(channel_id=billing["id"], text=message)
result = "customer=%s invoice=%s amount=%d ts=%s" % (customer["name"], best["number"], best["amount_due"], posted["ts"])
"##;

pub(super) fn policy_release_blockers(r: &mut Replay<'_>) -> Result<String, Pending> {
    let repo = json!({"owner": "acme", "repo": "checkout-service"});
    let pulls = r.call(
        "github",
        "list_pull_requests",
        with(repo.clone(), json!({"state": "open", "per_page": 100})),
    )?;
    let mut blockers: Vec<&Value> = list(&pulls["pull_requests"])
        .iter()
        .filter(|p| {
            list(&p["labels"])
                .iter()
                .any(|l| l["name"] == "release-blocker")
        })
        .collect();
    blockers.sort_by_key(|p| p["number"].as_i64());
    let mut out = Vec::new();
    for pr in blockers {
        let runs = r.call(
            "github",
            "list-check-runs",
            with(repo.clone(), json!({"ref": pr["head"]["sha"]})),
        )?;
        let failing: Vec<&str> = list(&runs["check_runs"])
            .iter()
            .filter(|c| c["conclusion"] == "failure")
            .map(|c| text(&c["name"]))
            .collect();
        if failing.is_empty() {
            continue;
        }
        let body = format!(
            "CI is failing on this release blocker: {}",
            failing.join(", ")
        );
        let comment = r.call(
            "github",
            "create-comment",
            with(
                repo.clone(),
                json!({"issue_number": pr["number"], "body": body}),
            ),
        )?;
        out.push(format!(
            "#{}:{}:{}",
            pr["number"],
            failing.join("+"),
            comment["id"]
        ));
    }
    Ok(if out.is_empty() {
        "none".into()
    } else {
        out.join(";")
    })
}

pub(super) const SCRIPT_RELEASE_BLOCKERS: &str = r##"pulls = github.list_pull_requests(owner="acme", repo="checkout-service", state="open", per_page=100)["pull_requests"]
blockers = [p for p in pulls if "release-blocker" in [l["name"] for l in p["labels"]]]
out = []
for pr in sorted(blockers, key=lambda p: p["number"]):
    runs = github.list_check_runs(owner="acme", repo="checkout-service", ref=pr["head"]["sha"])["check_runs"]
    failing = [c["name"] for c in runs if c["conclusion"] == "failure"]
    if not failing:
        continue
    comment = github.create_comment(owner="acme", repo="checkout-service", issue_number=pr["number"], body="CI is failing on this release blocker: " + ", ".join(failing))
    out.append("#%d:%s:%d" % (pr["number"], "+".join(failing), comment["id"]))
result = ";".join(out) if out else "none"
"##;

pub(super) fn policy_failed_runs(r: &mut Replay<'_>) -> Result<String, Pending> {
    let repo = json!({"owner": "acme", "repo": "platform"});
    let runs = r.call(
        "github",
        "list_workflow_runs",
        with(repo.clone(), json!({"branch": "main", "status": "failure"})),
    )?;
    let mut out = Vec::new();
    for run in list(&runs["workflow_runs"]) {
        let jobs = r.call(
            "github",
            "list_workflow_jobs",
            with(repo.clone(), json!({"run_id": run["id"]})),
        )?;
        for job in list(&jobs["jobs"])
            .iter()
            .filter(|j| j["conclusion"] == "failure")
        {
            let log = r.call(
                "github",
                "get_job_logs",
                with(repo.clone(), json!({"job_id": job["id"]})),
            )?;
            let last = list(&log["lines"])
                .iter()
                .map(text)
                .rfind(|l| l.contains("ERROR"));
            if let Some((_, line)) = last.and_then(|l| l.split_once(' ')) {
                out.push(format!("{}/{}: {line}", run["id"], text(&job["name"])));
            }
        }
    }
    Ok(out.join(" | "))
}

pub(super) const SCRIPT_FAILED_RUNS: &str = r##"runs = github.list_workflow_runs(owner="acme", repo="platform", branch="main", status="failure")["workflow_runs"]
errors = []
for run in runs:
    jobs = github.list_workflow_jobs(owner="acme", repo="platform", run_id=run["id"])["jobs"]
    for job in jobs:
        if job["conclusion"] != "failure":
            continue
        log = github.get_job_logs(owner="acme", repo="platform", job_id=job["id"])
        lines = [l for l in log["lines"] if "ERROR" in l]
        if lines:
            errors.append("%d/%s: %s" % (run["id"], job["name"], lines[-1].split(" ", 1)[1]))
result = " | ".join(errors)
"##;

pub(super) fn policy_oncall_calendar(r: &mut Replay<'_>) -> Result<String, Pending> {
    let policies = r.call(
        "pagerduty",
        "list_escalation_policies",
        json!({"query": "Payments"}),
    )?;
    let Some(policy) = list(&policies["escalation_policies"])
        .iter()
        .find(|p| p["name"] == "Payments")
    else {
        return Ok("no such escalation policy".into());
    };
    let oncalls = r.call(
        "pagerduty",
        "list_oncalls",
        json!({"escalation_policy_ids": [policy["id"]]}),
    )?;
    let Some(first) = list(&oncalls["oncalls"])
        .iter()
        .find(|o| o["escalation_level"] == 1)
    else {
        return Ok("nobody on call".into());
    };
    let user = &r.call(
        "pagerduty",
        "get_user",
        json!({"user_id": first["user"]["id"]}),
    )?["user"];
    let mail = text(&user["email"]);
    let events = r.call(
        "calendar",
        "list-events",
        json!({
            "calendar_id": mail,
            "time_min": format!("{TODAY}T00:00:00Z"),
            "time_max": format!("{}T00:00:00Z", date(today() + 1)),
            "single_events": true,
            "order_by": "startTime",
        }),
    )?;
    let kept: Vec<String> = list(&events["items"])
        .iter()
        .filter(|e| {
            !list(&e["attendees"])
                .iter()
                .any(|a| a["email"] == mail && a["response_status"] == "declined")
        })
        .map(|e| {
            format!(
                "{} {}",
                &text(&e["start"]["date_time"])[11..16],
                text(&e["summary"])
            )
        })
        .collect();
    Ok(format!(
        "oncall={} <{mail}> events={}",
        text(&user["name"]),
        kept.join(",")
    ))
}

pub(super) const SCRIPT_ONCALL_CALENDAR: &str = r##"policies = pagerduty.list_escalation_policies(query="Payments")["escalation_policies"]
policy = [p for p in policies if p["name"] == "Payments"][0]
oncalls = pagerduty.list_oncalls(escalation_policy_ids=[policy["id"]])["oncalls"]
first = [o for o in oncalls if o["escalation_level"] == 1][0]
user = pagerduty.get_user(user_id=first["user"]["id"])["user"]
events = calendar.list_events(calendar_id=user["email"], time_min="2026-03-12T00:00:00Z", time_max="2026-03-13T00:00:00Z", single_events=True, order_by="startTime")["items"]
kept = []
for e in events:
    declined = [a for a in e.get("attendees", []) if a["email"] == user["email"] and a["response_status"] == "declined"]
    if not declined:
        kept.append(e["start"]["date_time"][11:16] + " " + e["summary"])
result = "oncall=%s <%s> events=%s" % (user["name"], user["email"], ",".join(kept))
"##;

pub(super) fn policy_incident_tickets(r: &mut Replay<'_>) -> Result<String, Pending> {
    let found = r.call(
        "pagerduty",
        "list_incidents",
        json!({"statuses": ["triggered", "acknowledged"], "urgencies": ["high"], "limit": 100}),
    )?;
    let mut incidents: Vec<&Value> = list(&found["incidents"]).iter().collect();
    incidents.sort_by_key(|i| i["incident_number"].as_i64());
    let mut out = Vec::new();
    for inc in incidents {
        let number = inc["incident_number"].as_i64().unwrap_or(0);
        let label = format!("pd-{number}");
        let tickets = r.call(
            "jira",
            "list_issues",
            json!({"project": "OPS", "filters": {"labels": [label]}}),
        )?;
        match list(&tickets["issues"]).first() {
            Some(t) => out.push(format!("{number}:{}", text(&t["key"]))),
            None => {
                let created = r.call(
                    "jira",
                    "create_issue",
                    json!({
                        "project": "OPS",
                        "issue_type": "Bug",
                        "summary": format!("[PD-{number}] {}", text(&inc["title"])),
                        "priority": "P1",
                        "labels": [label, "incident"],
                    }),
                )?;
                out.push(format!("{number}:{}*", text(&created["key"])));
            }
        }
    }
    Ok(out.join(","))
}

pub(super) const SCRIPT_INCIDENT_TICKETS: &str = r##"incidents = pagerduty.list_incidents(statuses=["triggered", "acknowledged"], urgencies=["high"], limit=100)["incidents"]
out = []
for inc in sorted(incidents, key=lambda i: i["incident_number"]):
    number = inc["incident_number"]
    label = "pd-%d" % number
    tickets = jira.list_issues(project="OPS", filters={"labels": [label]})["issues"]
    if tickets:
        out.append("%d:%s" % (number, tickets[0]["key"]))
    else:
        issue = jira.create_issue(project="OPS", issue_type="Bug", summary="[PD-%d] %s" % (number, inc["title"]), priority="P1", labels=[label, "incident"])
        out.append("%d:%s*" % (number, issue["key"]))
result = ",".join(out)
"##;

pub(super) fn policy_standup(r: &mut Replay<'_>) -> Result<String, Pending> {
    let channels = r.call("slack", "slack_list_channels", json!({}))?;
    let standup = list(&channels["channels"])
        .iter()
        .find(|c| c["name"] == "eng-standup")
        .map_or("", |c| text(&c["id"]));
    let history = r.call(
        "slack",
        "slack_get_channel_history",
        json!({"channel_id": standup, "limit": 20}),
    )?;
    let mut numbers: Vec<u32> = Vec::new();
    for m in list(&history["messages"]) {
        for word in text(&m["text"]).split_whitespace() {
            let w = word.trim_matches(|c| ",.:;()".contains(c));
            if let Some(n) = w
                .strip_prefix("ENG-")
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            {
                let n: u32 = n.parse().unwrap_or(0);
                if !numbers.contains(&n) {
                    numbers.push(n);
                }
            }
        }
    }
    numbers.sort_unstable();
    let mut out = Vec::new();
    for n in numbers {
        let issue = r.call(
            "jira",
            "get_issue",
            json!({"issue_key": format!("ENG-{n}")}),
        )?;
        if issue["status"] != "Done" {
            let assignee = issue["assignee"]["name"].as_str().unwrap_or("unassigned");
            out.push(format!("ENG-{n}:{assignee}"));
        }
    }
    Ok(out.join(","))
}

pub(super) const SCRIPT_STANDUP: &str = r##"channels = slack.slack_list_channels()["channels"]
standup = [c for c in channels if c["name"] == "eng-standup"][0]
messages = slack.slack_get_channel_history(channel_id=standup["id"], limit=20)["messages"]
keys = {}
for m in messages:
    for word in m["text"].split():
        w = word.strip(",.:;()")
        if w.startswith("ENG-") and w[4:].isdigit():
            keys[w] = True
out = []
for key in sorted(keys.keys(), key=lambda k: int(k[4:])):
    issue = jira.get_issue(issue_key=key)
    if issue["status"] != "Done":
        assignee = issue["assignee"]["name"] if issue["assignee"] else "unassigned"
        out.append(key + ":" + assignee)
result = ",".join(out)
"##;
