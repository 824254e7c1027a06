//! The extra servers of the larger catalogs: a few hand-written tools each,
//! then verb × resource combinations of the server's domain.

use super::*;

// Extra servers: hand-written tools, then verb × resource
// ---------------------------------------------------------------------------

/// A field of a generated resource, and how its values are made.
#[derive(Clone, Copy)]
pub(super) enum Fld {
    Pool(&'static [&'static str]),
    Int(i64, i64),
    Bool,
    Day,
}

/// A kind of object a server manages.
pub(super) struct Res {
    pub(super) singular: &'static str,
    pub(super) plural: &'static str,
    /// Prefix of generated IDs.
    pub(super) prefix: &'static str,
    pub(super) names: &'static [&'static str],
    pub(super) statuses: &'static [&'static str],
    pub(super) fields: &'static [(&'static str, Fld)],
}

/// A server beyond the core six.
pub(super) struct Domain {
    pub(super) server: &'static str,
    pub(super) product: &'static str,
    pub(super) host: &'static str,
    pub(super) style: Style,
    pub(super) sdk: Sdk,
    /// An argument every generated tool takes (name, description).
    pub(super) scope: Option<(&'static str, &'static str)>,
    /// Share of the extra tools.
    pub(super) weight: u64,
    pub(super) resources: &'static [Res],
    pub(super) hand: fn(&'static Domain) -> Vec<Spec>,
}

pub(super) fn domain_tools(d: &'static Domain) -> Vec<Spec> {
    let mut out = (d.hand)(d);
    for (i, res) in d.resources.iter().enumerate() {
        let sixth = [
            "search",
            "export",
            "archive",
            "clone",
            "history",
            "bulk_update",
        ][i % 6];
        for verb in ["list", "get", "create", "update", "delete", sixth] {
            let spec = generated(d, res, verb);
            if !out.iter().any(|s| s.def.name == spec.def.name) {
                out.push(spec);
            }
        }
    }
    out
}

pub(super) fn spell(style: Style, snake: &str) -> String {
    match style {
        Style::Snake => snake.to_string(),
        Style::Kebab => snake.replace('_', "-"),
        Style::Api => format!("API-{}", snake.replace('_', "-")),
    }
}

pub(super) fn generated(d: &'static Domain, res: &'static Res, verb: &str) -> Spec {
    let (s, p, product) = (
        res.singular.replace('_', " "),
        res.plural.replace('_', " "),
        d.product,
    );
    let variant = hash(&format!("{}/{}/{verb}", d.server, res.singular)) % 2;
    let id_param = format!("{}_id", res.singular);
    let mut props = Map::new();
    let mut required: Vec<String> = Vec::new();
    if let Some((scope, about)) = d.scope {
        props.insert(scope.into(), string(about));
    }
    let (snake, kind, description) = match verb {
        "list" => {
            let mut filters = Map::new();
            if !res.statuses.is_empty() {
                filters.insert(
                    "status".into(),
                    choice(res.statuses, &format!("Only {p} in this status")),
                );
            }
            filters.insert("owner".into(), bare("string"));
            filters.insert(
                "labels".into(),
                strings("Only results carrying all of these labels"),
            );
            filters.insert(
                "created_after".into(),
                json!({"type": "string", "format": "date-time"}),
            );
            props.insert(
                "filters".into(),
                json!({"type": "object", "properties": filters}),
            );
            props.insert(
                "limit".into(),
                integer_or("Maximum number of results to return", 1, 100, 25),
            );
            props.insert("cursor".into(), bare("string"));
            props.insert("sort".into(), json!({"type": "string", "enum": ["created_at", "updated_at", "name"], "default": "created_at"}));
            props.insert(
                "order".into(),
                json!({"type": "string", "enum": ["asc", "desc"], "default": "desc"}),
            );
            let text = if variant == 0 {
                format!(
                    "List {p} in {product}. Results are paginated: pass `cursor` from the previous response's `next_cursor` to get the next page."
                )
            } else {
                format!(
                    "Returns the {p} visible to the authenticated {product} user, newest first. Use `filters` to narrow by status, owner or labels; at most `limit` results come back per call."
                )
            };
            (format!("list_{}", res.plural), Kind::List, text)
        }
        "get" => {
            props.insert(id_param.clone(), string(&format!("ID of the {s}")));
            props.insert("include".into(), json!({"type": "array", "items": {"type": "string", "enum": ["owner", "labels", "history", "metrics"]}, "description": "Related data to embed"}));
            required.push(id_param.clone());
            let text = if variant == 0 {
                format!(
                    "Get a {s} by its ID. Returns the full record, including status, owner, timestamps and {product}-specific attributes."
                )
            } else {
                format!(
                    "Retrieve detailed information about a single {s}. Use `include` to embed related data in the response."
                )
            };
            (format!("get_{}", res.singular), Kind::Get, text)
        }
        "create" | "update" => {
            let creating = verb == "create";
            if !creating {
                props.insert(
                    id_param.clone(),
                    string(&format!("ID of the {s} to update")),
                );
                required.push(id_param.clone());
            }
            props.insert("name".into(), string(&format!("Name of the {s}")));
            props.insert("description".into(), bare("string"));
            if !creating && !res.statuses.is_empty() {
                props.insert("status".into(), choice(res.statuses, "New status"));
            }
            for (f, fld) in res.fields {
                let schema = match fld {
                    Fld::Pool(values) if values.len() <= 6 => choice(values, &title_case(f)),
                    Fld::Pool(_) => bare("string"),
                    Fld::Int(lo, hi) => json!({"type": "integer", "minimum": lo, "maximum": hi}),
                    Fld::Bool => bare("boolean"),
                    Fld::Day => string("Date, YYYY-MM-DD"),
                };
                props.insert((*f).into(), schema);
            }
            props.insert("labels".into(), strings("Labels to attach"));
            props.insert("metadata".into(), json!({"type": "object", "description": "Free-form key/value pairs", "additionalProperties": {"type": "string"}}));
            if creating {
                required.push("name".into());
                let text = format!(
                    "Create a new {s} in {product}. Returns the created {s} with its generated ID. Fails if a {s} with the same name already exists."
                );
                (format!("create_{}", res.singular), Kind::Create, text)
            } else {
                let text = format!(
                    "Update an existing {s}. Only the fields you pass are changed; omitted fields keep their current values."
                );
                (format!("update_{}", res.singular), Kind::Update, text)
            }
        }
        "delete" => {
            props.insert(
                id_param.clone(),
                string(&format!("ID of the {s} to delete")),
            );
            props.insert(
                "force".into(),
                boolean("Delete even if other objects still reference it", false),
            );
            required.push(id_param.clone());
            let text = format!(
                "Delete a {s}. This cannot be undone. Pass `force: true` to delete it even if other {product} objects still reference it."
            );
            (format!("delete_{}", res.singular), Kind::Delete, text)
        }
        "search" => {
            props.insert("query".into(), string("Search terms"));
            props.insert(
                "limit".into(),
                integer_or("Maximum number of results", 1, 50, 10),
            );
            required.push("query".into());
            let text = format!(
                "Full-text search across {p}. Matches names, descriptions and labels; results are ranked by relevance."
            );
            (format!("search_{}", res.plural), Kind::Search, text)
        }
        "export" => {
            props.insert(
                "format".into(),
                json!({"type": "string", "enum": ["csv", "json"], "default": "csv"}),
            );
            props.insert(
                "fields".into(),
                strings("Columns to include; all by default"),
            );
            let text = format!(
                "Export {p} as CSV or JSON. Large exports are generated asynchronously; the response holds a download URL that expires after one hour."
            );
            (format!("export_{}", res.plural), Kind::Action, text)
        }
        "archive" => {
            props.insert(id_param.clone(), string(&format!("ID of the {s}")));
            props.insert("reason".into(), bare("string"));
            required.push(id_param.clone());
            let text = format!(
                "Archive a {s}. Archived {p} are hidden from lists by default but can be restored."
            );
            (format!("archive_{}", res.singular), Kind::Action, text)
        }
        "clone" => {
            props.insert(id_param.clone(), string(&format!("ID of the {s} to copy")));
            props.insert(
                "new_name".into(),
                string("Name of the copy; defaults to the original name with a suffix"),
            );
            required.push(id_param.clone());
            let text = format!("Create a copy of an existing {s}, optionally under a new name.");
            (format!("clone_{}", res.singular), Kind::Create, text)
        }
        "history" => {
            props.insert(id_param.clone(), string(&format!("ID of the {s}")));
            props.insert(
                "limit".into(),
                integer_or("Maximum number of changes", 1, 100, 20),
            );
            required.push(id_param.clone());
            let text = format!(
                "Get the change history of a {s}: who changed what and when, newest first."
            );
            (format!("get_{}_history", res.singular), Kind::List, text)
        }
        _ => {
            props.insert("ids".into(), json!({"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 100, "description": format!("IDs of the {p} to update")}));
            let mut changes = Map::new();
            if !res.statuses.is_empty() {
                changes.insert("status".into(), choice(res.statuses, "New status"));
            }
            changes.insert("owner".into(), string("New owner"));
            changes.insert("labels".into(), strings("Labels to add"));
            props.insert(
                "changes".into(),
                json!({"type": "object", "properties": changes}),
            );
            required.push("ids".into());
            required.push("changes".into());
            let text = format!(
                "Update several {p} at once. Applies the same changes to every ID listed and returns the number updated with any per-item errors."
            );
            (format!("bulk_update_{}", res.plural), Kind::Action, text)
        }
    };
    let name = spell(d.style, &snake);
    let required: Vec<&str> = required.iter().map(String::as_str).collect();
    Spec {
        def: ToolDef {
            input_schema: finish(d.sdk, &name, Value::Object(props), &required),
            name,
            description,
        },
        kind,
        res,
        host: d.host,
    }
}

/// The servers a bigger catalog adds, in order.
pub(super) static DOMAINS: [Domain; 10] = [
    Domain {
        server: "kubernetes",
        product: "Kubernetes",
        host: "k8s.acme.dev",
        style: Style::Snake,
        sdk: Sdk::TypeScript,
        scope: Some(("namespace", "Kubernetes namespace; defaults to `default`")),
        weight: 13,
        resources: &K8S,
        hand: kubernetes_hand,
    },
    Domain {
        server: "postgres",
        product: "PostgreSQL",
        host: "db.acme.dev",
        style: Style::Snake,
        sdk: Sdk::Python,
        scope: Some((
            "database",
            "Database to connect to; defaults to the server's default database",
        )),
        weight: 10,
        resources: &PG,
        hand: postgres_hand,
    },
    Domain {
        server: "filesystem",
        product: "the file system",
        host: "files.acme.dev",
        style: Style::Snake,
        sdk: Sdk::TypeScript,
        scope: None,
        weight: 6,
        resources: &FS,
        hand: filesystem_hand,
    },
    Domain {
        server: "datadog",
        product: "Datadog",
        host: "app.datadoghq.com",
        style: Style::Kebab,
        sdk: Sdk::TypeScript,
        scope: None,
        weight: 12,
        resources: &DD,
        hand: datadog_hand,
    },
    Domain {
        server: "notion",
        product: "Notion",
        host: "www.notion.so",
        style: Style::Api,
        sdk: Sdk::TypeScript,
        scope: None,
        weight: 9,
        resources: &NOTION,
        hand: notion_hand,
    },
    Domain {
        server: "salesforce",
        product: "Salesforce",
        host: "acme.my.salesforce.com",
        style: Style::Snake,
        sdk: Sdk::Python,
        scope: None,
        weight: 11,
        resources: &SF,
        hand: salesforce_hand,
    },
    Domain {
        server: "s3",
        product: "Amazon S3",
        host: "s3.console.aws.amazon.com",
        style: Style::Snake,
        sdk: Sdk::Python,
        scope: Some(("bucket", "Name of the bucket")),
        weight: 7,
        resources: &S3,
        hand: s3_hand,
    },
    Domain {
        server: "gmail",
        product: "Gmail",
        host: "mail.google.com",
        style: Style::Snake,
        sdk: Sdk::TypeScript,
        scope: None,
        weight: 8,
        resources: &GMAIL,
        hand: gmail_hand,
    },
    Domain {
        server: "search",
        product: "the search service",
        host: "search.acme.dev",
        style: Style::Kebab,
        sdk: Sdk::TypeScript,
        scope: None,
        weight: 5,
        resources: &SEARCH,
        hand: search_hand,
    },
    Domain {
        server: "hr",
        product: "BambooHR",
        host: "acme.bamboohr.com",
        style: Style::Snake,
        sdk: Sdk::Python,
        scope: None,
        weight: 9,
        resources: &HR,
        hand: hr_hand,
    },
];

pub(super) const fn res(
    singular: &'static str,
    plural: &'static str,
    prefix: &'static str,
    names: &'static [&'static str],
    statuses: &'static [&'static str],
    fields: &'static [(&'static str, Fld)],
) -> Res {
    Res {
        singular,
        plural,
        prefix,
        names,
        statuses,
        fields,
    }
}

