//! The small consistent world the tasks' tools answer from: people, Jira,
//! Slack, Stripe, PagerDuty, calendars and GitHub.

use super::*;

// The world: people
// ---------------------------------------------------------------------------

pub(super) struct Person {
    pub(super) login: &'static str,
    pub(super) name: &'static str,
    pub(super) title: &'static str,
    pub(super) tz: &'static str,
}

pub(super) const PEOPLE: [Person; 8] = [
    Person {
        login: "alice",
        name: "Alice Chen",
        title: "Staff Engineer",
        tz: "America/Los_Angeles",
    },
    Person {
        login: "bob",
        name: "Bob Okafor",
        title: "Senior SRE",
        tz: "Europe/London",
    },
    Person {
        login: "carol",
        name: "Carol Diaz",
        title: "Payments Engineer",
        tz: "America/New_York",
    },
    Person {
        login: "dave",
        name: "Dave Kowalski",
        title: "Backend Engineer",
        tz: "Europe/Warsaw",
    },
    Person {
        login: "erin",
        name: "Erin Walsh",
        title: "Frontend Engineer",
        tz: "Europe/Dublin",
    },
    Person {
        login: "frank",
        name: "Frank Muller",
        title: "Engineering Manager, Payments",
        tz: "Europe/Berlin",
    },
    Person {
        login: "grace",
        name: "Grace Lee",
        title: "Director of Engineering",
        tz: "America/Los_Angeles",
    },
    Person {
        login: "hiro",
        name: "Hiro Tanaka",
        title: "Data Engineer",
        tz: "Asia/Tokyo",
    },
];

pub(super) fn person(login: &str) -> Option<&'static Person> {
    PEOPLE.iter().find(|p| p.login == login)
}

pub(super) fn email(login: &str) -> String {
    format!("{login}@acme.dev")
}

pub(super) fn slack_user(login: &str) -> String {
    ident("U0", &format!("slack/user/{login}"), 9, UPPER)
}

pub(super) fn pd_user_id(login: &str) -> String {
    ident("P", &format!("pd/user/{login}"), 6, UPPER)
}

pub(super) fn user_ref(login: &str) -> Value {
    match person(login) {
        Some(p) => json!({"name": p.login, "display_name": p.name, "email": email(p.login)}),
        None => Value::Null,
    }
}

// ---------------------------------------------------------------------------
// Jira
// ---------------------------------------------------------------------------

pub(super) const JIRA_STATUSES: &[&str] = &["Open", "In Progress", "In Review", "Done"];
pub(super) const JIRA_PRIORITIES: &[&str] = &["P0", "P1", "P2", "P3"];

pub(super) struct Project {
    pub(super) key: &'static str,
    pub(super) name: &'static str,
    pub(super) issues: u32,
    pub(super) lead: &'static str,
    /// Assignees by weight; "" is unassigned.
    pub(super) team: &'static [&'static str],
    pub(super) titles: &'static [&'static str],
    pub(super) labels: &'static [&'static str],
    pub(super) components: &'static [&'static str],
}

pub(super) static PROJECTS: [Project; 4] = [
    Project {
        key: "ENG",
        name: "Engineering",
        issues: 42,
        lead: "grace",
        team: &[
            "alice", "alice", "bob", "carol", "dave", "erin", "grace", "",
        ],
        titles: &[
            "Migrate session store to Redis cluster",
            "Add retry with backoff to webhook sender",
            "Flaky test in checkout e2e suite",
            "Rate limit the public search endpoint",
            "Upgrade tokio to 1.44",
            "Remove legacy v1 billing endpoints",
            "Cache product catalog responses",
            "Fix N+1 query on orders page",
            "Add OpenTelemetry tracing to payments worker",
            "Paginate the admin users list",
            "Support SSO via Okta SAML",
            "Reduce cold start of image resizer",
            "Dark mode for dashboard settings",
            "Audit log export to S3",
            "Enforce TLS 1.2 minimum on public endpoints",
            "Split monolith deploy pipeline",
            "Deduplicate email notifications",
            "Timezone bug in invoice due dates",
            "Improve error messages on signup form",
            "Backfill missing currency codes",
            "Idempotency keys for refund API",
        ],
        labels: &[
            "backend",
            "frontend",
            "tech-debt",
            "security",
            "performance",
            "customer-reported",
        ],
        components: &["api", "web", "payments", "search", "infra"],
    },
    Project {
        key: "OPS",
        name: "Operations",
        issues: 30,
        lead: "bob",
        team: &["frank", "hiro", "bob", "carol", ""],
        titles: &[
            "Rotate database credentials",
            "Alert on certificate expiry 30 days ahead",
            "Runbook for Kafka broker replacement",
            "Move nightly ETL off the shared node pool",
            "Tune autoscaler for checkout-api",
            "Enable PITR on the ledger database",
            "Reduce log retention costs",
            "Investigate disk pressure on etl workers",
            "Patch CVE-2026-1042 in base images",
            "Document on-call handover checklist",
            "Capacity plan for Black Friday",
            "Migrate DNS to Route 53",
            "Clean up unused load balancers",
            "Set up synthetic checks for EU region",
            "Add SLO burn-rate alerts for payments",
        ],
        labels: &["oncall", "infra", "cost", "security", "observability"],
        components: &["kubernetes", "databases", "networking", "monitoring"],
    },
    Project {
        key: "MOB",
        name: "Mobile",
        issues: 18,
        lead: "erin",
        team: &["grace", "erin", "dave"],
        titles: &[
            "Crash on Android 14 when opening receipts",
            "Offline mode for order history",
            "Biometric login on iOS",
            "Reduce app size below 40 MB",
            "Push notification deep links",
            "Accessibility labels on checkout screen",
            "Migrate to SwiftUI navigation stack",
            "Fix dark mode contrast on settings",
            "Retry failed uploads in background",
        ],
        labels: &["ios", "android", "ux", "crash"],
        components: &["ios", "android"],
    },
    Project {
        key: "DATA",
        name: "Data Platform",
        issues: 16,
        lead: "hiro",
        team: &["hiro", "frank", "alice"],
        titles: &[
            "Partition events table by day",
            "dbt model for monthly recurring revenue",
            "Backfill churn metrics since 2024",
            "Schema registry for Kafka topics",
            "Deduplicate CDC events from orders",
            "Data quality checks on invoices",
            "Expose revenue dashboard to finance",
            "Reduce warehouse spend on ad-hoc queries",
        ],
        labels: &["etl", "warehouse", "quality", "finance"],
        components: &["pipelines", "warehouse"],
    },
];

/// OPS tickets already filed for PagerDuty incidents: (incident number, OPS issue number).
pub(super) const INCIDENT_TICKETS: [(u32, u32); 2] = [(2303, 12), (2306, 27)];

pub(super) fn project(key: &str) -> Option<&'static Project> {
    PROJECTS.iter().find(|p| p.key == key)
}

pub(super) struct Issue {
    pub(super) project: &'static Project,
    pub(super) key: String,
    pub(super) summary: String,
    pub(super) issue_type: &'static str,
    pub(super) status: &'static str,
    pub(super) priority: &'static str,
    pub(super) points: Option<i64>,
    pub(super) assignee: Option<&'static str>,
    pub(super) reporter: &'static str,
    pub(super) labels: Vec<String>,
    pub(super) component: &'static str,
    pub(super) created: String,
    pub(super) updated: String,
}