pub(super) const SERVICES: &[&str] = &[
    "checkout-api",
    "search-api",
    "payments-worker",
    "ledger",
    "web-frontend",
    "notification-service",
    "inventory-sync",
];

pub(super) static K8S: [Res; 9] = [
    res(
        "pod",
        "pods",
        "",
        &[
            "checkout-api-7d9f8b6c5-x2kqp",
            "search-api-5c7b9d4f8-mm2lw",
            "payments-worker-6f8d7c9b4-q9zrt",
            "ledger-6b5f9c7d8-h4nvj",
            "web-frontend-84c6d9b7f-tr5xd",
            "redis-0",
            "kafka-1",
        ],
        &[
            "Running",
            "Pending",
            "CrashLoopBackOff",
            "Succeeded",
            "Failed",
        ],
        &[
            (
                "node",
                Fld::Pool(&[
                    "ip-10-0-12-34.ec2.internal",
                    "ip-10-0-47-3.ec2.internal",
                    "ip-10-0-88-121.ec2.internal",
                ]),
            ),
            ("restarts", Fld::Int(0, 14)),
            (
                "pod_ip",
                Fld::Pool(&["10.0.12.57", "10.0.47.19", "10.0.88.140", "10.0.91.6"]),
            ),
        ],
    ),
    res(
        "deployment",
        "deployments",
        "",
        SERVICES,
        &["Available", "Progressing", "Degraded"],
        &[
            ("replicas", Fld::Int(1, 12)),
            (
                "image",
                Fld::Pool(&[
                    "ghcr.io/acme/checkout-api:2.14.1",
                    "ghcr.io/acme/search-api:1.9.0",
                    "ghcr.io/acme/ledger:3.2.7",
                ]),
            ),
            ("strategy", Fld::Pool(&["RollingUpdate", "Recreate"])),
        ],
    ),
    res(
        "service",
        "services",
        "",
        SERVICES,
        &[],
        &[
            (
                "type",
                Fld::Pool(&["ClusterIP", "LoadBalancer", "NodePort"]),
            ),
            ("port", Fld::Int(80, 9092)),
        ],
    ),
    res(
        "config_map",
        "config_maps",
        "",
        &[
            "checkout-config",
            "feature-flags",
            "nginx-conf",
            "otel-collector-config",
        ],
        &[],
        &[("keys", Fld::Int(1, 24))],
    ),
    res(
        "secret",
        "secrets",
        "",
        &[
            "db-credentials",
            "stripe-api-key",
            "tls-acme-dev",
            "registry-pull-secret",
        ],
        &[],
        &[
            (
                "type",
                Fld::Pool(&[
                    "Opaque",
                    "kubernetes.io/tls",
                    "kubernetes.io/dockerconfigjson",
                ]),
            ),
            ("keys", Fld::Int(1, 5)),
        ],
    ),
    res(
        "ingress",
        "ingresses",
        "",
        &["api-gateway", "web-frontend", "admin"],
        &[],
        &[
            (
                "host",
                Fld::Pool(&["api.acme.dev", "www.acme.dev", "admin.acme.dev"]),
            ),
            ("tls", Fld::Bool),
        ],
    ),
    res(
        "job",
        "jobs",
        "",
        &["db-migrate-2291", "backfill-currencies", "reindex-search"],
        &["Complete", "Running", "Failed"],
        &[
            ("completions", Fld::Int(1, 3)),
            ("duration_seconds", Fld::Int(12, 3600)),
        ],
    ),
    res(
        "cron_job",
        "cron_jobs",
        "",
        &[
            "nightly-etl",
            "invoice-reminders",
            "cert-renewal",
            "cleanup-tmp",
        ],
        &["Active", "Suspended"],
        &[
            (
                "schedule",
                Fld::Pool(&["0 2 * * *", "*/15 * * * *", "0 9 * * 1-5"]),
            ),
            ("last_schedule_time", Fld::Day),
        ],
    ),
    res(
        "node",
        "nodes",
        "",
        &[
            "ip-10-0-12-34.ec2.internal",
            "ip-10-0-47-3.ec2.internal",
            "ip-10-0-88-121.ec2.internal",
        ],
        &["Ready", "NotReady", "SchedulingDisabled"],
        &[
            (
                "instance_type",
                Fld::Pool(&["m6i.xlarge", "c6i.2xlarge", "r6i.large"]),
            ),
            (
                "zone",
                Fld::Pool(&["us-east-1a", "us-east-1b", "us-east-1c"]),
            ),
        ],
    ),
];

pub(super) static PG: [Res; 7] = [
    res(
        "role",
        "roles",
        "",
        &["app_rw", "app_ro", "analytics", "migrator", "replicator"],
        &[],
        &[
            ("can_login", Fld::Bool),
            ("connection_limit", Fld::Int(-1, 200)),
        ],
    ),
    res(
        "extension",
        "extensions",
        "",
        &[
            "pg_stat_statements",
            "pgcrypto",
            "postgis",
            "uuid-ossp",
            "pg_trgm",
        ],
        &[],
        &[("version", Fld::Pool(&["1.10", "1.3", "3.4.2", "1.1"]))],
    ),
    res(
        "replication_slot",
        "replication_slots",
        "",
        &["replica_1", "debezium_orders", "analytics_cdc"],
        &["active", "inactive"],
        &[
            ("lag_bytes", Fld::Int(0, 50_000_000)),
            ("plugin", Fld::Pool(&["pgoutput", "wal2json"])),
        ],
    ),
    res(
        "materialized_view",
        "materialized_views",
        "",
        &["daily_revenue", "active_customers", "inventory_snapshot"],
        &["populated", "stale"],
        &[
            ("rows", Fld::Int(100, 5_000_000)),
            ("last_refresh", Fld::Day),
        ],
    ),
    res(
        "publication",
        "publications",
        "",
        &["orders_pub", "billing_pub"],
        &[],
        &[("all_tables", Fld::Bool)],
    ),
    res(
        "sequence",
        "sequences",
        "",
        &["orders_id_seq", "invoices_id_seq", "events_id_seq"],
        &[],
        &[
            ("last_value", Fld::Int(1, 90_000_000)),
            ("increment", Fld::Int(1, 1)),
        ],
    ),
    res(
        "backup",
        "backups",
        "bk_",
        &["nightly", "pre-migration", "weekly"],
        &["completed", "running", "failed"],
        &[
            ("size_bytes", Fld::Int(1_000_000, 90_000_000_000)),
            ("method", Fld::Pool(&["pg_basebackup", "snapshot"])),
        ],
    ),
];

pub(super) static FS: [Res; 4] = [
    res(
        "archive",
        "archives",
        "arc_",
        &[
            "logs-2026-03.tar.gz",
            "reports-q1.zip",
            "backup-home.tar.zst",
        ],
        &["ready", "building"],
        &[
            ("size_bytes", Fld::Int(1024, 9_000_000_000)),
            ("format", Fld::Pool(&["zip", "tar.gz", "tar.zst"])),
        ],
    ),
    res(
        "snapshot",
        "snapshots",
        "snap_",
        &["before-upgrade", "nightly", "manual"],
        &["ready", "deleting"],
        &[(
            "path",
            Fld::Pool(&["/srv/data", "/home/projects", "/var/lib/app"]),
        )],
    ),
    res(
        "watch",
        "watches",
        "w_",
        &["config-changes", "uploads", "build-output"],
        &["active", "paused"],
        &[
            (
                "path",
                Fld::Pool(&["/etc/app", "/srv/uploads", "/home/projects/web/dist"]),
            ),
            ("recursive", Fld::Bool),
        ],
    ),
    res(
        "bookmark",
        "bookmarks",
        "bm_",
        &["docs", "infra", "scratch"],
        &[],
        &[(
            "path",
            Fld::Pool(&[
                "/home/projects/docs",
                "/home/projects/infra",
                "/tmp/scratch",
            ]),
        )],
    ),
];

pub(super) static DD: [Res; 8] = [
    res(
        "monitor",
        "monitors",
        "",
        &[
            "High 5xx rate on checkout-api",
            "Disk usage above 90%",
            "p99 latency > 2s on payments",
            "Kafka consumer lag",
        ],
        &["OK", "Alert", "Warn", "No Data"],
        &[
            (
                "type",
                Fld::Pool(&["metric alert", "log alert", "query alert", "service check"]),
            ),
            ("priority", Fld::Int(1, 5)),
        ],
    ),
    res(
        "dashboard",
        "dashboards",
        "",
        &[
            "Checkout overview",
            "Payments SLOs",
            "Kubernetes cluster",
            "Postgres performance",
        ],
        &[],
        &[
            ("layout_type", Fld::Pool(&["ordered", "free"])),
            ("widgets", Fld::Int(4, 40)),
        ],
    ),
    res(
        "slo",
        "slos",
        "",
        &[
            "Checkout availability",
            "Payments latency",
            "Search freshness",
        ],
        &["ok", "breached", "warning"],
        &[
            ("target", Fld::Int(95, 100)),
            ("timeframe", Fld::Pool(&["7d", "30d", "90d"])),
        ],
    ),
    res(
        "downtime",
        "downtimes",
        "",
        &[
            "Planned DB maintenance",
            "Node pool upgrade",
            "Vendor outage",
        ],
        &["active", "scheduled", "canceled"],
        &[(
            "scope",
            Fld::Pool(&["env:prod", "service:ledger", "host:etl-worker-3"]),
        )],
    ),
    res(
        "incident",
        "incidents",
        "",
        &[
            "Checkout 5xx spike",
            "Search index stale",
            "Elevated card declines",
        ],
        &["active", "stable", "resolved"],
        &[("severity", Fld::Pool(&["SEV-1", "SEV-2", "SEV-3"]))],
    ),
    res(
        "synthetic_test",
        "synthetic_tests",
        "",
        &["Login flow", "Checkout happy path", "API health"],
        &["live", "paused"],
        &[
            ("type", Fld::Pool(&["api", "browser"])),
            ("frequency_seconds", Fld::Int(60, 3600)),
        ],
    ),
    res(
        "notebook",
        "notebooks",
        "",
        &[
            "Postmortem: checkout outage",
            "Capacity planning Q2",
            "Latency investigation",
        ],
        &[],
        &[("cells", Fld::Int(2, 30))],
    ),
    res(
        "log_pipeline",
        "log_pipelines",
        "",
        &["nginx", "python-services", "kubernetes-events"],
        &[],
        &[("processors", Fld::Int(1, 12)), ("enabled", Fld::Bool)],
    ),
];