pub(super) fn issue(project: &'static Project, n: u32) -> Issue {
    let key = format!("{}-{n}", project.key);
    let seed = format!("jira/{key}");
    let k = |what: &str| format!("{seed}/{what}");
    let status = pick(
        &[
            "Open",
            "Open",
            "Open",
            "Open",
            "In Progress",
            "In Progress",
            "In Review",
            "Done",
            "Done",
            "Done",
        ],
        &k("status"),
    );
    let priority = pick(
        &["P0", "P1", "P1", "P1", "P1", "P2", "P2", "P2", "P3", "P3"],
        &k("importance"),
    );
    let issue_type = pick(
        &["Story", "Story", "Story", "Bug", "Bug", "Task", "Task"],
        &k("type"),
    );
    let points = match issue_type {
        "Story" => Some(pick(&[1, 2, 3, 5, 8, 13], &k("points"))),
        "Task" => Some(pick(&[1, 2, 3], &k("points"))),
        _ if hash(&k("estimated")).is_multiple_of(2) => None,
        _ => Some(pick(&[1, 2, 3, 5], &k("points"))),
    };
    let assignee = Some(pick(project.team, &k("assignee"))).filter(|a| !a.is_empty());
    let titles = project.titles;
    let title = titles[(n as usize - 1) % titles.len()];
    let mut summary = if n as usize > titles.len() {
        format!("{title} (follow-up)")
    } else {
        title.to_string()
    };
    let mut labels: Vec<String> = Vec::new();
    for i in 0..hash(&k("labels")) % 3 {
        let l = pick(project.labels, &k(&format!("label{i}")));
        if !labels.iter().any(|x| x == l) {
            labels.push(l.to_string());
        }
    }
    if project.key == "OPS"
        && let Some((incident, _)) = INCIDENT_TICKETS.iter().find(|(_, t)| *t == n)
    {
        labels = vec![format!("pd-{incident}"), "incident".into()];
        if let Some(inc) = INCIDENTS.iter().find(|i| i.number == *incident) {
            summary = format!("[PD-{incident}] {}", inc.title);
        }
    }
    let age = i64::from(project.issues - n) * 3 + between(&k("age"), 0, 2) + 5;
    let touched = if status == "Done" {
        between(&k("touched"), 2, age.min(30))
    } else {
        between(&k("touched"), 0, 6)
    };
    Issue {
        project,
        key,
        summary,
        issue_type,
        status,
        priority,
        points,
        assignee,
        reporter: pick(&["alice", "bob", "carol", "frank", "grace"], &k("reporter")),
        labels,
        component: pick(project.components, &k("component")),
        created: date(today() - age),
        updated: date(today() - touched.min(age)),
    }
}

pub(super) fn issue_by_key(key: &str) -> Option<Issue> {
    let (p, n) = key.split_once('-')?;
    let p = project(p)?;
    let n: u32 = n.parse().ok()?;
    (1..=p.issues).contains(&n).then(|| issue(p, n))
}

pub(super) fn issue_summary(i: &Issue) -> Value {
    json!({
        "key": i.key,
        "summary": i.summary,
        "status": i.status,
        "issue_type": i.issue_type,
        "assignee": i.assignee,
        "updated": i.updated,
    })
}

pub(super) fn issue_full(i: &Issue, expand: &[&str]) -> Value {
    let sprint = (i.status != "Done" && i.project.key != "OPS").then(|| {
        json!({"id": 140 + i.project.key.len(), "name": format!("{} Sprint 14", i.project.key), "state": "active"})
    });
    let mut m = json!({
        "id": (10_000 + hash(&i.key) % 90_000).to_string(),
        "key": i.key,
        "url": format!("https://acme.atlassian.net/browse/{}", i.key),
        "summary": i.summary,
        "description": format!("{}. Context and acceptance criteria are in the linked design doc; ping #{} with questions.", i.summary, i.project.name.to_lowercase().replace(' ', "-")),
        "issue_type": i.issue_type,
        "status": i.status,
        "priority": i.priority,
        "story_points": i.points,
        "assignee": i.assignee.map_or(Value::Null, user_ref),
        "reporter": user_ref(i.reporter),
        "labels": i.labels,
        "components": [i.component],
        "sprint": sprint,
        "created": i.created,
        "updated": i.updated,
    });
    if expand.contains(&"comments") {
        m["comments"] = json!([
            {"author": i.reporter, "created": i.created, "body": "Adding this to the backlog; see the linked doc."},
            {"author": i.assignee.unwrap_or("grace"), "created": i.updated, "body": "Started looking into it."},
        ]);
    }
    if expand.contains(&"changelog") {
        m["changelog"] = json!([{"field": "status", "from": "Open", "to": i.status, "author": i.assignee.unwrap_or(i.reporter), "created": i.updated}]);
    }
    if expand.contains(&"transitions") {
        m["transitions"] = json!(["Start Progress", "Request Review", "Done"]);
    }
    m
}

pub(super) fn jira_projects() -> Value {
    let projects: Vec<Value> = PROJECTS
        .iter()
        .map(|p| json!({"key": p.key, "name": p.name, "lead": p.lead, "issue_count": p.issues, "url": format!("https://acme.atlassian.net/browse/{}", p.key)}))
        .collect();
    json!({ "projects": projects })
}

pub(super) fn no_project(key: &str) -> String {
    format!("project '{key}' does not exist or you do not have permission to see it")
}

pub(super) fn jira_list(a: &Args<'_>) -> Result<Value, String> {
    let p = project(a.req("project")).ok_or_else(|| no_project(a.req("project")))?;
    let f = a.sub("filters");
    let labels = f.strs("labels");
    let matching: Vec<Issue> = (1..=p.issues)
        .map(|n| issue(p, n))
        .filter(|i| f.str("status").is_none_or(|s| s == i.status))
        .filter(|i| match f.str("assignee") {
            None => true,
            Some("unassigned") => i.assignee.is_none(),
            Some(who) => i.assignee == Some(who),
        })
        .filter(|i| labels.iter().all(|l| i.labels.iter().any(|x| x == l)))
        .filter(|i| f.str("issue_type").is_none_or(|t| t == i.issue_type))
        .filter(|i| {
            f.str("updated_after")
                .is_none_or(|d| i.updated.as_str() >= d)
        })
        .collect();
    let offset: usize = match a.str("cursor") {
        Some(c) => c.parse().map_err(|_| format!("invalid cursor '{c}'"))?,
        None => 0,
    };
    let limit = a.int("limit").unwrap_or(20) as usize;
    let shown: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(issue_summary)
        .collect();
    let next = offset + shown.len();
    Ok(json!({
        "issues": shown,
        "total": matching.len(),
        "start_at": offset,
        "next_cursor": (next < matching.len()).then(|| next.to_string()),
    }))
}

pub(super) fn jira_get(a: &Args<'_>) -> Result<Value, String> {
    let key = a.req("issue_key");
    let i = issue_by_key(key).ok_or_else(|| {
        format!("Issue {key} does not exist or you do not have permission to see it.")
    })?;
    Ok(issue_full(&i, &a.strs("expand")))
}

pub(super) fn jira_create(a: &Args<'_>) -> Result<Value, String> {
    let p = project(a.req("project")).ok_or_else(|| no_project(a.req("project")))?;
    let summary = a.req("summary");
    if summary.trim().is_empty() {
        return Err("summary must not be empty".into());
    }
    let labels = a.strs("labels");
    if let Some(bad) = labels.iter().find(|l| l.contains(' ')) {
        return Err(format!("label '{bad}' must not contain spaces"));
    }
    if let Some(who) = a.str("assignee")
        && person(who).is_none()
    {
        return Err(format!("user '{who}' does not exist"));
    }
    let n = p.issues + 1 + (hash(&format!("jira/new/{}/{summary}", p.key)) % 40) as u32;
    let key = format!("{}-{n}", p.key);
    Ok(json!({
        "id": (10_000 + hash(&key) % 90_000).to_string(),
        "key": key,
        "url": format!("https://acme.atlassian.net/browse/{key}"),
        "summary": summary,
        "issue_type": a.req("issue_type"),
        "status": "Open",
        "priority": a.str("priority").unwrap_or("P2"),
        "story_points": a.int("story_points"),
        "assignee": a.str("assignee").map_or(Value::Null, user_ref),
        "labels": labels,
        "created": stamp(now_unix()),
    }))
}

// ---------------------------------------------------------------------------
// Slack
// ---------------------------------------------------------------------------

/// (name, topic, members, private, archived)
pub(super) const CHANNELS: [(&str, &str, i64, bool, bool); 12] = [
    (
        "general",
        "Company-wide announcements and work-based matters",
        214,
        false,
        false,
    ),
    (
        "engineering",
        "All things engineering. Deploy freezes are announced here.",
        96,
        false,
        false,
    ),
    (
        "eng-standup",
        "Async standup: yesterday / today / blockers, one message a day",
        23,
        false,
        false,
    ),
    (
        "billing",
        "Invoices, dunning and payment ops. Finance on-call: see pinned",
        18,
        false,
        false,
    ),
    (
        "incidents",
        "Active incidents only. Start a thread per incident.",
        131,
        false,
        false,
    ),
    (
        "payments-oncall",
        "Payments on-call handover and pages",
        9,
        true,
        false,
    ),
    ("deploys", "Deploy notifications from CI", 77, false, false),
    (
        "support-escalations",
        "Tier-2 escalations from support",
        35,
        false,
        false,
    ),
    ("design", "Design reviews and Figma links", 28, false, false),
    ("random", "Non-work banter", 198, false, false),
    (
        "sales",
        "Deals, renewals and customer news",
        41,
        false,
        false,
    ),
    (
        "q4-launch",
        "Launch coordination (archived)",
        52,
        false,
        true,
    ),
];