pub(super) static NOTION: [Res; 6] = [
    res(
        "page",
        "pages",
        "",
        &[
            "Q2 roadmap",
            "Onboarding checklist",
            "Incident runbook: payments",
            "Architecture decision records",
            "Team rituals",
        ],
        &[],
        &[("archived", Fld::Bool)],
    ),
    res(
        "database",
        "databases",
        "",
        &["Projects", "Meeting notes", "Hiring pipeline", "Bug triage"],
        &[],
        &[
            ("property_count", Fld::Int(3, 20)),
            ("is_inline", Fld::Bool),
        ],
    ),
    res(
        "block",
        "blocks",
        "",
        &[
            "paragraph",
            "heading_2",
            "to_do",
            "bulleted_list_item",
            "code",
        ],
        &[],
        &[("has_children", Fld::Bool)],
    ),
    res(
        "comment",
        "comments",
        "",
        &[
            "Looks good to me",
            "Can we add numbers here?",
            "Updated after the review",
        ],
        &[],
        &[("resolved", Fld::Bool)],
    ),
    res(
        "user",
        "users",
        "",
        &["Alice Chen", "Bob Okafor", "Carol Diaz", "Grace Lee"],
        &[],
        &[("type", Fld::Pool(&["person", "bot"]))],
    ),
    res(
        "template",
        "templates",
        "",
        &["Meeting notes", "Project brief", "Postmortem"],
        &[],
        &[("uses", Fld::Int(0, 300))],
    ),
];

pub(super) static SF: [Res; 8] = [
    res(
        "account",
        "accounts",
        "001",
        &[
            "Acme Logistics",
            "Globex Retail",
            "Initech Software",
            "Umbrella Health",
            "Hooli Cloud",
        ],
        &[],
        &[
            (
                "industry",
                Fld::Pool(&["Retail", "Healthcare", "Technology", "Logistics"]),
            ),
            ("annual_revenue", Fld::Int(1_000_000, 900_000_000)),
            ("employees", Fld::Int(10, 50_000)),
        ],
    ),
    res(
        "contact",
        "contacts",
        "003",
        &[
            "Maria Gonzalez",
            "Tom Becker",
            "Priya Nair",
            "Liam O'Brien",
            "Yuki Sato",
        ],
        &[],
        &[
            (
                "title",
                Fld::Pool(&["CFO", "VP Engineering", "Head of Procurement", "IT Manager"]),
            ),
            ("email_opt_out", Fld::Bool),
        ],
    ),
    res(
        "lead",
        "leads",
        "00Q",
        &["Jordan Blake", "Sam Rivera", "Alex Morgan", "Casey Kim"],
        &[
            "Open - Not Contacted",
            "Working - Contacted",
            "Closed - Converted",
            "Closed - Not Converted",
        ],
        &[
            (
                "lead_source",
                Fld::Pool(&["Web", "Partner", "Trade Show", "Referral"]),
            ),
            ("rating", Fld::Pool(&["Hot", "Warm", "Cold"])),
        ],
    ),
    res(
        "opportunity",
        "opportunities",
        "006",
        &[
            "Globex renewal 2026",
            "Initech expansion",
            "Umbrella pilot",
            "Hooli multi-year",
        ],
        &[
            "Prospecting",
            "Qualification",
            "Proposal",
            "Negotiation",
            "Closed Won",
            "Closed Lost",
        ],
        &[
            ("amount", Fld::Int(5_000, 2_000_000)),
            ("close_date", Fld::Day),
            ("probability", Fld::Int(0, 100)),
        ],
    ),
    res(
        "case",
        "cases",
        "500",
        &[
            "Invoice shows wrong VAT",
            "SSO login loop",
            "Export times out",
            "API rate limit too low",
        ],
        &["New", "Working", "Escalated", "Closed"],
        &[
            ("priority", Fld::Pool(&["High", "Medium", "Low"])),
            ("origin", Fld::Pool(&["Email", "Web", "Phone"])),
        ],
    ),
    res(
        "campaign",
        "campaigns",
        "701",
        &["Spring webinar", "Partner summit", "Q2 nurture"],
        &["Planned", "In Progress", "Completed"],
        &[
            ("budgeted_cost", Fld::Int(1_000, 200_000)),
            ("type", Fld::Pool(&["Webinar", "Email", "Conference"])),
        ],
    ),
    res(
        "task",
        "tasks",
        "00T",
        &["Follow up on proposal", "Send contract", "Schedule QBR"],
        &["Not Started", "In Progress", "Completed"],
        &[
            ("activity_date", Fld::Day),
            ("priority", Fld::Pool(&["High", "Normal"])),
        ],
    ),
    res(
        "quote",
        "quotes",
        "0Q0",
        &["Globex renewal quote", "Initech expansion quote"],
        &["Draft", "Presented", "Accepted", "Denied"],
        &[
            ("grand_total", Fld::Int(5_000, 2_000_000)),
            ("expiration_date", Fld::Day),
        ],
    ),
];

pub(super) static S3: [Res; 4] = [
    res(
        "lifecycle_rule",
        "lifecycle_rules",
        "",
        &["expire-tmp", "archive-logs-90d", "abort-incomplete-uploads"],
        &["Enabled", "Disabled"],
        &[
            ("expiration_days", Fld::Int(1, 3650)),
            ("prefix", Fld::Pool(&["tmp/", "logs/", ""])),
        ],
    ),
    res(
        "multipart_upload",
        "multipart_uploads",
        "",
        &[
            "exports/2026-03-11.parquet",
            "backups/db-full.dump",
            "media/raw/intro.mov",
        ],
        &["in_progress"],
        &[("parts", Fld::Int(1, 900))],
    ),
    res(
        "access_point",
        "access_points",
        "",
        &["analytics-ro", "etl-writer", "partner-share"],
        &[],
        &[("network_origin", Fld::Pool(&["VPC", "Internet"]))],
    ),
    res(
        "replication_rule",
        "replication_rules",
        "",
        &["to-us-west-2", "to-backup-account"],
        &["Enabled", "Disabled"],
        &[
            (
                "destination_bucket",
                Fld::Pool(&["acme-backup-usw2", "acme-dr"]),
            ),
            ("priority", Fld::Int(0, 10)),
        ],
    ),
];

pub(super) static GMAIL: [Res; 5] = [
    res(
        "label",
        "labels",
        "Label_",
        &["Invoices", "Customers/Globex", "Recruiting", "Newsletters"],
        &[],
        &[
            ("messages_total", Fld::Int(0, 5_000)),
            ("type", Fld::Pool(&["user", "system"])),
        ],
    ),
    res(
        "filter",
        "filters",
        "",
        &[
            "from:billing@stripe.com",
            "list:eng-announce",
            "subject:[JIRA]",
        ],
        &[],
        &[("action", Fld::Pool(&["add_label", "archive", "mark_read"]))],
    ),
    res(
        "draft",
        "drafts",
        "r-",
        &["Re: renewal terms", "Offsite agenda", "Weekly update"],
        &[],
        &[(
            "to",
            Fld::Pool(&["maria@globex.com", "team@acme.dev", "tom@initech.com"]),
        )],
    ),
    res(
        "thread",
        "threads",
        "",
        &[
            "Re: Q2 budget",
            "Invoice INV-24117 overdue",
            "Interview feedback: backend role",
        ],
        &[],
        &[("messages", Fld::Int(1, 18)), ("unread", Fld::Bool)],
    ),
    res(
        "forwarding_address",
        "forwarding_addresses",
        "",
        &["archive@acme.dev", "assistant@acme.dev"],
        &["accepted", "pending"],
        &[],
    ),
];