pub(super) fn channel_id(name: &str) -> String {
    ident("C0", &format!("slack/channel/{name}"), 9, UPPER)
}

pub(super) fn channel_by_id(
    id: &str,
) -> Option<&'static (&'static str, &'static str, i64, bool, bool)> {
    CHANNELS.iter().find(|c| channel_id(c.0) == id)
}

pub(super) fn slack_channels(a: &Args<'_>) -> Value {
    let exclude = a.bool("exclude_archived").unwrap_or(true);
    let limit = a.int("limit").unwrap_or(100) as usize;
    let channels: Vec<Value> = CHANNELS
        .iter()
        .filter(|c| !(exclude && c.4))
        .take(limit)
        .map(|(name, topic, members, private, archived)| {
            let creator = slack_user(pick(OWNERS, &format!("slack/creator/{name}")));
            let created =
                now_unix() - between(&format!("slack/created/{name}"), 200, 1500) * 86_400;
            json!({
                "id": channel_id(name),
                "name": name,
                "is_private": private,
                "is_archived": archived,
                "created": created,
                "creator": creator,
                "topic": {"value": topic, "creator": creator, "last_set": created + 86_400},
                "num_members": members,
            })
        })
        .collect();
    json!({"ok": true, "channels": channels, "response_metadata": {"next_cursor": ""}})
}

/// Sprint issues the standup talks about.
pub(super) const STANDUP_ISSUES: [u32; 9] = [3, 7, 9, 12, 15, 19, 23, 31, 36];

pub(super) const STANDUP: [&str; 8] = [
    "Yesterday: finished {a}. Today: picking up {b}, no blockers.",
    "Still on {a}, the migration is slower than expected. Also reviewing {b}.",
    "Shipped {a} to staging. Next up: {b} and {c}.",
    "Blocked on {a} (waiting for infra). Meanwhile pairing with <@{u}> on {b}.",
    "OOO this afternoon; {a} handed over to <@{u}>.",
    "Reminder: retro at 3pm today, bring your notes :memo:",
    "Today: code review day, mostly {a} and {b}.",
    "{a}: root cause found, fix is in review. {b} next.",
];

pub(super) const CHATTER: [&str; 6] = [
    "Deploy of {s} v2.{n}.0 to prod finished :rocket:",
    "Can someone take a look at the {s} dashboard? p99 looks odd since 9am",
    "FYI: {s} latency back to normal after the rollback",
    "Heads up: maintenance window tonight 22:00 UTC for {s}",
    "Thanks <@{u}> for jumping on that so quickly :pray:",
    "Is anyone else seeing 502s from {s} in staging?",
];

pub(super) fn slack_message(channel: &str, i: usize) -> Value {
    let k = format!("slack/{channel}/{i}");
    let author = pick(&OWNERS[..7], &format!("{k}/author"));
    let other = pick(OWNERS, &format!("{k}/other"));
    let jira = |slot: &str| format!("ENG-{}", pick(&STANDUP_ISSUES, &format!("{k}/{slot}")));
    let text = if channel == "eng-standup" {
        pick(&STANDUP, &k)
            .replace("{a}", &jira("a"))
            .replace("{b}", &jira("b"))
            .replace("{c}", &jira("c"))
            .replace("{u}", &slack_user(other))
    } else {
        pick(&CHATTER, &k)
            .replace("{s}", pick(SERVICES, &format!("{k}/service")))
            .replace("{n}", &between(&format!("{k}/n"), 10, 40).to_string())
            .replace("{u}", &slack_user(other))
    };
    let secs = now_unix() - 1800 - i as i64 * 21_000 - between(&format!("{k}/jitter"), 0, 900);
    let mut m = json!({
        "type": "message",
        "user": slack_user(author),
        "text": text,
        "ts": format!("{secs}.{:06}", hash(&format!("{k}/ts")) % 1_000_000),
    });
    match hash(&format!("{k}/extra")) % 4 {
        0 => {
            m["reactions"] = json!([{"name": pick(&["eyes", "+1", "white_check_mark"], &format!("{k}/r")), "count": between(&format!("{k}/rc"), 1, 5)}])
        }
        1 => m["reply_count"] = json!(between(&format!("{k}/replies"), 1, 6)),
        _ => {}
    }
    m
}

pub(super) fn channel_not_found() -> String {
    "channel_not_found: the channel ID does not exist or the bot is not a member".into()
}

pub(super) fn slack_history(a: &Args<'_>) -> Result<Value, String> {
    let channel = channel_by_id(a.req("channel_id")).ok_or_else(channel_not_found)?;
    let total = 30;
    let limit = a.int("limit").unwrap_or(10) as usize;
    let messages: Vec<Value> = (0..total.min(limit))
        .map(|i| slack_message(channel.0, i))
        .collect();
    Ok(json!({"ok": true, "messages": messages, "has_more": limit < total}))
}

pub(super) fn slack_post(a: &Args<'_>) -> Result<Value, String> {
    let id = a.req("channel_id");
    channel_by_id(id).ok_or_else(channel_not_found)?;
    let text = a.req("text");
    if text.trim().is_empty() {
        return Err("no_text: the message text is empty".into());
    }
    let h = hash(&format!("slack/post/{id}/{text}"));
    let ts = format!(
        "{}.{:06}",
        now_unix() + (h % 600) as i64,
        (h >> 20) % 1_000_000
    );
    Ok(json!({
        "ok": true,
        "channel": id,
        "ts": ts,
        "message": {"type": "message", "subtype": "bot_message", "bot_id": "B07TOLLGATE", "text": text, "ts": ts},
    }))
}

// ---------------------------------------------------------------------------
// Stripe
// ---------------------------------------------------------------------------

/// (name, domain, city, country, account owner)
pub(super) const CUSTOMERS: [(&str, &str, &str, &str, &str); 15] = [
    (
        "Acme Logistics",
        "acmelogistics.com",
        "Chicago",
        "US",
        "frank",
    ),
    ("Globex Retail", "globex.com", "Springfield", "US", "grace"),
    ("Initech Software", "initech.com", "Austin", "US", "frank"),
    (
        "Umbrella Health",
        "umbrellahealth.com",
        "Boston",
        "US",
        "grace",
    ),
    ("Hooli Cloud", "hooli.com", "Palo Alto", "US", "frank"),
    (
        "Stark Manufacturing",
        "starkmfg.com",
        "Detroit",
        "US",
        "grace",
    ),
    (
        "Wayne Shipping",
        "wayneshipping.com",
        "Newark",
        "US",
        "frank",
    ),
    ("Soylent Foods", "soylent.eu", "Rotterdam", "NL", "grace"),
    (
        "Vandelay Imports",
        "vandelay.com",
        "New York",
        "US",
        "frank",
    ),
    (
        "Pied Piper",
        "piedpiper.com",
        "San Francisco",
        "US",
        "grace",
    ),
    ("Wonka Confections", "wonka.co.uk", "London", "GB", "frank"),
    ("Tyrell Robotics", "tyrell.ai", "Los Angeles", "US", "grace"),
    (
        "Cyberdyne Systems",
        "cyberdyne.com",
        "Sunnyvale",
        "US",
        "frank",
    ),
    (
        "Massive Dynamic",
        "massivedynamic.com",
        "New York",
        "US",
        "grace",
    ),
    ("Oscorp Labs", "oscorp.com", "Jersey City", "US", "frank"),
];

pub(super) const INVOICES: usize = 34;

pub(super) fn customer_id(i: usize) -> String {
    ident("cus_", &format!("stripe/customer/{i}"), 14, ALNUM)
}

pub(super) struct Invoice {
    pub(super) id: String,
    pub(super) i: usize,
    pub(super) customer: usize,
    pub(super) status: &'static str,
    pub(super) amount: i64,
    pub(super) created: i64,
    pub(super) due: i64,
}

pub(super) fn invoice(i: usize) -> Invoice {
    let k = format!("stripe/invoice/{i}");
    let created = day_of("2026-01-05").expect("a date") + 2 * i as i64;
    Invoice {
        id: ident("in_", &k, 24, ALNUM),
        i,
        customer: (hash(&format!("{k}/customer")) % CUSTOMERS.len() as u64) as usize,
        status: pick(
            &[
                "open",
                "open",
                "open",
                "open",
                "paid",
                "paid",
                "paid",
                "paid",
                "draft",
                "void",
                "uncollectible",
            ],
            &format!("{k}/status"),
        ),
        amount: (400 + between(&format!("{k}/amount"), 0, 119) * 75) * 100,
        created,
        due: created + 30,
    }
}

pub(super) fn invoice_json(v: &Invoice) -> Value {
    let paid = if v.status == "paid" { v.amount } else { 0 };
    json!({
        "id": v.id,
        "object": "invoice",
        "number": (v.status != "draft").then(|| format!("INV-{}", 24_100 + v.i)),
        "customer": customer_id(v.customer),
        "amount_due": v.amount,
        "amount_paid": paid,
        "amount_remaining": v.amount - paid,
        "currency": "usd",
        "status": v.status,
        "collection_method": "send_invoice",
        "created": v.created * 86_400 + 14 * 3600,
        "due_date": date(v.due),
        "hosted_invoice_url": format!("https://invoice.stripe.com/i/acct_1Acme/{}", &v.id[3..15]),
    })
}

pub(super) fn customer_json(i: usize) -> Value {
    let (name, domain, city, country, owner) = CUSTOMERS[i];
    let k = format!("stripe/customer/{i}");
    let delinquent = (0..INVOICES)
        .map(invoice)
        .any(|v| v.customer == i && v.status == "open" && v.due < today());
    json!({
        "id": customer_id(i),
        "object": "customer",
        "name": name,
        "email": format!("billing@{domain}"),
        "phone": format!("+1 555 01{:02}", between(&format!("{k}/phone"), 0, 99)),
        "address": {"line1": format!("{} Market Street", between(&format!("{k}/street"), 10, 990)), "city": city, "country": country, "postal_code": format!("{:05}", between(&format!("{k}/zip"), 10_000, 99_999))},
        "balance": 0,
        "currency": "usd",
        "created": now_unix() - between(&format!("{k}/created"), 200, 1200) * 86_400,
        "delinquent": delinquent,
        "metadata": {"account_owner": email(owner), "plan": pick(&["growth", "enterprise", "starter"], &format!("{k}/plan"))},
        "tax_exempt": "none",
    })
}

pub(super) fn stripe_list(
    a: &Args<'_>,
    items: Vec<(String, Value)>,
    url: &str,
) -> Result<Value, String> {
    let offset = match a.str("starting_after") {
        Some(after) => {
            items
                .iter()
                .position(|(id, _)| id == after)
                .ok_or_else(|| format!("No such object: '{after}'"))?
                + 1
        }
        None => 0,
    };
    let limit = a.int("limit").unwrap_or(10) as usize;
    let (data, more) = page(&items, offset, limit);
    let data: Vec<Value> = data.into_iter().map(|(_, v)| v).collect();
    Ok(json!({"object": "list", "url": url, "has_more": more, "data": data}))
}

pub(super) fn stripe_customers(a: &Args<'_>) -> Result<Value, String> {
    let items: Vec<(String, Value)> = (0..CUSTOMERS.len())
        .map(|i| (customer_id(i), customer_json(i)))
        .filter(|(_, c)| a.str("email").is_none_or(|e| c["email"] == e))
        .collect();
    stripe_list(a, items, "/v1/customers")
}

pub(super) fn stripe_customer(a: &Args<'_>) -> Result<Value, String> {
    let id = a.req("customer");
    (0..CUSTOMERS.len())
        .find(|i| customer_id(*i) == id)
        .map(customer_json)
        .ok_or_else(|| format!("No such customer: '{id}'"))
}

pub(super) fn stripe_invoices(a: &Args<'_>) -> Result<Value, String> {
    let items: Vec<(String, Value)> = (0..INVOICES)
        .rev()
        .map(invoice)
        .filter(|v| a.str("status").is_none_or(|s| s == v.status))
        .filter(|v| {
            a.str("customer")
                .is_none_or(|c| c == customer_id(v.customer))
        })
        .filter(|_| {
            a.str("collection_method")
                .is_none_or(|m| m == "send_invoice")
        })
        .map(|v| (v.id.clone(), invoice_json(&v)))
        .collect();
    stripe_list(a, items, "/v1/invoices")
}

pub(super) fn stripe_invoice(a: &Args<'_>) -> Result<Value, String> {
    let id = a.req("invoice");
    let v = (0..INVOICES)
        .map(invoice)
        .find(|v| v.id == id)
        .ok_or_else(|| format!("No such invoice: '{id}'"))?;
    let mut out = invoice_json(&v);
    let seats = between(&format!("{id}/seats"), 5, 40);
    out["lines"] = json!({"object": "list", "data": [
        {"description": format!("{seats} × Platform seat"), "amount": v.amount - 50_000, "quantity": seats},
        {"description": "Support plan", "amount": 50_000, "quantity": 1},
    ]});
    Ok(out)
}

// ---------------------------------------------------------------------------
// PagerDuty
// ---------------------------------------------------------------------------

/// (name, on call at levels 1–3; "" when a level is empty)
pub(super) const POLICIES: [(&str, [&str; 3]); 5] = [
    ("Payments", ["carol", "frank", "grace"]),
    ("Payments API (legacy)", ["dave", "frank", ""]),
    ("Platform", ["bob", "hiro", "grace"]),
    ("Checkout", ["erin", "alice", "grace"]),
    ("Data Pipelines", ["hiro", "dave", ""]),
];

/// (name, escalation policy)
pub(super) const PD_SERVICES: [(&str, usize); 6] = [
    ("payments-gateway", 0),
    ("ledger-service", 0),
    ("checkout-api", 3),
    ("k8s-platform", 2),
    ("search-api", 2),
    ("etl-nightly", 4),
];

pub(super) struct Incident {
    pub(super) number: u32,
    pub(super) title: &'static str,
    pub(super) status: &'static str,
    pub(super) urgency: &'static str,
    pub(super) service: usize,
    pub(super) minutes_ago: i64,
}

pub(super) const INCIDENTS: [Incident; 8] = [
    Incident {
        number: 2301,
        title: "High error rate on payments-gateway (5xx > 5%)",
        status: "triggered",
        urgency: "high",
        service: 0,
        minutes_ago: 12,
    },
    Incident {
        number: 2302,
        title: "Disk usage above 90% on etl-worker-3",
        status: "acknowledged",
        urgency: "low",
        service: 5,
        minutes_ago: 95,
    },
    Incident {
        number: 2303,
        title: "Checkout latency p99 above 2s",
        status: "acknowledged",
        urgency: "high",
        service: 2,
        minutes_ago: 180,
    },
    Incident {
        number: 2304,
        title: "Ledger reconciliation job failed",
        status: "resolved",
        urgency: "high",
        service: 1,
        minutes_ago: 400,
    },
    Incident {
        number: 2305,
        title: "search-api pods crash-looping in prod",
        status: "triggered",
        urgency: "high",
        service: 4,
        minutes_ago: 41,
    },
    Incident {
        number: 2306,
        title: "Card authorization declines spiking for EU issuers",
        status: "acknowledged",
        urgency: "high",
        service: 0,
        minutes_ago: 260,
    },
    Incident {
        number: 2307,
        title: "TLS certificate for api.acme.dev expires in 7 days",
        status: "triggered",
        urgency: "low",
        service: 3,
        minutes_ago: 30,
    },
    Incident {
        number: 2308,
        title: "Node pool autoscaler at max capacity",
        status: "triggered",
        urgency: "high",
        service: 3,
        minutes_ago: 7,
    },
];

pub(super) fn policy_id(i: usize) -> String {
    ident("P", &format!("pd/policy/{}", POLICIES[i].0), 6, UPPER)
}

pub(super) fn service_id(i: usize) -> String {
    ident("P", &format!("pd/service/{}", PD_SERVICES[i].0), 6, UPPER)
}

pub(super) fn schedule(policy: usize, level: usize) -> Option<(String, String)> {
    (level < 2).then(|| {
        let name = format!("{} {}", POLICIES[policy].0, ["Primary", "Secondary"][level]);
        (ident("P", &format!("pd/schedule/{name}"), 6, UPPER), name)
    })
}