pub(super) static SEARCH: [Res; 3] = [
    res(
        "index",
        "indexes",
        "",
        &["products", "help-center", "orders"],
        &["ready", "building"],
        &[
            ("documents", Fld::Int(100, 9_000_000)),
            ("replicas", Fld::Int(0, 3)),
        ],
    ),
    res(
        "synonym_set",
        "synonym_sets",
        "",
        &["colors", "sizes", "brand-aliases"],
        &[],
        &[("entries", Fld::Int(1, 400))],
    ),
    res(
        "query_rule",
        "query_rules",
        "",
        &["boost-new-arrivals", "hide-out-of-stock", "promote-sale"],
        &["enabled", "disabled"],
        &[("priority", Fld::Int(1, 100))],
    ),
];

pub(super) static HR: [Res; 6] = [
    res(
        "department",
        "departments",
        "",
        &[
            "Engineering",
            "Finance",
            "Customer Success",
            "Sales",
            "People",
        ],
        &[],
        &[
            ("headcount", Fld::Int(3, 220)),
            (
                "cost_center",
                Fld::Pool(&["CC-100", "CC-200", "CC-310", "CC-420"]),
            ),
        ],
    ),
    res(
        "job_opening",
        "job_openings",
        "",
        &[
            "Senior Backend Engineer",
            "Account Executive",
            "Data Analyst",
            "SRE",
        ],
        &["Open", "On Hold", "Filled"],
        &[
            (
                "location",
                Fld::Pool(&["Remote (EU)", "Berlin", "New York", "Remote (US)"]),
            ),
            ("applicants", Fld::Int(0, 240)),
        ],
    ),
    res(
        "candidate",
        "candidates",
        "",
        &["Noah Fischer", "Emma Rossi", "Lucas Silva", "Mia Novak"],
        &["Applied", "Phone Screen", "Onsite", "Offer", "Rejected"],
        &[(
            "source",
            Fld::Pool(&["LinkedIn", "Referral", "Careers page"]),
        )],
    ),
    res(
        "performance_review",
        "performance_reviews",
        "",
        &["H1 2026 review", "Probation review", "H2 2025 review"],
        &["Not Started", "Self Review", "Manager Review", "Complete"],
        &[("rating", Fld::Int(1, 5))],
    ),
    res(
        "expense_report",
        "expense_reports",
        "",
        &["Berlin offsite", "Client dinner", "Conference travel"],
        &["Draft", "Submitted", "Approved", "Reimbursed"],
        &[
            ("total_cents", Fld::Int(1_000, 500_000)),
            ("currency", Fld::Pool(&["USD", "EUR", "GBP"])),
        ],
    ),
    res(
        "training_course",
        "training_courses",
        "",
        &[
            "Security awareness 2026",
            "Manager essentials",
            "GDPR basics",
        ],
        &[],
        &[
            ("duration_minutes", Fld::Int(15, 480)),
            ("mandatory", Fld::Bool),
        ],
    ),
];

/// What the core servers' tools answer with when they have no world data of
/// their own.
pub(super) static GH_MISC: Res = res(
    "item",
    "items",
    "",
    &[
        "acme/checkout-service",
        "acme/platform",
        "acme/web-app",
        "acme/payments-api",
    ],
    &["open", "closed"],
    &[("author", Fld::Pool(&["alice", "bob", "carol", "dave"]))],
);
pub(super) static JIRA_MISC: Res = res(
    "item",
    "items",
    "",
    &["ENG", "OPS", "MOB", "DATA"],
    &[],
    &[("author", Fld::Pool(&["alice", "bob", "carol", "frank"]))],
);
pub(super) static SLACK_MISC: Res = res(
    "item",
    "items",
    "",
    &["general", "engineering", "billing", "incidents"],
    &[],
    &[],
);
pub(super) static STRIPE_MISC: Res = res(
    "object",
    "data",
    "obj_",
    &["Acme Logistics", "Globex Retail", "Initech Software"],
    &["active", "canceled", "succeeded"],
    &[("livemode", Fld::Bool)],
);
pub(super) static PD_MISC: Res = res(
    "item",
    "items",
    "P",
    &["Payments", "Platform", "Checkout"],
    &["triggered", "acknowledged", "resolved"],
    &[],
);
pub(super) static CAL_MISC: Res = res(
    "item",
    "items",
    "",
    &["Team sync", "1:1", "Planning"],
    &["confirmed", "tentative"],
    &[],
);

pub(super) fn dom(d: &'static Domain) -> Builder {
    Builder::new(d.sdk, d.host)
}

pub(super) fn kubernetes_hand(d: &'static Domain) -> Vec<Spec> {
    use Kind::*;
    let ns = || string("Kubernetes namespace; defaults to `default`");
    let mut b = dom(d);
    b.tool(
        "get_pod_logs", Get, &K8S[0],
        "Get logs of a pod's container. For pods with several containers, `container` is required. Use `previous` to read the logs of the last terminated container, e.g. after a crash.",
        json!({
            "name": string("Pod name"),
            "namespace": ns(),
            "container": string("Container name"),
            "tail_lines": integer("Only the last N lines", 1, 10000),
            "since_seconds": integer("Only logs newer than this many seconds", 1, 604800),
            "previous": boolean("Logs of the previous, terminated container", false),
            "timestamps": boolean("Prefix each line with its timestamp", false),
        }),
        &["name"],
    )
    .tool(
        "exec_in_pod", Action, &K8S[0],
        "Run a command in a pod's container and return its output. The command is not run in a shell; pass it as a list of arguments.",
        json!({"name": string("Pod name"), "namespace": ns(), "command": strings("Command and arguments"), "container": bare("string"), "timeout_seconds": integer_or("Give up after this many seconds", 1, 600, 30)}),
        &["name", "command"],
    )
    .tool(
        "scale_deployment", Action, &K8S[1],
        "Scale a deployment to a number of replicas.",
        json!({"name": string("Deployment name"), "namespace": ns(), "replicas": integer("Desired replicas", 0, 500)}),
        &["name", "replicas"],
    )
    .tool(
        "rollout_restart", Action, &K8S[1],
        "Restart a deployment's pods with a rolling update, e.g. to pick up changed config maps or secrets.",
        json!({"name": string("Deployment name"), "namespace": ns()}),
        &["name"],
    )
    .tool(
        "rollout_status", Get, &K8S[1],
        "Get the rollout status of a deployment: updated, ready and available replicas and whether the rollout is complete.",
        json!({"name": string("Deployment name"), "namespace": ns(), "revision": integer("Revision to check; latest by default", 1, 100000)}),
        &["name"],
    )
    .tool(
        "apply_manifest", Action, &K8S[1],
        "Apply a YAML manifest, like `kubectl apply -f`. Several documents separated by `---` are allowed. Use `dry_run` to validate without changing anything.",
        json!({"manifest": string("YAML manifest"), "namespace": ns(), "dry_run": json!({"type": "string", "enum": ["none", "client", "server"], "default": "none"}), "field_manager": bare("string")}),
        &["manifest"],
    )
    .tool(
        "get_events", List, &K8S[0],
        "List events in a namespace, newest first, optionally for one object. Warning events explain most failed scheduling, image pulls and crash loops.",
        json!({
            "namespace": ns(),
            "field_selector": string("e.g. involvedObject.name=checkout-api-7d9f8b6c5-x2kqp"),
            "types": {"type": "array", "items": {"type": "string", "enum": ["Normal", "Warning"]}},
            "limit": integer_or("Maximum number of events", 1, 500, 50),
        }),
        &[],
    )
    .tool(
        "top_pods", List, &K8S[0],
        "CPU and memory usage of pods, from metrics-server.",
        json!({"namespace": ns(), "label_selector": string("e.g. app=checkout-api"), "sort_by": choice(&["cpu", "memory"], "Sort order")}),
        &[],
    );
    b.out
}