pub(super) fn incident_id(number: u32) -> String {
    ident("Q", &format!("pd/incident/{number}"), 13, UPPER)
}

pub(super) fn incident_json(inc: &Incident) -> Value {
    let (service, policy) = PD_SERVICES[inc.service];
    let oncall = POLICIES[policy].1[0];
    let assignments = if inc.status == "resolved" {
        json!([])
    } else {
        json!([{"at": stamp(now_unix() - inc.minutes_ago * 60 + 60), "assignee": {"id": pd_user_id(oncall), "type": "user_reference", "summary": person(oncall).map(|p| p.name)}}])
    };
    json!({
        "id": incident_id(inc.number),
        "type": "incident",
        "incident_number": inc.number,
        "title": inc.title,
        "status": inc.status,
        "urgency": inc.urgency,
        "created_at": stamp(now_unix() - inc.minutes_ago * 60),
        "service": {"id": service_id(inc.service), "type": "service_reference", "summary": service},
        "escalation_policy": {"id": policy_id(policy), "type": "escalation_policy_reference", "summary": POLICIES[policy].0},
        "assignments": assignments,
        "html_url": format!("https://acme.pagerduty.com/incidents/{}", incident_id(inc.number)),
    })
}

pub(super) fn pd_incidents(a: &Args<'_>) -> Value {
    let statuses = a.strs("statuses");
    let urgencies = a.strs("urgencies");
    let services = a.strs("service_ids");
    let limit = a.int("limit").unwrap_or(25) as usize;
    let mut matching: Vec<&Incident> = INCIDENTS
        .iter()
        .filter(|i| statuses.is_empty() || statuses.contains(&i.status))
        .filter(|i| urgencies.is_empty() || urgencies.contains(&i.urgency))
        .filter(|i| services.is_empty() || services.contains(&service_id(i.service).as_str()))
        .collect();
    matching.sort_by_key(|i| i.minutes_ago);
    let total = matching.len();
    let incidents: Vec<Value> = matching
        .into_iter()
        .take(limit)
        .map(incident_json)
        .collect();
    json!({"incidents": incidents, "limit": limit, "offset": 0, "more": total > limit, "total": total})
}

pub(super) fn pd_incident(a: &Args<'_>) -> Result<Value, String> {
    let id = a.req("incident_id");
    INCIDENTS
        .iter()
        .find(|i| incident_id(i.number) == id)
        .map(|i| json!({"incident": incident_json(i)}))
        .ok_or_else(|| format!("Incident Not Found: {id}"))
}

pub(super) fn pd_policies(a: &Args<'_>) -> Value {
    let query = a.str("query").unwrap_or("").to_lowercase();
    let users = a.strs("user_ids");
    let policies: Vec<Value> = POLICIES
        .iter()
        .enumerate()
        .filter(|(_, (name, _))| name.to_lowercase().contains(&query))
        .filter(|(_, (_, levels))| users.is_empty() || levels.iter().any(|l| !l.is_empty() && users.contains(&pd_user_id(l).as_str())))
        .map(|(i, (name, levels))| {
            let rules: Vec<Value> = levels
                .iter()
                .enumerate()
                .filter(|(_, l)| !l.is_empty())
                .map(|(level, login)| {
                    let target = match schedule(i, level) {
                        Some((id, summary)) => json!({"id": id, "type": "schedule_reference", "summary": summary}),
                        None => json!({"id": pd_user_id(login), "type": "user_reference", "summary": person(login).map(|p| p.name)}),
                    };
                    json!({"escalation_delay_in_minutes": 15 * (level + 1), "targets": [target]})
                })
                .collect();
            let services: Vec<Value> = PD_SERVICES
                .iter()
                .enumerate()
                .filter(|(_, (_, p))| *p == i)
                .map(|(s, (n, _))| json!({"id": service_id(s), "summary": n}))
                .collect();
            json!({
                "id": policy_id(i),
                "type": "escalation_policy",
                "name": name,
                "description": format!("Escalation for {name} services"),
                "num_loops": 2,
                "on_call_handoff_notifications": "if_has_services",
                "escalation_rules": rules,
                "services": services,
                "html_url": format!("https://acme.pagerduty.com/escalation_policies/{}", policy_id(i)),
            })
        })
        .collect();
    json!({"escalation_policies": policies, "more": false})
}

pub(super) fn pd_oncalls(a: &Args<'_>) -> Value {
    let policies = a.strs("escalation_policy_ids");
    let schedules = a.strs("schedule_ids");
    let users = a.strs("user_ids");
    let shift_start = stamp((today() - 3) * 86_400 + 9 * 3600);
    let shift_end = stamp((today() + 4) * 86_400 + 9 * 3600);
    let mut out = Vec::new();
    for (i, (name, levels)) in POLICIES.iter().enumerate() {
        if !policies.is_empty() && !policies.contains(&policy_id(i).as_str()) {
            continue;
        }
        for (level, login) in levels.iter().enumerate().filter(|(_, l)| !l.is_empty()) {
            let sched = schedule(i, level);
            if !schedules.is_empty()
                && !sched
                    .as_ref()
                    .is_some_and(|(id, _)| schedules.contains(&id.as_str()))
            {
                continue;
            }
            if !users.is_empty() && !users.contains(&pd_user_id(login).as_str()) {
                continue;
            }
            let (schedule, start, end) = match sched {
                Some((id, summary)) => (
                    json!({"id": id, "type": "schedule_reference", "summary": summary}),
                    json!(shift_start),
                    json!(shift_end),
                ),
                None => (Value::Null, Value::Null, Value::Null),
            };
            out.push(json!({
                "escalation_policy": {"id": policy_id(i), "type": "escalation_policy_reference", "summary": name},
                "escalation_level": level + 1,
                "schedule": schedule,
                "user": {"id": pd_user_id(login), "type": "user_reference", "summary": person(login).map(|p| p.name)},
                "start": start,
                "end": end,
            }));
        }
    }
    json!({"oncalls": out, "limit": 25, "offset": 0, "more": false})
}

pub(super) fn pd_user_json(p: &Person) -> Value {
    let id = pd_user_id(p.login);
    let team = ["Payments", "Platform", "Product Engineering"][p.login.len() % 3];
    json!({
        "id": id,
        "type": "user",
        "name": p.name,
        "email": email(p.login),
        "time_zone": p.tz,
        "role": if p.login == "grace" { "admin" } else { "user" },
        "job_title": p.title,
        "teams": [{"id": ident("P", &format!("pd/team/{}", p.login.len() % 3), 6, UPPER), "summary": team}],
        "contact_methods": [
            {"type": "email_contact_method", "summary": "Work", "address": email(p.login)},
            {"type": "phone_contact_method", "summary": "Mobile", "address": format!("+1555010{}", p.login.len())},
        ],
        "html_url": format!("https://acme.pagerduty.com/users/{id}"),
    })
}

pub(super) fn pd_user(a: &Args<'_>) -> Result<Value, String> {
    let id = a.req("user_id");
    PEOPLE
        .iter()
        .find(|p| pd_user_id(p.login) == id)
        .map(|p| json!({"user": pd_user_json(p)}))
        .ok_or_else(|| format!("User Not Found: {id}"))
}

pub(super) fn pd_users(a: &Args<'_>) -> Value {
    let q = a.str("query").unwrap_or("").to_lowercase();
    let users: Vec<Value> = PEOPLE
        .iter()
        .filter(|p| p.name.to_lowercase().contains(&q) || email(p.login).contains(&q))
        .take(a.int("limit").unwrap_or(25) as usize)
        .map(|p| json!({"id": pd_user_id(p.login), "name": p.name, "email": email(p.login), "job_title": p.title, "time_zone": p.tz}))
        .collect();
    json!({"users": users, "more": false})
}

// ---------------------------------------------------------------------------
// Calendar
// ---------------------------------------------------------------------------

/// (summary, minutes, has other attendees)
pub(super) const MEETINGS: [(&str, i64, bool); 12] = [
    ("Team standup", 15, true),
    ("1:1 with manager", 30, true),
    ("Incident review", 60, true),
    ("Vendor sync: Adyen", 45, true),
    ("Sprint planning", 60, true),
    ("Lunch", 60, false),
    ("Architecture review", 60, true),
    ("Interview: backend engineer", 45, true),
    ("Focus time", 120, false),
    ("Quarterly roadmap", 90, true),
    ("Security training", 30, true),
    ("Customer call: Globex", 30, true),
];