pub(super) fn postgres_hand(d: &'static Domain) -> Vec<Spec> {
    use Kind::*;
    let db = || string("Database to connect to; defaults to the server's default database");
    let mut b = dom(d);
    b.tool(
        "query", Search, &PG[5],
        "Run a read-only SQL query and return the rows. The query runs in a READ ONLY transaction with a 30 second statement timeout; use `params` for values instead of string concatenation.",
        json!({"sql": string("SQL to run"), "params": {"type": "array", "items": {}, "description": "Positional parameters ($1, $2, ...)"}, "database": db(), "max_rows": integer_or("Maximum rows returned", 1, 10000, 500)}),
        &["sql"],
    )
    .tool(
        "execute", Action, &PG[5],
        "Run a SQL statement that changes data or schema (INSERT, UPDATE, DDL). Returns the number of affected rows. Disabled on read-only connections.",
        json!({"sql": string("SQL statement"), "params": {"type": "array", "items": {}}, "database": db()}),
        &["sql"],
    )
    .tool(
        "list_schemas", List, &PG[5],
        "List the schemas of a database, with their owners.",
        json!({"database": db(), "include_system": boolean("Include pg_catalog and information_schema", false)}),
        &[],
    )
    .tool(
        "list_tables", List, &PG[3],
        "List tables in a schema with their estimated row counts and sizes.",
        json!({"schema": json!({"type": "string", "default": "public"}), "database": db()}),
        &[],
    )
    .tool(
        "describe_table", Get, &PG[3],
        "Describe a table: columns with types, nullability and defaults, primary key, indexes, foreign keys and check constraints.",
        json!({"table": string("Table name, optionally schema-qualified"), "database": db()}),
        &["table"],
    )
    .tool(
        "explain_query", Get, &PG[5],
        "Show the execution plan of a query. With `analyze` the query is actually run (inside a rolled-back transaction) and real timings are reported.",
        json!({"sql": bare("string"), "analyze": boolean("Run the query to report real timings", false), "format": json!({"type": "string", "enum": ["text", "json"], "default": "text"}), "database": db()}),
        &["sql"],
    )
    .tool(
        "list_active_queries", List, &PG[5],
        "List queries currently running, from pg_stat_activity, longest first.",
        json!({"min_duration_ms": integer_or("Only queries running at least this long", 0, 86400000, 1000), "database": db()}),
        &[],
    )
    .tool(
        "cancel_query", Action, &PG[5],
        "Cancel a running query by backend PID. With `terminate` the whole connection is closed instead.",
        json!({"pid": integer("Backend process ID", 1, 4194304), "terminate": boolean("Terminate the backend instead of cancelling the query", false)}),
        &["pid"],
    );
    b.out
}

pub(super) fn filesystem_hand(d: &'static Domain) -> Vec<Spec> {
    use Kind::*;
    let r = &FS[3];
    let path = || string("Path of the file, inside one of the allowed directories");
    let mut b = dom(d);
    b.tool(
        "read_file", Get, r,
        "Read the complete contents of a file from the file system. Handles various text encodings and provides detailed error messages if the file cannot be read. Use `head` or `tail` to read only part of a large file.",
        json!({"path": path(), "head": integer("Only the first N lines", 1, 1000000), "tail": integer("Only the last N lines", 1, 1000000)}),
        &["path"],
    )
    .tool(
        "read_multiple_files", Get, r,
        "Read the contents of several files at once. Failed reads do not stop the whole operation; each file's result is reported separately.",
        json!({"paths": strings("Paths of the files")}),
        &["paths"],
    )
    .tool(
        "write_file", Create, r,
        "Create a new file or completely overwrite an existing file with new content. Use with caution: it overwrites without warning.",
        json!({"path": path(), "content": bare("string")}),
        &["path", "content"],
    )
    .tool(
        "edit_file", Update, r,
        "Make line-based edits to a text file. Each edit replaces an exact sequence of lines with new content. Returns a git-style diff of the changes.",
        json!({
            "path": path(),
            "edits": {"type": "array", "items": {"type": "object", "properties": {"oldText": string("Text to search for; must match exactly"), "newText": string("Text to replace it with")}, "required": ["oldText", "newText"]}},
            "dryRun": boolean("Preview the changes as a diff without applying them", false),
        }),
        &["path", "edits"],
    )
    .tool(
        "create_directory", Create, r,
        "Create a directory, including missing parents. Succeeds silently if it already exists.",
        json!({"path": bare("string")}),
        &["path"],
    )
    .tool(
        "list_directory", List, r,
        "List the files and directories directly inside a path, each marked [FILE] or [DIR].",
        json!({"path": bare("string")}),
        &["path"],
    )
    .tool(
        "directory_tree", Get, r,
        "Get a recursive tree of files and directories as JSON. Each entry has a name, a type and, for directories, its children.",
        json!({"path": bare("string"), "exclude_patterns": strings("Glob patterns to skip, e.g. node_modules")}),
        &["path"],
    )
    .tool(
        "move_file", Action, r,
        "Move or rename a file or directory. Fails if the destination exists.",
        json!({"source": bare("string"), "destination": bare("string")}),
        &["source", "destination"],
    )
    .tool(
        "search_files", Search, r,
        "Recursively search for files and directories whose name matches a pattern. Case-insensitive; returns full paths.",
        json!({"path": string("Directory to start from"), "pattern": string("Text or glob to match names against"), "excludePatterns": strings("Glob patterns to skip")}),
        &["path", "pattern"],
    )
    .tool(
        "get_file_info", Get, r,
        "Get metadata of a file or directory: size, creation and modification times, permissions and type.",
        json!({"path": bare("string")}),
        &["path"],
    );
    b.out
}

pub(super) fn datadog_hand(d: &'static Domain) -> Vec<Spec> {
    use Kind::*;
    let mut b = dom(d);
    b.tool(
        "query-metrics", Search, &DD[0],
        "Query timeseries points of metrics for a time range, e.g. `avg:system.cpu.user{env:prod} by {host}`. Times are POSIX seconds.",
        json!({"query": string("Datadog metrics query"), "from": integer("Start, POSIX seconds", 0, 9999999999), "to": integer("End, POSIX seconds", 0, 9999999999)}),
        &["query", "from", "to"],
    )
    .tool(
        "search-logs", Search, &DD[7],
        "Search logs with the Datadog log query syntax, newest first. Returns each log's timestamp, service, status, host and message.",
        json!({
            "query": string("Log search query, e.g. service:checkout-api status:error"),
            "from": string("Start time: ISO 8601 or relative like now-15m"),
            "to": string("End time; defaults to now"),
            "limit": integer_or("Maximum number of logs", 1, 1000, 50),
            "sort": json!({"type": "string", "enum": ["timestamp", "-timestamp"], "default": "-timestamp"}),
            "indexes": strings("Log indexes to search"),
        }),
        &["query"],
    )
    .tool(
        "aggregate-logs", Search, &DD[7],
        "Count or aggregate logs matching a query, grouped by facets such as service or status.",
        json!({
            "query": bare("string"),
            "from": bare("string"),
            "to": bare("string"),
            "group_by": strings("Facets to group by, e.g. service"),
            "compute": {"type": "object", "properties": {"aggregation": {"type": "string", "enum": ["count", "avg", "sum", "min", "max", "pc99"]}, "metric": string("Measure to aggregate, e.g. @duration")}, "required": ["aggregation"]},
        }),
        &["query", "compute"],
    )
    .tool(
        "list-hosts", List, &DD[0],
        "List hosts reporting to Datadog with their apps, tags and last-reported time.",
        json!({"filter": string("Filter hosts by name, alias or tag"), "count": integer_or("Maximum number of hosts", 1, 1000, 100), "include_muted_hosts_data": boolean("Include mute status", true)}),
        &[],
    )
    .tool(
        "mute-host", Action, &DD[0],
        "Mute a host so that its monitors stop notifying, optionally until a given time.",
        json!({"hostname": bare("string"), "message": bare("string"), "end": integer("POSIX seconds at which the mute ends", 0, 9999999999), "override": boolean("Replace an existing mute's end time", false)}),
        &["hostname"],
    )
    .tool(
        "get-trace", Get, &DD[4],
        "Get all spans of an APM trace by trace ID, with their services, resources, durations and errors.",
        json!({"trace_id": bare("string")}),
        &["trace_id"],
    )
    .tool(
        "submit-metrics", Action, &DD[0],
        "Submit custom metric points. Points older than one hour or more than ten minutes in the future are rejected.",
        json!({"series": {"type": "array", "items": {"type": "object", "properties": {
            "metric": bare("string"),
            "type": {"type": "string", "enum": ["gauge", "count", "rate"]},
            "points": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}, "description": "[timestamp, value] pairs"},
            "tags": strings("e.g. env:prod"),
        }, "required": ["metric", "points"]}}}),
        &["series"],
    );
    b.out
}