pub(super) fn day_events(login: &str, day: i64) -> Vec<Value> {
    if (day + 3).rem_euclid(7) >= 5 {
        return Vec::new();
    }
    let k = format!("gcal/{login}/{}", date(day));
    let mut t = 8 * 60 + 30 + between(&format!("{k}/first"), 0, 2) * 30;
    let mut used: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for j in 0..between(&format!("{k}/n"), 4, 7) {
        let kj = format!("{k}/{j}");
        let (summary, minutes, group) = pick(&MEETINGS, &kj);
        if used.contains(&summary) {
            continue;
        }
        if t + minutes > 18 * 60 {
            break;
        }
        used.push(summary);
        let start = day * 86_400 + t * 60;
        let organizer = if group {
            pick(OWNERS, &format!("{kj}/organizer"))
        } else {
            login
        };
        let mut event = json!({
            "id": ident("", &kj, 26, LOWER),
            "status": "confirmed",
            "html_link": format!("https://www.google.com/calendar/event?eid={}", ident("", &kj, 20, ALNUM)),
            "summary": summary,
            "start": {"date_time": stamp(start), "time_zone": "UTC"},
            "end": {"date_time": stamp(start + minutes * 60), "time_zone": "UTC"},
            "organizer": {"email": email(organizer)},
        });
        if group {
            let mine = if organizer == login {
                "accepted"
            } else {
                pick(
                    &[
                        "accepted",
                        "accepted",
                        "accepted",
                        "declined",
                        "tentative",
                        "needsAction",
                    ],
                    &format!("{kj}/me"),
                )
            };
            let mut attendees = vec![json!({"email": email(login), "response_status": mine})];
            for o in 0..between(&format!("{kj}/others"), 1, 3) {
                let who = pick(OWNERS, &format!("{kj}/other{o}"));
                if who != login && !attendees.iter().any(|a| a["email"] == email(who)) {
                    let status = if who == organizer {
                        "accepted"
                    } else {
                        pick(
                            &["accepted", "accepted", "declined", "needsAction"],
                            &format!("{kj}/rs{o}"),
                        )
                    };
                    attendees.push(json!({"email": email(who), "response_status": status}));
                }
            }
            event["attendees"] = json!(attendees);
            event["hangout_link"] = json!(format!(
                "https://meet.google.com/{}-{}-{}",
                ident("", &format!("{kj}/m1"), 3, b"abcdefghijkmnopqrstuvwxyz"),
                ident("", &format!("{kj}/m2"), 4, b"abcdefghijkmnopqrstuvwxyz"),
                ident("", &format!("{kj}/m3"), 3, b"abcdefghijkmnopqrstuvwxyz")
            ));
        }
        out.push(event);
        t += minutes + between(&format!("{kj}/gap"), 0, 2) * 15;
    }
    out
}

pub(super) fn cal_events(a: &Args<'_>) -> Result<Value, String> {
    let id = a.req("calendar_id");
    let login = if id == "primary" {
        "alice"
    } else {
        id.strip_suffix("@acme.dev").unwrap_or("")
    };
    let who = person(login).ok_or_else(|| format!("Not Found: calendar '{id}'"))?;
    let default_min = format!("{TODAY}T00:00:00Z");
    let time_min = a.str("time_min").unwrap_or(&default_min);
    let first = day_of(time_min).ok_or_else(|| format!("invalid time_min '{time_min}'"))?;
    let default_max = format!("{}T00:00:00Z", date(first + 1));
    let time_max = a.str("time_max").unwrap_or(&default_max);
    let last = day_of(time_max).ok_or_else(|| format!("invalid time_max '{time_max}'"))?;
    if last < first {
        return Err("time_max must not be before time_min".into());
    }
    let query = a.str("query").map(str::to_lowercase);
    let mut items: Vec<Value> = (first..=last.min(first + 31))
        .flat_map(|d| day_events(who.login, d))
        .filter(|e| {
            let start = e["start"]["date_time"].as_str().unwrap_or_default();
            start >= time_min && start < time_max
        })
        .filter(|e| {
            query.as_ref().is_none_or(|q| {
                e["summary"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase()
                    .contains(q)
            })
        })
        .collect();
    items.truncate(a.int("max_results").unwrap_or(250) as usize);
    Ok(
        json!({"kind": "calendar#events", "summary": email(who.login), "time_zone": who.tz, "items": items}),
    )
}

// ---------------------------------------------------------------------------
// GitHub
// ---------------------------------------------------------------------------

/// (repository, first pull request number, pull requests, workflow runs)
pub(super) const REPOS: [(&str, u64, u64, usize); 4] = [
    ("checkout-service", 301, 18, 10),
    ("platform", 120, 12, 14),
    ("web-app", 845, 10, 8),
    ("payments-api", 57, 8, 8),
];

/// checkout-service's pull requests: (title, branch, open, labels)
pub(super) const CHECKOUT_PRS: [(&str, &str, bool, &[&str]); 18] = [
    (
        "Add idempotency keys to POST /orders",
        "feat/order-idempotency",
        false,
        &["enhancement"],
    ),
    (
        "Bump stripe-go to v79",
        "deps/stripe-go-79",
        false,
        &["dependencies"],
    ),
    (
        "Fix double charge when 3DS times out",
        "fix/3ds-timeout-double-charge",
        true,
        &["bug", "release-blocker"],
    ),
    (
        "Refactor cart totals into pricing module",
        "refactor/pricing-module",
        true,
        &["needs-review"],
    ),
    (
        "Show estimated delivery date on confirmation page",
        "feat/delivery-eta",
        true,
        &["enhancement"],
    ),
    (
        "Retry inventory reservation on 409",
        "fix/inventory-409-retry",
        false,
        &["bug"],
    ),
    (
        "Apply EU VAT rounding per line item",
        "fix/eu-vat-rounding",
        true,
        &["bug", "release-blocker", "needs-review"],
    ),
    (
        "Add checkout funnel metrics",
        "feat/funnel-metrics",
        true,
        &["enhancement"],
    ),
    (
        "Remove legacy PayPal v1 integration",
        "chore/remove-paypal-v1",
        false,
        &["tech-debt"],
    ),
    (
        "Handle expired carts gracefully",
        "fix/expired-carts",
        true,
        &["bug"],
    ),
    (
        "Guard against negative discounts",
        "fix/negative-discounts",
        true,
        &["bug", "release-blocker"],
    ),
    (
        "Bump golang.org/x/net to 0.38",
        "deps/x-net-0.38",
        true,
        &["dependencies"],
    ),
    (
        "Feature flag for one-click checkout",
        "feat/one-click-flag",
        true,
        &["enhancement", "needs-review"],
    ),
    (
        "Fix currency formatting for JPY",
        "fix/jpy-format",
        false,
        &["bug", "release-blocker"],
    ),
    (
        "Document the checkout state machine",
        "docs/state-machine",
        true,
        &["documentation"],
    ),
    (
        "Block orders when fraud score > 90",
        "feat/fraud-block",
        true,
        &["release-blocker", "enhancement"],
    ),
    (
        "Speed up cart page queries",
        "perf/cart-queries",
        true,
        &["performance"],
    ),
    (
        "Upgrade to Go 1.24",
        "chore/go-1.24",
        true,
        &["dependencies", "needs-review"],
    ),
];

pub(super) const PR_TITLES: [&str; 8] = [
    "Bump dependencies",
    "Fix flaky integration test",
    "Add structured logging",
    "Improve error handling in client",
    "Update README with setup steps",
    "Add metrics for queue depth",
    "Refactor config loading",
    "Tighten input validation",
];

pub(super) const CHECKS: [&str; 5] = [
    "build",
    "unit-tests",
    "integration-tests",
    "lint",
    "e2e (chromium)",
];

pub(super) fn repo(a: &Args<'_>) -> Result<(usize, &'static str), String> {
    let (owner, name) = (a.req("owner"), a.req("repo"));
    REPOS
        .iter()
        .position(|r| owner == "acme" && r.0 == name)
        .map(|i| (i, REPOS[i].0))
        .ok_or_else(|| format!("Not Found: repository {owner}/{name} (404)"))
}

pub(super) struct Pull {
    pub(super) number: u64,
    pub(super) title: String,
    pub(super) branch: String,
    pub(super) open: bool,
    pub(super) labels: Vec<&'static str>,
    pub(super) author: &'static str,
    pub(super) sha: String,
    pub(super) created: i64,
}

pub(super) fn pull(repo: usize, j: u64) -> Pull {
    let (name, first, _, _) = REPOS[repo];
    let number = first + j;
    let k = format!("gh/{name}/pr/{number}");
    let (title, branch, open, labels) = if repo == 0 {
        let (t, b, o, l) = CHECKOUT_PRS[j as usize];
        (t.to_string(), b.to_string(), o, l.to_vec())
    } else {
        let t = pick(&PR_TITLES, &k);
        (
            t.to_string(),
            format!("{}-{number}", t.to_lowercase().replace(' ', "-")),
            !hash(&format!("{k}/open")).is_multiple_of(3),
            vec![pick(
                &["bug", "enhancement", "dependencies", "documentation"],
                &format!("{k}/label"),
            )],
        )
    };
    Pull {
        number,
        title,
        branch,
        open,
        labels,
        author: pick(&OWNERS[..7], &format!("{k}/author")),
        sha: ident("", &format!("{k}/sha"), 40, HEX),
        created: now_unix()
            - (REPOS[repo].2 - j) as i64 * 40_000
            - between(&format!("{k}/t"), 0, 30_000),
    }
}

pub(super) fn pull_json(name: &str, p: &Pull) -> Value {
    let labels: Vec<Value> = p.labels.iter().map(|l| json!({"name": l})).collect();
    json!({
        "number": p.number,
        "title": p.title,
        "state": if p.open { "open" } else { "closed" },
        "draft": hash(&format!("gh/{name}/{}/draft", p.number)).is_multiple_of(7),
        "user": {"login": p.author},
        "labels": labels,
        "head": {"ref": p.branch, "sha": p.sha},
        "base": {"ref": "main"},
        "created_at": stamp(p.created),
        "updated_at": stamp(p.created + between(&format!("gh/{name}/{}/upd", p.number), 600, 30_000)),
        "html_url": format!("https://github.com/acme/{name}/pull/{}", p.number),
    })
}

pub(super) fn gh_list_pulls(a: &Args<'_>) -> Result<Value, String> {
    let (r, name) = repo(a)?;
    let state = a.str("state").unwrap_or("open");
    let mut pulls: Vec<Pull> = (0..REPOS[r].2)
        .map(|j| pull(r, j))
        .filter(|p| state == "all" || (state == "open") == p.open)
        .filter(|p| {
            a.str("head")
                .is_none_or(|h| h.rsplit(':').next() == Some(p.branch.as_str()))
        })
        .filter(|_| a.str("base").is_none_or(|b| b == "main"))
        .collect();
    if a.str("direction") != Some("asc") {
        pulls.reverse();
    }
    let per_page = a.int("per_page").unwrap_or(30) as usize;
    let page_no = a.int("page").unwrap_or(1).max(1) as usize;
    let (shown, _) = page(
        &pulls.iter().map(|p| pull_json(name, p)).collect::<Vec<_>>(),
        (page_no - 1) * per_page,
        per_page,
    );
    Ok(json!({"total_count": pulls.len(), "pull_requests": shown}))
}

pub(super) fn gh_get_pull(a: &Args<'_>) -> Result<Value, String> {
    let (r, name) = repo(a)?;
    let n = a.int("pull_number").unwrap_or(0);
    let (_, first, count, _) = REPOS[r];
    if n < first as i64 || n >= (first + count) as i64 {
        return Err(format!("Not Found: pull request #{n} in acme/{name} (404)"));
    }
    let p = pull(r, n as u64 - first);
    let k = format!("gh/{name}/pr/{n}");
    let mut out = pull_json(name, &p);
    out["body"] = json!(format!(
        "{}.\n\nTesting: unit tests added; verified on staging.",
        p.title
    ));
    out["mergeable"] = json!(p.open && !hash(&format!("{k}/conflict")).is_multiple_of(4));
    out["additions"] = json!(between(&format!("{k}/add"), 3, 900));
    out["deletions"] = json!(between(&format!("{k}/del"), 0, 400));
    out["changed_files"] = json!(between(&format!("{k}/files"), 1, 30));
    out["commits"] = json!(between(&format!("{k}/commits"), 1, 12));
    out["requested_reviewers"] = json!([{"login": pick(OWNERS, &format!("{k}/reviewer"))}]);
    Ok(out)
}

pub(super) fn gh_check_runs(a: &Args<'_>) -> Result<Value, String> {
    let (_, name) = repo(a)?;
    let reference = a.req("ref");
    let k = format!("gh/{name}/checks/{reference}");
    let started = now_unix() - between(&format!("{k}/t"), 3_600, 90_000);
    let runs: Vec<Value> = CHECKS
        .iter()
        .enumerate()
        .filter(|(_, c)| a.str("check_name").is_none_or(|n| n == **c))
        .filter(|_| a.str("status").is_none_or(|s| s == "completed"))
        .map(|(i, check)| {
            let kc = format!("{k}/{check}");
            let conclusion = if hash(&kc).is_multiple_of(6) {
                "failure"
            } else if *check == "e2e (chromium)" && hash(&format!("{kc}/skip")).is_multiple_of(4) {
                "skipped"
            } else {
                "success"
            };
            let begin = started + i as i64 * 5;
            json!({
                "id": 30_000_000_000_u64 + hash(&kc) % 1_000_000_000,
                "name": check,
                "head_sha": reference,
                "status": "completed",
                "conclusion": conclusion,
                "started_at": stamp(begin),
                "completed_at": stamp(begin + between(&format!("{kc}/d"), 40, 900)),
                "app": {"slug": "github-actions"},
            })
        })
        .collect();
    Ok(json!({"total_count": runs.len(), "check_runs": runs}))
}

pub(super) fn gh_comment(a: &Args<'_>) -> Result<Value, String> {
    let (r, name) = repo(a)?;
    let n = a.int("issue_number").unwrap_or(0);
    let (_, first, count, _) = REPOS[r];
    if n >= (first + count) as i64 {
        return Err(format!("Not Found: issue #{n} in acme/{name} (404)"));
    }
    let body = a.req("body");
    if body.trim().is_empty() {
        return Err("Validation Failed: body cannot be blank (422)".into());
    }
    let id = 2_700_000_000_u64 + hash(&format!("gh/{name}/{n}/comment/{body}")) % 100_000_000;
    Ok(json!({
        "id": id,
        "html_url": format!("https://github.com/acme/{name}/pull/{n}#issuecomment-{id}"),
        "body": body,
        "user": {"login": "tollgate-bot[bot]"},
        "created_at": stamp(now_unix()),
    }))
}

/// (workflow name, file, jobs; deploy jobs run in sequence)
pub(super) const WORKFLOWS: [(&str, &str, &[&str]); 3] = [
    (
        "CI",
        "ci.yml",
        &[
            "lint",
            "build",
            "test (ubuntu-latest)",
            "test (macos-latest)",
        ],
    ),
    (
        "Deploy",
        "deploy.yml",
        &["build-image", "migrate-db", "deploy-staging", "smoke-tests"],
    ),
    (
        "Nightly e2e",
        "nightly-e2e.yml",
        &["e2e-chromium", "e2e-firefox", "report"],
    ),
];

pub(super) const BRANCHES: [&str; 4] = [
    "feat/ledger-export",
    "fix/retry-backoff",
    "chore/bump-deps",
    "release/2026.03",
];

pub(super) struct Run {
    pub(super) id: u64,
    pub(super) repo: usize,
    pub(super) i: usize,
    pub(super) workflow: usize,
    pub(super) branch: &'static str,
    pub(super) failed: bool,
    pub(super) created: i64,
}

pub(super) fn run(repo: usize, i: usize) -> Run {
    let k = format!("gh/{}/run/{i}", REPOS[repo].0);
    let main = hash(&format!("{k}/branch")) % 5 < 3;
    Run {
        id: 13_870_000_000 + repo as u64 * 10_000_000 + (100 - i as u64) * 1_117,
        repo,
        i,
        workflow: (hash(&format!("{k}/workflow")) % 3) as usize,
        branch: if main {
            "main"
        } else {
            pick(&BRANCHES, &format!("{k}/which"))
        },
        failed: hash(&format!("{k}/failed")) % 10 < 3,
        created: now_unix() - 1_800 - i as i64 * 5_400 - between(&format!("{k}/t"), 0, 600),
    }
}

pub(super) fn run_json(r: &Run) -> Value {
    let (name, file, _) = WORKFLOWS[r.workflow];
    let repo = REPOS[r.repo].0;
    let k = format!("gh/{repo}/run/{}", r.i);
    json!({
        "id": r.id,
        "name": name,
        "display_title": pick(&PR_TITLES, &format!("{k}/title")),
        "run_number": 4_000 + REPOS[r.repo].3 - r.i,
        "event": if r.branch != "main" { "pull_request" } else if r.workflow == 2 { "schedule" } else { "push" },
        "status": "completed",
        "conclusion": if r.failed { "failure" } else { "success" },
        "head_branch": r.branch,
        "head_sha": ident("", &format!("{k}/sha"), 40, HEX),
        "path": format!(".github/workflows/{file}"),
        "run_attempt": 1,
        "created_at": stamp(r.created),
        "updated_at": stamp(r.created + between(&format!("{k}/d"), 300, 1_500)),
        "actor": {"login": pick(&OWNERS[..7], &format!("{k}/actor"))},
        "html_url": format!("https://github.com/acme/{repo}/actions/runs/{}", r.id),
    })
}

pub(super) fn gh_list_runs(a: &Args<'_>) -> Result<Value, String> {
    let (r, _) = repo(a)?;
    let runs: Vec<Value> = (0..REPOS[r].3)
        .map(|i| run(r, i))
        .filter(|x| {
            a.str("workflow_id").is_none_or(|w| {
                let (name, file, _) = WORKFLOWS[x.workflow];
                w == file || w == name || w == format!(".github/workflows/{file}")
            })
        })
        .map(|x| run_json(&x))
        .filter(|x| a.str("branch").is_none_or(|b| x["head_branch"] == b))
        .filter(|x| a.str("event").is_none_or(|e| x["event"] == e))
        .filter(|x| {
            a.str("status")
                .is_none_or(|s| x["status"] == s || x["conclusion"] == s)
        })
        .collect();
    let per_page = a.int("per_page").unwrap_or(30) as usize;
    let page_no = a.int("page").unwrap_or(1).max(1) as usize;
    let (shown, _) = page(&runs, (page_no - 1) * per_page, per_page);
    Ok(json!({"total_count": runs.len(), "workflow_runs": shown}))
}

/// A run's jobs: (name, conclusion). A failed run has at least one failed
/// job; in the sequential Deploy workflow the jobs after it are skipped.
pub(super) fn jobs(r: &Run) -> Vec<(&'static str, &'static str)> {
    let (_, _, names) = WORKFLOWS[r.workflow];
    let k = format!("gh/{}/run/{}/jobs", REPOS[r.repo].0, r.i);
    if !r.failed {
        return names.iter().map(|n| (*n, "success")).collect();
    }
    let forced = (hash(&k) % names.len() as u64) as usize;
    let mut out = Vec::new();
    let mut stopped = false;
    for (j, n) in names.iter().enumerate() {
        let conclusion = if stopped {
            "skipped"
        } else if j == forced || hash(&format!("{k}/{n}")).is_multiple_of(3) {
            "failure"
        } else {
            "success"
        };
        stopped |= conclusion == "failure" && r.workflow == 1;
        out.push((*n, conclusion));
    }
    out
}

pub(super) fn find_run(repo: usize, id: u64) -> Option<Run> {
    (0..REPOS[repo].3)
        .map(|i| run(repo, i))
        .find(|r| r.id == id)
}

pub(super) fn gh_list_jobs(a: &Args<'_>) -> Result<Value, String> {
    let (r, name) = repo(a)?;
    let id = a.int("run_id").unwrap_or(0) as u64;
    let run = find_run(r, id)
        .ok_or_else(|| format!("Not Found: workflow run {id} in acme/{name} (404)"))?;
    let jobs: Vec<Value> = jobs(&run)
        .into_iter()
        .enumerate()
        .map(|(j, (job, conclusion))| {
            let started = run.created + 20 + j as i64 * 90;
            let step = |n: &str, number: usize, c: &str| json!({"name": n, "status": "completed", "conclusion": c, "number": number});
            let ran = if conclusion == "skipped" { "skipped" } else { "success" };
            let steps = vec![
                step("Set up job", 1, ran),
                step("Checkout", 2, ran),
                step(&format!("Run {job}"), 3, conclusion),
                step("Post Checkout", 4, ran),
            ];
            json!({
                "id": run.id * 10 + j as u64,
                "run_id": run.id,
                "name": job,
                "status": "completed",
                "conclusion": conclusion,
                "started_at": stamp(started),
                "completed_at": stamp(started + between(&format!("{}/{job}", run.id), 30, 600)),
                "runner_name": format!("GitHub Actions {}", between(&format!("{}/{job}/runner", run.id), 2, 40)),
                "steps": steps,
            })
        })
        .collect();
    Ok(json!({"total_count": jobs.len(), "jobs": jobs}))
}

/// The error a failed job ends with.
pub(super) fn job_error(job: &str) -> &'static str {
    match job {
        "lint" => "ERROR clippy: this `if` has identical blocks at src/ledger/export.rs:212",
        "build" => "ERROR could not compile `ledger` (lib) due to 2 previous errors",
        "build-image" => {
            "ERROR failed to solve: process \"/bin/sh -c cargo build --release\" did not complete successfully: exit code: 101"
        }
        "migrate-db" => "ERROR relation \"invoice_items_v2\" already exists (SQLSTATE 42P07)",
        "deploy-staging" => {
            "ERROR deployment \"ledger\" exceeded its progress deadline (0 of 3 updated replicas available)"
        }
        "smoke-tests" => "ERROR GET https://staging.acme.dev/healthz returned 503 after 10 retries",
        "report" => "ERROR no test results found in artifacts/e2e-*.xml",
        j if j.starts_with("e2e") => {
            "ERROR Timeout 30000ms exceeded waiting for selector [data-test=pay-button]"
        }
        _ => {
            "ERROR test export::tests::rounds_half_even failed: assertion `left == right` failed (left: 4200, right: 4000)"
        }
    }
}