pub(super) fn notion_hand(d: &'static Domain) -> Vec<Spec> {
    use Kind::*;
    let r = &NOTION[0];
    let mut b = dom(d);
    b.tool(
        "API-post-search", Search, r,
        "Search by title across the pages and databases shared with the integration. Sorts by last edited time by default.",
        json!({
            "query": string("The text that the API compares page and database titles against"),
            "filter": {"type": "object", "properties": {"property": {"type": "string", "enum": ["object"]}, "value": {"type": "string", "enum": ["page", "database"]}}, "required": ["property", "value"]},
            "sort": {"type": "object", "properties": {"direction": {"type": "string", "enum": ["ascending", "descending"]}, "timestamp": {"type": "string", "enum": ["last_edited_time"]}}},
            "start_cursor": bare("string"),
            "page_size": integer_or("The number of items from the full list to include in the response", 1, 100, 100),
        }),
        &[],
    )
    .tool(
        "API-retrieve-a-page", Get, r,
        "Retrieve a page's properties. The page's content is made of blocks; use API-get-block-children to read it.",
        json!({"page_id": string("Identifier for a Notion page"), "filter_properties": strings("Only return these property IDs")}),
        &["page_id"],
    )
    .tool(
        "API-patch-page", Update, r,
        "Update a page's properties, icon or cover, or archive it.",
        json!({"page_id": bare("string"), "properties": {"type": "object", "description": "Property values to set, keyed by name or ID"}, "archived": bare("boolean")}),
        &["page_id"],
    )
    .tool(
        "API-post-page", Create, r,
        "Create a page as a child of a page or a database. In a database, `properties` must match the database's schema.",
        json!({
            "parent": {"type": "object", "properties": {"page_id": bare("string"), "database_id": bare("string")}},
            "properties": {"type": "object", "description": "Page properties; `title` is required"},
            "children": {"type": "array", "items": {"type": "object"}, "description": "Blocks of the page's content"},
        }),
        &["parent", "properties"],
    )
    .tool(
        "API-get-block-children", List, &NOTION[2],
        "Get the children of a block (or the content of a page), paginated.",
        json!({"block_id": bare("string"), "start_cursor": bare("string"), "page_size": integer_or("Number of blocks per page", 1, 100, 100)}),
        &["block_id"],
    )
    .tool(
        "API-patch-block-children", Create, &NOTION[2],
        "Append blocks to a block or page. At most 100 blocks per request and two levels of nesting.",
        json!({"block_id": bare("string"), "children": {"type": "array", "items": {"type": "object"}}, "after": string("Append after this block ID")}),
        &["block_id", "children"],
    )
    .tool(
        "API-post-database-query", Search, &NOTION[1],
        "Query a database: pages matching a filter, in the given sort order.",
        json!({
            "database_id": bare("string"),
            "filter": {"type": "object", "description": "A Notion filter object, e.g. {\"property\": \"Status\", \"status\": {\"equals\": \"Done\"}}"},
            "sorts": {"type": "array", "items": {"type": "object", "properties": {"property": bare("string"), "direction": {"type": "string", "enum": ["ascending", "descending"]}}}},
            "start_cursor": bare("string"),
            "page_size": integer_or("Number of pages per response", 1, 100, 100),
        }),
        &["database_id"],
    )
    .tool(
        "API-create-a-comment", Create, &NOTION[3],
        "Add a comment to a page or to an existing discussion thread.",
        json!({"parent": {"type": "object", "properties": {"page_id": bare("string")}}, "discussion_id": bare("string"), "rich_text": {"type": "array", "items": {"type": "object", "properties": {"text": {"type": "object", "properties": {"content": bare("string")}}}}}}),
        &["rich_text"],
    );
    b.out
}

pub(super) fn salesforce_hand(d: &'static Domain) -> Vec<Spec> {
    use Kind::*;
    let mut b = dom(d);
    b.tool(
        "soql_query", Search, &SF[0],
        "Run a SOQL query, e.g. `SELECT Id, Name FROM Account WHERE Industry = 'Retail'`. Relationship fields and aggregate functions are supported; results are capped at 2000 rows.",
        json!({"query": string("SOQL query"), "include_deleted": boolean("Also return deleted and archived records (queryAll)", false)}),
        &["query"],
    )
    .tool(
        "sosl_search", Search, &SF[1],
        "Search text across several objects with SOSL, e.g. `FIND {Globex} IN NAME FIELDS RETURNING Account(Name), Contact(Name, Email)`.",
        json!({"search": string("SOSL search string")}),
        &["search"],
    )
    .tool(
        "describe_object", Get, &SF[0],
        "Describe an sObject: its fields with types, picklist values, relationships and whether records can be created or updated.",
        json!({"object_name": string("API name of the object, e.g. Account or Invoice__c")}),
        &["object_name"],
    )
    .tool(
        "list_objects", List, &SF[0],
        "List the sObjects of the org, standard and custom.",
        json!({"custom_only": boolean("Only custom objects (__c)", false)}),
        &[],
    )
    .tool(
        "get_record", Get, &SF[0],
        "Get one record of any object by ID, with the fields asked for.",
        json!({"object_name": bare("string"), "record_id": bare("string"), "fields": strings("Field API names; all by default")}),
        &["object_name", "record_id"],
    )
    .tool(
        "update_record", Update, &SF[0],
        "Update fields of a record of any object.",
        json!({"object_name": bare("string"), "record_id": bare("string"), "fields": {"type": "object", "description": "Field API names and their new values"}}),
        &["object_name", "record_id", "fields"],
    );
    b.out
}

pub(super) fn s3_hand(d: &'static Domain) -> Vec<Spec> {
    use Kind::*;
    let r = &S3[1];
    let bucket = || string("Name of the bucket");
    let key = || string("Object key");
    let mut b = dom(d);
    b.tool("list_buckets", List, r, "List the buckets of the account, with their regions and creation dates.", json!({"prefix": string("Only buckets whose name starts with this")}), &[])
        .tool(
            "list_objects_v2", List, r,
            "List objects in a bucket, up to 1,000 per call. Use `prefix` and `delimiter` to browse like folders, and `continuation_token` to page.",
            json!({"bucket": bucket(), "prefix": bare("string"), "delimiter": bare("string"), "max_keys": integer_or("Maximum keys returned", 1, 1000, 1000), "continuation_token": bare("string")}),
            &["bucket"],
        )
        .tool(
            "get_object", Get, r,
            "Get an object's content. Text is returned as is; binary content is base64-encoded. Use `range` to read part of a large object.",
            json!({"bucket": bucket(), "key": key(), "range": string("Byte range, e.g. bytes=0-1023"), "version_id": bare("string")}),
            &["bucket", "key"],
        )
        .tool(
            "put_object", Create, r,
            "Upload an object. Overwrites an existing object with the same key unless versioning is on.",
            json!({"bucket": bucket(), "key": key(), "body": string("Content (text, or base64 with content_encoding=base64)"), "content_type": bare("string"), "storage_class": choice(&["STANDARD", "STANDARD_IA", "INTELLIGENT_TIERING", "GLACIER_IR"], "Storage class")}),
            &["bucket", "key", "body"],
        )
        .tool("delete_object", Delete, r, "Delete an object, or one version of it.", json!({"bucket": bucket(), "key": key(), "version_id": bare("string")}), &["bucket", "key"])
        .tool(
            "copy_object", Action, r,
            "Copy an object within or between buckets.",
            json!({"source_bucket": bare("string"), "source_key": bare("string"), "bucket": bucket(), "key": key()}),
            &["source_bucket", "source_key", "bucket", "key"],
        )
        .tool("head_object", Get, r, "Get an object's metadata (size, content type, ETag, storage class) without its content.", json!({"bucket": bucket(), "key": key()}), &["bucket", "key"])
        .tool(
            "generate_presigned_url", Action, r,
            "Generate a presigned URL to download (or upload) an object without credentials.",
            json!({"bucket": bucket(), "key": key(), "expires_in": integer_or("Validity in seconds", 1, 604800, 3600), "method": json!({"type": "string", "enum": ["GET", "PUT"], "default": "GET"})}),
            &["bucket", "key"],
        );
    b.out
}

pub(super) fn gmail_hand(d: &'static Domain) -> Vec<Spec> {
    use Kind::*;
    let r = &GMAIL[3];
    let mut b = dom(d);
    b.tool(
        "send_email", Create, r,
        "Send a new email. Use `thread_id` and `in_reply_to` to reply within a thread.",
        json!({"to": strings("Recipients"), "subject": bare("string"), "body": string("Plain-text body"), "html_body": bare("string"), "cc": strings("CC recipients"), "bcc": strings("BCC recipients"), "thread_id": bare("string"), "in_reply_to": bare("string")}),
        &["to", "subject", "body"],
    )
    .tool("draft_email", Create, r, "Create a draft without sending it.", json!({"to": strings("Recipients"), "subject": bare("string"), "body": bare("string")}), &["to", "subject", "body"])
    .tool("read_email", Get, r, "Read an email by message ID: headers, body and attachment names.", json!({"message_id": string("ID of the email message")}), &["message_id"])
    .tool(
        "search_emails", Search, r,
        "Search emails with Gmail search syntax, e.g. `from:billing@stripe.com is:unread newer_than:7d`.",
        json!({"query": string("Gmail search query"), "max_results": integer_or("Maximum number of results", 1, 500, 20)}),
        &["query"],
    )
    .tool(
        "modify_email", Update, r,
        "Add or remove labels of an email, e.g. to archive it (remove INBOX) or mark it read (remove UNREAD).",
        json!({"message_id": bare("string"), "add_label_ids": strings("Labels to add"), "remove_label_ids": strings("Labels to remove")}),
        &["message_id"],
    )
    .tool("delete_email", Delete, r, "Permanently delete an email. This skips the trash.", json!({"message_id": bare("string")}), &["message_id"])
    .tool(
        "download_attachment", Get, r,
        "Download an attachment of an email, base64-encoded.",
        json!({"message_id": bare("string"), "attachment_id": bare("string")}),
        &["message_id", "attachment_id"],
    );
    b.out
}

pub(super) fn search_hand(d: &'static Domain) -> Vec<Spec> {
    use Kind::*;
    let r = &SEARCH[0];
    let mut b = dom(d);
    b.tool(
        "web-search", Search, r,
        "Search the web. Returns titles, URLs and snippets. Use for general queries, news, articles and online content; supports pagination and filtering by freshness.",
        json!({
            "query": string("Search query (max 400 chars, 50 words)"),
            "count": integer_or("Number of results", 1, 20, 10),
            "offset": integer_or("Pagination offset", 0, 9, 0),
            "freshness": choice(&["pd", "pw", "pm", "py"], "Only results from the past day, week, month or year"),
            "country": string("Two-letter country code"),
            "safesearch": json!({"type": "string", "enum": ["off", "moderate", "strict"], "default": "moderate"}),
        }),
        &["query"],
    )
    .tool("news-search", Search, r, "Search recent news articles. Results carry their publisher and age.", json!({"query": bare("string"), "count": integer_or("Number of results", 1, 50, 20), "freshness": choice(&["pd", "pw", "pm"], "Recency")}), &["query"])
    .tool("image-search", Search, r, "Search images. Returns thumbnails, source pages and dimensions.", json!({"query": bare("string"), "count": integer_or("Number of results", 1, 100, 20)}), &["query"])
    .tool(
        "local-search", Search, r,
        "Search local businesses and places, with addresses, ratings and opening hours. Falls back to web results when nothing local matches.",
        json!({"query": string("e.g. 'pizza near Central Park'"), "count": integer_or("Number of results", 1, 20, 5)}),
        &["query"],
    )
    .tool("summarize-url", Get, r, "Fetch a web page and return a short summary of its main content.", json!({"url": bare("string"), "max_words": integer_or("Length of the summary", 20, 500, 120)}), &["url"]);
    b.out
}

pub(super) fn hr_hand(d: &'static Domain) -> Vec<Spec> {
    use Kind::*;
    let r = &HR[0];
    let mut b = dom(d);
    b.tool(
        "list_employees", List, r,
        "List employees from the company directory with their job titles, departments, locations and managers.",
        json!({"department": bare("string"), "location": bare("string"), "status": json!({"type": "string", "enum": ["active", "inactive", "all"], "default": "active"}), "limit": integer_or("Maximum number of employees", 1, 500, 100)}),
        &[],
    )
    .tool("get_employee", Get, r, "Get an employee's record. `fields` selects which fields are returned.", json!({"employee_id": bare("string"), "fields": strings("e.g. jobTitle, department, hireDate, supervisor")}), &["employee_id"])
    .tool("get_time_off_balance", Get, r, "Get an employee's time-off balances per policy, as of a date.", json!({"employee_id": bare("string"), "as_of": string("YYYY-MM-DD; today by default")}), &["employee_id"])
    .tool(
        "request_time_off", Create, r,
        "Submit a time-off request for an employee. It goes to their manager for approval.",
        json!({"employee_id": bare("string"), "type": choice(&["vacation", "sick", "parental", "unpaid"], "Time-off type"), "start": string("First day, YYYY-MM-DD"), "end": string("Last day, YYYY-MM-DD"), "note": bare("string")}),
        &["employee_id", "type", "start", "end"],
    )
    .tool(
        "list_time_off_requests", List, r,
        "List time-off requests in a date range, optionally of one employee or status.",
        json!({"start": bare("string"), "end": bare("string"), "employee_id": bare("string"), "status": choice(&["requested", "approved", "denied", "canceled"], "Request status")}),
        &["start", "end"],
    )
    .tool("get_org_chart", Get, r, "Get the reporting tree under an employee, down to `depth` levels.", json!({"employee_id": string("Root of the tree; the CEO by default"), "depth": integer_or("Levels to include", 1, 10, 2)}), &[]);
    b.out
}

// ---------------------------------------------------------------------------