pub(super) fn gh_job_logs(a: &Args<'_>) -> Result<Value, String> {
    let (r, name) = repo(a)?;
    let job_id = a.int("job_id").unwrap_or(0) as u64;
    let not_found = || format!("Not Found: job {job_id} in acme/{name} (404)");
    let run = find_run(r, job_id / 10).ok_or_else(not_found)?;
    let all = jobs(&run);
    let (job, conclusion) = *all.get((job_id % 10) as usize).ok_or_else(not_found)?;
    let k = format!("gh/{name}/job/{job_id}");
    let mut t = run.created + 20 + (job_id % 10) as i64 * 90;
    let mut lines: Vec<String> = Vec::new();
    let mut log = |text: &str| {
        t += between(&format!("{k}/{}", lines.len()), 0, 9);
        let frac = hash(&format!("{k}/f{}", lines.len())) % 10_000_000;
        let ts = stamp(t);
        lines.push(format!("{}.{frac:07}Z {text}", &ts[..19]));
    };
    if conclusion == "skipped" {
        return Err(format!("job {job_id} was skipped and has no log"));
    }
    log("##[group]Run actions/checkout@v4");
    log(&format!("Syncing repository: acme/{name}"));
    log("##[endgroup]");
    log(&format!("##[group]Run {job}"));
    log(&format!(
        "Starting {job} on ubuntu-22.04 (runner image 20260308.1)"
    ));
    log("Restoring cache: hit (key: v3-deps-9f2c1e)");
    if conclusion == "failure" {
        if hash(&format!("{k}/transient")).is_multiple_of(2) {
            log("ERROR connection to postgres refused, retrying in 2s (attempt 1/3)");
            log("Connected to postgres after 1 retry");
        }
        log("WARN deprecated config key `timeout_ms`, use `timeout`");
        log(job_error(job));
        log("##[error]Process completed with exit code 1.");
    } else {
        log(&format!(
            "{job} finished in {}s",
            between(&format!("{k}/secs"), 20, 400)
        ));
        log("##[endgroup]");
    }
    log("Cleaning up orphan processes");
    let total = lines.len();
    if let Some(n) = a.int("tail_lines") {
        let n = (n as usize).min(total);
        lines.drain(..total - n);
    }
    Ok(
        json!({"job_id": job_id, "name": job, "conclusion": conclusion, "lines": lines, "line_count": total, "truncated": lines.len() < total}),
    )
}

// ---------------------------------------------------------------------------
