//! The six core servers, hand-written and the same at every catalog size.

use super::*;

// The six core servers
// ---------------------------------------------------------------------------

pub(super) fn owner_repo() -> Value {
    json!({
        "owner": string("Repository owner (user or organization)"),
        "repo": string("Repository name"),
    })
}

pub(super) fn with(base: Value, more: Value) -> Value {
    let mut m = match base {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if let Value::Object(extra) = more {
        m.extend(extra);
    }
    Value::Object(m)
}

pub(super) fn github_tools() -> Vec<Spec> {
    use Kind::*;
    let r = &GH_MISC;
    let page = json!({
        "per_page": integer_or("Results per page (max 100)", 1, 100, 30),
        "page": json!({"type": "integer", "description": "Page number of the results to fetch", "minimum": 1, "default": 1}),
    });
    let mut b = Builder::new(Sdk::TypeScript, "github.com/acme");
    b.tool(
        "list_pull_requests", List, r,
        "List pull requests in a GitHub repository. Returns each pull request's number, title, state, author, labels and head and base branches. Results are paginated; use `page` and `per_page` to walk through them.",
        with(with(owner_repo(), json!({
            "state": json!({"type": "string", "enum": ["open", "closed", "all"], "default": "open", "description": "Filter by state"}),
            "head": string("Filter by head user/org and branch name, as user:ref-name"),
            "base": string("Filter by base branch name"),
            "sort": json!({"type": "string", "enum": ["created", "updated", "popularity", "long-running"], "default": "created"}),
            "direction": choice(&["asc", "desc"], "Sort direction"),
        })), page.clone()),
        &["owner", "repo"],
    )
    .tool(
        "get_pull_request", Get, r,
        "Get details of a specific pull request, including its body, mergeability, review state and the commits it adds.",
        with(owner_repo(), json!({"pull_number": bare("integer")})),
        &["owner", "repo", "pull_number"],
    )
    .tool(
        "create_pull_request", Create, r,
        "Create a new pull request. The head branch must already exist and contain commits that the base branch does not have.",
        with(owner_repo(), json!({
            "title": string("Pull request title"),
            "head": string("The branch that contains your changes"),
            "base": string("The branch you want the changes pulled into"),
            "body": string("Pull request body (Markdown)"),
            "draft": boolean("Open the pull request as a draft", false),
            "maintainer_can_modify": boolean("Allow maintainers to push to the head branch", true),
        })),
        &["owner", "repo", "title", "head", "base"],
    )
    .tool(
        "merge_pull_request", Action, r,
        "Merge a pull request. Fails if the pull request is not mergeable or required checks have not passed.",
        with(owner_repo(), json!({
            "pull_number": bare("integer"),
            "commit_title": string("Title for the automatic commit message"),
            "commit_message": string("Extra detail to append to the automatic commit message"),
            "merge_method": json!({"type": "string", "enum": ["merge", "squash", "rebase"], "default": "merge"}),
        })),
        &["owner", "repo", "pull_number"],
    )
    .tool(
        "create_pull_request_review", Create, r,
        "Create a review on a pull request: approve it, request changes or just comment. Line comments are attached to the diff.",
        with(owner_repo(), json!({
            "pull_number": bare("integer"),
            "event": choice(&["APPROVE", "REQUEST_CHANGES", "COMMENT"], "The review action to perform"),
            "body": string("Review comment text"),
            "comments": {
                "type": "array",
                "description": "Line-specific comments on the diff",
                "items": {"type": "object", "properties": {
                    "path": string("File path relative to the repository root"),
                    "line": integer("Line in the diff to comment on", 1, 100000),
                    "side": {"type": "string", "enum": ["LEFT", "RIGHT"]},
                    "body": bare("string"),
                }, "required": ["path", "body"]},
            },
        })),
        &["owner", "repo", "pull_number", "event"],
    )
    .tool(
        "list-check-runs", List, r,
        "List check runs for a commit: a SHA, branch name or tag name. Each run has a name, a status and, once completed, a conclusion such as success, failure or skipped.",
        with(owner_repo(), json!({
            "ref": string("Git reference: a commit SHA, branch name or tag name"),
            "check_name": string("Only return check runs with this name"),
            "status": choice(&["queued", "in_progress", "completed"], "Only return check runs with this status"),
            "filter": json!({"type": "string", "enum": ["latest", "all"], "default": "latest", "description": "latest: the most recent run of each check; all: every run"}),
            "per_page": integer_or("Results per page (max 100)", 1, 100, 30),
        })),
        &["owner", "repo", "ref"],
    )
    .tool(
        "create-comment", Create, r,
        "Add a comment to an issue or pull request. Pull requests are issues too, so pass the pull request number as `issue_number`. The body supports GitHub-flavored Markdown.",
        with(owner_repo(), json!({
            "issue_number": integer("Issue or pull request number", 1, 1000000),
            "body": string("Comment text"),
        })),
        &["owner", "repo", "issue_number", "body"],
    )
    .tool(
        "list_issues", List, r,
        "List issues in a GitHub repository with filtering options. Pull requests are not included.",
        with(with(owner_repo(), json!({
            "state": json!({"type": "string", "enum": ["open", "closed", "all"], "default": "open"}),
            "labels": strings("Only issues with all of these labels"),
            "assignee": string("Login of the assignee, `none` or `*`"),
            "since": string("Only issues updated at or after this time (ISO 8601)"),
            "sort": json!({"type": "string", "enum": ["created", "updated", "comments"], "default": "created"}),
            "direction": choice(&["asc", "desc"], "Sort direction"),
        })), page.clone()),
        &["owner", "repo"],
    )
    .tool(
        "get_issue", Get, r,
        "Get the contents of an issue within a repository, with its labels, assignees and milestone.",
        with(owner_repo(), json!({"issue_number": bare("integer")})),
        &["owner", "repo", "issue_number"],
    )
    .tool(
        "create_issue", Create, r,
        "Create a new issue in a GitHub repository. Labels and assignees that do not exist in the repository are ignored.",
        with(owner_repo(), json!({
            "title": bare("string"),
            "body": string("Issue body (Markdown)"),
            "assignees": strings("Logins to assign"),
            "labels": strings("Labels to apply"),
            "milestone": integer("Milestone number", 1, 10000),
        })),
        &["owner", "repo", "title"],
    )
    .tool(
        "update_issue", Update, r,
        "Update an existing issue: title, body, state, labels or assignees. Fields you leave out are unchanged.",
        with(owner_repo(), json!({
            "issue_number": bare("integer"),
            "title": bare("string"),
            "body": bare("string"),
            "state": choice(&["open", "closed"], "New state"),
            "state_reason": choice(&["completed", "not_planned", "reopened"], "Why the state changed"),
            "labels": strings("Replaces the issue's labels"),
            "assignees": strings("Replaces the issue's assignees"),
        })),
        &["owner", "repo", "issue_number"],
    )
    .tool(
        "search_code", Search, r,
        "Search for code across GitHub repositories. Uses GitHub code search syntax, e.g. `addClass in:file language:js repo:jquery/jquery`.",
        with(json!({
            "q": string("Search query using GitHub code search syntax"),
            "order": choice(&["asc", "desc"], "Sort order"),
        }), page.clone()),
        &["q"],
    )
    .tool(
        "search_repositories", Search, r,
        "Search for GitHub repositories by name, description, topic or language.",
        with(json!({"query": string("Search query (see GitHub search syntax)")}), page.clone()),
        &["query"],
    )
    .tool(
        "get_file_contents", Get, r,
        "Get the contents of a file or directory from a GitHub repository. Directories return a listing of their entries.",
        with(owner_repo(), json!({
            "path": string("Path to the file or directory"),
            "ref": string("Branch, tag or commit SHA; defaults to the default branch"),
        })),
        &["owner", "repo", "path"],
    )
    .tool(
        "create_or_update_file", Update, r,
        "Create or update a single file in a repository with a commit. To update a file, pass the blob SHA of the version you are replacing.",
        with(owner_repo(), json!({
            "path": string("Path where to create or update the file"),
            "content": string("File content"),
            "message": string("Commit message"),
            "branch": string("Branch to commit to"),
            "sha": string("Blob SHA of the file being replaced (required for updates)"),
        })),
        &["owner", "repo", "path", "content", "message", "branch"],
    )
    .tool(
        "create_branch", Create, r,
        "Create a new branch in a GitHub repository, starting from the head of `from_branch`.",
        with(owner_repo(), json!({
            "branch": string("Name for the new branch"),
            "from_branch": string("Source branch (defaults to the repository's default branch)"),
        })),
        &["owner", "repo", "branch"],
    )
    .tool(
        "list_commits", List, r,
        "Get a list of commits of a branch in a repository, newest first.",
        with(with(owner_repo(), json!({
            "sha": string("SHA or branch to start listing commits from"),
            "path": string("Only commits touching this path"),
            "author": string("GitHub login or email address"),
            "since": bare("string"),
            "until": bare("string"),
        })), page.clone()),
        &["owner", "repo"],
    )
    .tool(
        "get_commit", Get, r,
        "Get one commit: message, author, parents, stats and the changed files with their patches.",
        with(owner_repo(), json!({"sha": string("Commit SHA, branch name or tag name")})),
        &["owner", "repo", "sha"],
    )
    .tool(
        "list_workflow_runs", List, r,
        "List GitHub Actions workflow runs of a repository, newest first. Filter by workflow, branch, triggering event or status; `status` also accepts a conclusion such as `failure` or `success`.",
        with(with(owner_repo(), json!({
            "workflow_id": string("Workflow file name (e.g. ci.yml) or numeric ID"),
            "branch": string("Only runs for this branch"),
            "event": string("Only runs triggered by this event, e.g. push or pull_request"),
            "status": choice(&["completed", "action_required", "cancelled", "failure", "neutral", "skipped", "stale", "success", "timed_out", "in_progress", "queued", "requested", "waiting", "pending"], "Run status or conclusion"),
            "created": string("Date range in GitHub search syntax, e.g. >=2026-03-01"),
        })), page.clone()),
        &["owner", "repo"],
    )
    .tool(
        "list_workflow_jobs", List, r,
        "List the jobs of a workflow run, with each job's steps, status and conclusion.",
        with(owner_repo(), json!({
            "run_id": integer("The workflow run ID", 1, i64::MAX),
            "filter": json!({"type": "string", "enum": ["latest", "all"], "default": "latest", "description": "latest: jobs of the most recent attempt; all: every attempt"}),
            "per_page": integer_or("Results per page (max 100)", 1, 100, 30),
        })),
        &["owner", "repo", "run_id"],
    )
    .tool(
        "get_job_logs", Get, r,
        "Download the log of a workflow job as lines of text, each prefixed with its timestamp. Use `tail_lines` to only get the end of long logs.",
        with(owner_repo(), json!({
            "job_id": integer("The job ID", 1, i64::MAX),
            "tail_lines": integer("Only return the last N lines", 1, 5000),
        })),
        &["owner", "repo", "job_id"],
    )
    .tool(
        "rerun-workflow", Action, r,
        "Re-run a workflow run, or only its failed jobs. Returns immediately; poll the run to follow it.",
        with(owner_repo(), json!({
            "run_id": integer("The workflow run ID", 1, i64::MAX),
            "failed_only": boolean("Only re-run the jobs that failed", false),
            "enable_debug_logging": boolean("Enable step debug logging for the re-run", false),
        })),
        &["owner", "repo", "run_id"],
    )
    .tool(
        "list_releases", List, r,
        "List releases of a repository, newest first. Draft releases are only visible to users with push access.",
        with(owner_repo(), page.clone()),
        &["owner", "repo"],
    )
    .tool(
        "list_branches", List, r,
        "List branches in a GitHub repository, with the SHA each one points at and whether it is protected.",
        with(with(owner_repo(), json!({"protected": {"type": "boolean", "description": "Only protected (true) or unprotected (false) branches"}})), page),
        &["owner", "repo"],
    );
    b.out
}

pub(super) fn jira_filters() -> Value {
    json!({
        "type": "object",
        "description": "Narrow the results; all given filters must match",
        "properties": {
            "status": choice(JIRA_STATUSES, "Workflow status"),
            "assignee": string("Username of the assignee, or `unassigned`"),
            "labels": strings("Issues must carry all of these labels"),
            "issue_type": {"type": "string", "enum": ["Story", "Bug", "Task", "Epic"]},
            "updated_after": string("ISO 8601 date; only issues updated on or after it"),
        },
    })
}

pub(super) fn jira_tools() -> Vec<Spec> {
    use Kind::*;
    let r = &JIRA_MISC;
    let key = || string("Issue key, e.g. ENG-42");
    let mut b = Builder::new(Sdk::Python, "acme.atlassian.net");
    b.tool(
        "list_projects", List, r,
        "List the Jira projects visible to the current user. Returns each project's key, name, lead and issue count.",
        json!({"limit": integer_or("Maximum number of projects", 1, 100, 50)}),
        &[],
    )
    .tool(
        "get_project", Get, r,
        "Get a Jira project by key: its lead, components, issue types and versions.",
        json!({"project_key": string("Project key, e.g. ENG")}),
        &["project_key"],
    )
    .tool(
        "list_issues", List, r,
        "List issues of a Jira project, newest key last. Each entry is a summary (key, summary, status, assignee, type, updated); use get_issue for priority, story points, description and the rest. Paginated: pass `cursor` from `next_cursor` to continue.",
        json!({
            "project": string("Project key, e.g. ENG"),
            "filters": jira_filters(),
            "limit": integer_or("Maximum number of issues to return", 1, 100, 20),
            "cursor": bare("string"),
        }),
        &["project"],
    )
    .tool(
        "get_issue", Get, r,
        "Get a Jira issue by key with all its fields: summary, description, status, priority, story points, assignee, reporter, labels, components and sprint. `expand` adds comments, changelog or available transitions.",
        json!({
            "issue_key": key(),
            "expand": {"type": "array", "items": {"type": "string", "enum": ["comments", "changelog", "transitions"]}, "description": "Extra sections to include"},
        }),
        &["issue_key"],
    )
    .tool(
        "create_issue", Create, r,
        "Create a Jira issue. Returns the new issue's key. Labels must not contain spaces; the priority scheme is P0 (highest) to P3.",
        json!({
            "project": string("Project key"),
            "summary": string("One-line summary"),
            "issue_type": choice(&["Story", "Bug", "Task", "Epic"], "Issue type"),
            "description": string("Description (Atlassian wiki markup or Markdown)"),
            "priority": choice(JIRA_PRIORITIES, "Priority"),
            "assignee": string("Username to assign"),
            "labels": strings("Labels"),
            "story_points": integer("Estimate in story points", 0, 100),
        }),
        &["project", "summary", "issue_type"],
    )
    .tool(
        "update_issue", Update, r,
        "Update fields of a Jira issue. Only the fields given are changed. To change the status use transition_issue.",
        json!({
            "issue_key": key(),
            "summary": bare("string"),
            "description": bare("string"),
            "priority": choice(JIRA_PRIORITIES, "New priority"),
            "labels": strings("Replaces the labels"),
            "story_points": integer("Estimate in story points", 0, 100),
        }),
        &["issue_key"],
    )
    .tool(
        "transition_issue", Action, r,
        "Move an issue through its workflow, e.g. from Open to In Progress. Use get_issue with expand=[\"transitions\"] to see which transitions are available.",
        json!({
            "issue_key": key(),
            "transition": choice(&["Start Progress", "Request Review", "Done", "Reopen"], "Transition name"),
            "comment": string("Comment to add with the transition"),
        }),
        &["issue_key", "transition"],
    )
    .tool(
        "assign_issue", Action, r,
        "Assign an issue to a user, or unassign it by passing `unassigned`.",
        json!({"issue_key": key(), "assignee": string("Username, or `unassigned`")}),
        &["issue_key", "assignee"],
    )
    .tool(
        "add_comment", Create, r,
        "Add a comment to an issue. Mentions use [~username].",
        json!({
            "issue_key": key(),
            "body": string("Comment text"),
            "visibility": {"type": "object", "description": "Restrict who can see the comment", "properties": {"type": {"type": "string", "enum": ["group", "role"]}, "value": bare("string")}, "required": ["type", "value"]},
        }),
        &["issue_key", "body"],
    )
    .tool(
        "list_comments", List, r,
        "List the comments of an issue, oldest first.",
        json!({"issue_key": key(), "limit": integer_or("Maximum number of comments", 1, 100, 50)}),
        &["issue_key"],
    )
    .tool(
        "get_transitions", List, r,
        "Get the workflow transitions currently available for an issue.",
        json!({"issue_key": key()}),
        &["issue_key"],
    )
    .tool(
        "link_issues", Action, r,
        "Link two issues, e.g. to record that one blocks another.",
        json!({
            "inward_issue": string("Key of the inward issue"),
            "outward_issue": string("Key of the outward issue"),
            "link_type": choice(&["Blocks", "Relates", "Duplicate", "Cloners"], "Link type"),
        }),
        &["inward_issue", "outward_issue", "link_type"],
    )
    .tool(
        "list_boards", List, r,
        "List Scrum and Kanban boards, optionally of one project.",
        json!({"project_key": bare("string"), "board_type": choice(&["scrum", "kanban"], "Board type")}),
        &[],
    )
    .tool(
        "list_sprints", List, r,
        "List the sprints of a board, newest first. Only Scrum boards have sprints.",
        json!({
            "board_id": integer("Board ID", 1, 100000),
            "state": choice(&["future", "active", "closed"], "Only sprints in this state"),
        }),
        &["board_id"],
    )
    .tool(
        "get_sprint", Get, r,
        "Get a sprint: its goal, dates and state.",
        json!({"sprint_id": integer("Sprint ID", 1, 100000)}),
        &["sprint_id"],
    )
    .tool(
        "move_issues_to_sprint", Action, r,
        "Move issues to a sprint. At most 50 issues per call.",
        json!({"sprint_id": integer("Sprint ID", 1, 100000), "issue_keys": strings("Keys of the issues to move")}),
        &["sprint_id", "issue_keys"],
    )
    .tool(
        "search_users", Search, r,
        "Find Jira users by name, username or email.",
        json!({"query": string("Text to match"), "limit": integer_or("Maximum number of users", 1, 50, 10)}),
        &["query"],
    )
    .tool(
        "add_worklog", Create, r,
        "Log time spent on an issue. The time is added to the issue's time tracking and to the user's timesheet.",
        json!({
            "issue_key": key(),
            "time_spent": string("Duration in Jira notation, e.g. 3h 30m"),
            "started": string("When the work started (ISO 8601)"),
            "comment": bare("string"),
        }),
        &["issue_key", "time_spent"],
    );
    b.out
}

pub(super) fn slack_tools() -> Vec<Spec> {
    use Kind::*;
    let r = &SLACK_MISC;
    let channel = || string("The ID of the channel (C...)");
    let mut b = Builder::new(Sdk::TypeScript, "acme.slack.com");
    b.tool(
        "slack_list_channels", List, r,
        "List public and private channels in the workspace that the bot can see, with pagination. Returns each channel's ID, name, topic, purpose and member count.",
        json!({
            "limit": integer_or("Maximum number of channels to return (default 100, max 1000)", 1, 1000, 100),
            "cursor": string("Pagination cursor for next page of results"),
            "exclude_archived": boolean("Leave archived channels out", true),
        }),
        &[],
    )
    .tool(
        "slack_post_message", Create, r,
        "Post a new message to a Slack channel as the bot user. Returns the message timestamp (`ts`), which identifies the message in later calls such as replies and reactions.",
        json!({"channel_id": string("The ID of the channel to post to"), "text": string("The message text to post (mrkdwn)")}),
        &["channel_id", "text"],
    )
    .tool(
        "slack_reply_to_thread", Create, r,
        "Reply to a specific message thread in Slack. The reply is not broadcast to the channel.",
        json!({
            "channel_id": string("The ID of the channel containing the thread"),
            "thread_ts": string("The timestamp of the parent message in the format '1234567890.123456'. Timestamps without the period can be converted by adding the period such that 6 numbers come after it."),
            "text": string("The reply text"),
        }),
        &["channel_id", "thread_ts", "text"],
    )
    .tool(
        "slack_add_reaction", Action, r,
        "Add a reaction emoji to a message. Custom workspace emoji are allowed.",
        json!({
            "channel_id": string("The ID of the channel containing the message"),
            "timestamp": string("The timestamp of the message to react to"),
            "reaction": string("The name of the emoji reaction (without ::)"),
        }),
        &["channel_id", "timestamp", "reaction"],
    )
    .tool(
        "slack_get_channel_history", List, r,
        "Get recent messages from a channel, newest first. Thread replies are not included; use slack_get_thread_replies for those.",
        json!({
            "channel_id": string("The ID of the channel"),
            "limit": integer_or("Number of messages to retrieve (default 10)", 1, 1000, 10),
            "oldest": string("Only messages after this Unix timestamp"),
            "latest": string("Only messages before this Unix timestamp"),
        }),
        &["channel_id"],
    )
    .tool(
        "slack_get_thread_replies", List, r,
        "Get all replies in a message thread, oldest first, starting with the parent message.",
        json!({
            "channel_id": channel(),
            "thread_ts": string("The timestamp of the parent message in the format '1234567890.123456'"),
        }),
        &["channel_id", "thread_ts"],
    )
    .tool(
        "slack_get_users", List, r,
        "Get a list of all users in the workspace with their basic profile information.",
        json!({
            "cursor": string("Pagination cursor for next page of results"),
            "limit": integer_or("Maximum number of users to return (default 100, max 200)", 1, 200, 100),
        }),
        &[],
    )
    .tool(
        "slack_get_user_profile", Get, r,
        "Get detailed profile information for a specific user: display name, title, time zone, status and email.",
        json!({"user_id": string("The ID of the user (U...)")}),
        &["user_id"],
    )
    .tool(
        "slack_search_messages", Search, r,
        "Search messages across the channels the bot is in. Supports Slack search modifiers such as `in:#channel`, `from:@user` and `before:2026-03-01`.",
        json!({
            "query": string("Search query"),
            "sort": json!({"type": "string", "enum": ["score", "timestamp"], "default": "score"}),
            "sort_dir": json!({"type": "string", "enum": ["asc", "desc"], "default": "desc"}),
            "count": integer_or("Results per page", 1, 100, 20),
        }),
        &["query"],
    )
    .tool(
        "slack_lookup_user_by_email", Get, r,
        "Find a user by their email address. Returns the user's ID, names and profile.",
        json!({"email": string("Email address of the user")}),
        &["email"],
    )
    .tool(
        "slack_set_channel_topic", Action, r,
        "Set the topic of a channel. The topic is shown in the channel header.",
        json!({"channel_id": channel(), "topic": string("New topic, up to 250 characters")}),
        &["channel_id", "topic"],
    )
    .tool(
        "slack_create_channel", Create, r,
        "Create a new channel. Names are lowercase, without spaces or periods, and at most 80 characters.",
        json!({"name": string("Name of the channel"), "is_private": boolean("Create a private channel", false)}),
        &["name"],
    )
    .tool(
        "slack_invite_to_channel", Action, r,
        "Invite one or more users to a channel.",
        json!({"channel_id": channel(), "users": strings("IDs of the users to invite (up to 1000)")}),
        &["channel_id", "users"],
    )
    .tool(
        "slack_schedule_message", Create, r,
        "Schedule a message to be posted to a channel later. Returns the scheduled message's ID, which can be used to delete it before it is sent.",
        json!({
            "channel_id": channel(),
            "text": string("The message text"),
            "post_at": integer("Unix timestamp (seconds) at which to post; at most 120 days ahead", 0, 9999999999),
        }),
        &["channel_id", "text", "post_at"],
    )
    .tool(
        "slack_update_message", Update, r,
        "Edit a message the bot posted earlier.",
        json!({"channel_id": channel(), "ts": string("Timestamp of the message to edit"), "text": string("New message text")}),
        &["channel_id", "ts", "text"],
    )
    .tool(
        "slack_delete_message", Delete, r,
        "Delete a message the bot posted earlier.",
        json!({"channel_id": channel(), "ts": string("Timestamp of the message to delete")}),
        &["channel_id", "ts"],
    );
    b.out
}

pub(super) fn stripe_tools() -> Vec<Spec> {
    use Kind::*;
    let r = &STRIPE_MISC;
    let limit = || {
        integer_or(
            "A limit on the number of objects to be returned. Limit can range between 1 and 100.",
            1,
            100,
            10,
        )
    };
    let mut b = Builder::new(Sdk::Python, "dashboard.stripe.com");
    b.tool(
        "list_customers", List, r,
        "Fetch a list of customers from Stripe. Optionally filter by exact email address. Newest customers first.",
        json!({
            "email": string("A case-sensitive filter on the list based on the customer's email field"),
            "limit": limit(),
            "starting_after": string("A cursor for pagination: the ID of the last object of the previous page"),
        }),
        &[],
    )
    .tool(
        "retrieve_customer", Get, r,
        "Retrieve a customer by ID: name, email, address, balance, delinquency and metadata such as the account owner.",
        json!({
            "customer": string("The ID of the customer (cus_...)"),
            "expand": strings("Related objects to expand, e.g. default_source"),
        }),
        &["customer"],
    )
    .tool(
        "create_customer", Create, r,
        "Create a customer in Stripe. Returns the customer object with its `cus_` ID.",
        json!({"name": string("The name of the customer"), "email": string("The email of the customer")}),
        &["name"],
    )
    .tool(
        "list_invoices", List, r,
        "List invoices, newest first. Filter by customer, status or collection method. Amounts are integers in the smallest currency unit (cents for USD); `due_date` is a date (YYYY-MM-DD). Paginate with `starting_after` while `has_more` is true.",
        json!({
            "customer": string("Only return invoices for this customer ID"),
            "status": choice(&["draft", "open", "paid", "uncollectible", "void"], "The status of the invoice"),
            "collection_method": choice(&["charge_automatically", "send_invoice"], "How the invoice is collected"),
            "limit": limit(),
            "starting_after": string("A cursor for pagination: the ID of the last object of the previous page"),
        }),
        &[],
    )
    .tool(
        "retrieve_invoice", Get, r,
        "Retrieve an invoice by ID, with its line items.",
        json!({"invoice": string("The ID of the invoice (in_...)")}),
        &["invoice"],
    )
    .tool(
        "create_invoice", Create, r,
        "Create a draft invoice for a customer. Add items with create_invoice_item, then finalize it.",
        json!({
            "customer": string("The ID of the customer to create the invoice for"),
            "days_until_due": integer_or("Number of days the customer has to pay", 1, 365, 30),
            "collection_method": choice(&["charge_automatically", "send_invoice"], "How to collect payment"),
            "description": bare("string"),
        }),
        &["customer"],
    )
    .tool(
        "create_invoice_item", Create, r,
        "Add a line item to a draft invoice.",
        json!({
            "customer": string("The ID of the customer"),
            "price": string("The ID of the price for the item"),
            "invoice": string("The ID of the invoice to add the item to"),
            "quantity": integer("Quantity", 1, 1000000),
        }),
        &["customer", "price", "invoice"],
    )
    .tool(
        "finalize_invoice", Action, r,
        "Finalize a draft invoice so it can be paid or sent.",
        json!({"invoice": string("The ID of the invoice to finalize")}),
        &["invoice"],
    )
    .tool(
        "void_invoice", Action, r,
        "Void a finalized invoice. Voided invoices cannot be paid; this cannot be undone.",
        json!({"invoice": string("The ID of the invoice to void")}),
        &["invoice"],
    )
    .tool(
        "list_subscriptions", List, r,
        "List subscriptions, optionally of one customer or price, by status.",
        json!({
            "customer": string("The ID of the customer to list subscriptions for"),
            "price": string("The ID of the price to list subscriptions for"),
            "status": json!({"type": "string", "enum": ["active", "past_due", "unpaid", "canceled", "incomplete", "trialing", "all"], "default": "active"}),
            "limit": limit(),
        }),
        &[],
    )
    .tool(
        "cancel_subscription", Action, r,
        "Cancel a subscription immediately. Optionally invoice pending usage and prorate.",
        json!({
            "subscription": string("The ID of the subscription to cancel"),
            "invoice_now": boolean("Invoice any pending usage now", false),
            "prorate": boolean("Credit unused time", true),
        }),
        &["subscription"],
    )
    .tool(
        "create_refund", Create, r,
        "Refund a PaymentIntent, fully or partly.",
        json!({
            "payment_intent": string("The ID of the PaymentIntent to refund"),
            "amount": integer("Amount to refund in cents; defaults to the whole amount", 1, 99999999),
            "reason": choice(&["duplicate", "fraudulent", "requested_by_customer"], "Reason for the refund"),
        }),
        &["payment_intent"],
    )
    .tool(
        "list_payment_intents", List, r,
        "List PaymentIntents, optionally of one customer.",
        json!({"customer": string("The ID of the customer"), "limit": limit()}),
        &[],
    )
    .tool(
        "retrieve_balance", Get, r,
        "Retrieve the account's balance: available and pending amounts per currency.",
        json!({}),
        &[],
    )
    .tool(
        "list_products", List, r,
        "List products in the catalog, newest first. Prices are listed separately.",
        json!({"active": {"type": "boolean", "description": "Only active (true) or archived (false) products"}, "limit": limit()}),
        &[],
    );
    b.out
}

pub(super) fn pagerduty_tools() -> Vec<Spec> {
    use Kind::*;
    let r = &PD_MISC;
    let limit = || integer_or("Maximum number of results", 1, 100, 25);
    let mut b = Builder::new(Sdk::Python, "acme.pagerduty.com");
    b.tool(
        "list_incidents", List, r,
        "List incidents, newest first. Filter by status, urgency, service and time range. Each incident includes its number, title, status, urgency, service, escalation policy and current assignees.",
        json!({
            "statuses": {"type": "array", "items": {"type": "string", "enum": ["triggered", "acknowledged", "resolved"]}, "description": "Only incidents in one of these statuses"},
            "urgencies": {"type": "array", "items": {"type": "string", "enum": ["high", "low"]}, "description": "Only incidents of these urgencies"},
            "service_ids": strings("Only incidents of these services"),
            "since": string("Start of the time range (ISO 8601)"),
            "until": string("End of the time range (ISO 8601)"),
            "limit": limit(),
        }),
        &[],
    )
    .tool(
        "get_incident", Get, r,
        "Get an incident by ID: status, urgency, service, assignees and escalation policy.",
        json!({"incident_id": string("The incident ID")}),
        &["incident_id"],
    )
    .tool(
        "manage_incidents", Action, r,
        "Acknowledge, resolve or reassign one or more incidents, or change their urgency.",
        json!({
            "incident_ids": strings("IDs of the incidents to update"),
            "status": choice(&["acknowledged", "resolved"], "New status"),
            "urgency": choice(&["high", "low"], "New urgency"),
            "escalation_level": integer("Escalate to this level", 1, 10),
        }),
        &["incident_ids"],
    )
    .tool(
        "add_note_to_incident", Create, r,
        "Add a note to an incident's timeline.",
        json!({"incident_id": bare("string"), "note": string("The note's text")}),
        &["incident_id", "note"],
    )
    .tool(
        "list_alerts_from_incident", List, r,
        "List the alerts grouped into an incident.",
        json!({"incident_id": bare("string"), "limit": limit()}),
        &["incident_id"],
    )
    .tool(
        "list_services", List, r,
        "List services, optionally filtered by name.",
        json!({"query": string("Filter services by name"), "team_ids": strings("Only services of these teams"), "limit": limit()}),
        &[],
    )
    .tool(
        "get_service", Get, r,
        "Get a service by ID: its escalation policy, integrations and incident urgency rule.",
        json!({"service_id": bare("string")}),
        &["service_id"],
    )
    .tool(
        "list_escalation_policies", List, r,
        "List escalation policies. `query` matches any part of a policy's name, case-insensitively.",
        json!({"query": string("Filter by name"), "user_ids": strings("Only policies targeting these users"), "limit": limit()}),
        &[],
    )
    .tool(
        "list_oncalls", List, r,
        "List who is on call now (or in a time range): one entry per escalation policy level, with the user, the schedule that put them there and the shift's start and end.",
        json!({
            "escalation_policy_ids": strings("Only on-calls of these escalation policies"),
            "schedule_ids": strings("Only on-calls of these schedules"),
            "user_ids": strings("Only on-calls of these users"),
            "since": string("Start of the time range (ISO 8601); defaults to now"),
            "until": string("End of the time range (ISO 8601); defaults to now"),
            "earliest": boolean("Only the earliest on-call for each combination of policy, level and user", false),
        }),
        &[],
    )
    .tool(
        "list_users", List, r,
        "List users of the account, optionally filtered by name or email.",
        json!({"query": string("Filter by name or email"), "limit": limit()}),
        &[],
    )
    .tool(
        "get_user", Get, r,
        "Get a user by ID: name, email, time zone, role, teams and contact methods.",
        json!({"user_id": string("The user ID (P...)")}),
        &["user_id"],
    )
    .tool(
        "list_schedules", List, r,
        "List on-call schedules, optionally filtered by name.",
        json!({"query": string("Filter by name"), "limit": limit()}),
        &[],
    );
    b.out
}

pub(super) fn calendar_tools() -> Vec<Spec> {
    use Kind::*;
    let r = &CAL_MISC;
    let cal = || {
        string("Calendar ID: an email address, or `primary` for the authenticated user's calendar")
    };
    let when = || {
        json!({
            "type": "object",
            "properties": {
                "date_time": string("RFC 3339 timestamp, e.g. 2026-03-12T09:00:00Z"),
                "date": string("For all-day events: YYYY-MM-DD"),
                "time_zone": string("IANA time zone, e.g. Europe/Berlin"),
            },
        })
    };
    let mut b = Builder::new(Sdk::TypeScript, "calendar.google.com");
    b.tool(
        "list-calendars", List, r,
        "List the calendars the user can see, with their IDs, names, time zones and access roles.",
        json!({}),
        &[],
    )
    .tool(
        "list-events", List, r,
        "List events of a calendar in a time range. Recurring events are expanded into single instances by default. Each event has its summary, start and end, organizer and attendees with their response status.",
        json!({
            "calendar_id": cal(),
            "time_min": string("Lower bound (inclusive) for an event's start, RFC 3339 with offset, e.g. 2026-03-12T00:00:00Z"),
            "time_max": string("Upper bound (exclusive) for an event's start, RFC 3339 with offset"),
            "query": string("Free text search in summary, description, location and attendees"),
            "max_results": integer_or("Maximum number of events returned", 1, 2500, 250),
            "single_events": boolean("Expand recurring events into instances", true),
            "order_by": json!({"type": "string", "enum": ["startTime", "updated"], "default": "startTime"}),
            "time_zone": string("Time zone used in the response"),
        }),
        &["calendar_id"],
    )
    .tool(
        "get-event", Get, r,
        "Get one event by ID, with its attendees, conferencing details and recurrence.",
        json!({"calendar_id": cal(), "event_id": bare("string")}),
        &["calendar_id", "event_id"],
    )
    .tool(
        "search-events", Search, r,
        "Search events by text in a calendar, optionally within a time range.",
        json!({"calendar_id": cal(), "query": string("Text to search for"), "time_min": bare("string"), "time_max": bare("string")}),
        &["calendar_id", "query"],
    )
    .tool(
        "create-event", Create, r,
        "Create an event. Attendees get an invitation unless `send_updates` is `none`. Use `date` instead of `date_time` in `start` and `end` for all-day events.",
        json!({
            "calendar_id": cal(),
            "summary": string("Event title"),
            "start": when(),
            "end": when(),
            "description": bare("string"),
            "location": bare("string"),
            "attendees": {"type": "array", "items": {"type": "object", "properties": {"email": bare("string"), "optional": {"type": "boolean", "default": false}}, "required": ["email"]}},
            "recurrence": strings("RRULE lines, e.g. RRULE:FREQ=WEEKLY;BYDAY=MO"),
            "reminders": {"type": "object", "properties": {
                "use_default": bare("boolean"),
                "overrides": {"type": "array", "items": {"type": "object", "properties": {"method": {"type": "string", "enum": ["email", "popup"]}, "minutes": integer("Minutes before the start", 0, 40320)}, "required": ["method", "minutes"]}},
            }},
            "send_updates": json!({"type": "string", "enum": ["all", "externalOnly", "none"], "default": "all"}),
        }),
        &["calendar_id", "summary", "start", "end"],
    )
    .tool(
        "update-event", Update, r,
        "Update an event. Only the fields given change.",
        json!({
            "calendar_id": cal(),
            "event_id": bare("string"),
            "summary": bare("string"),
            "start": when(),
            "end": when(),
            "description": bare("string"),
            "location": bare("string"),
        }),
        &["calendar_id", "event_id"],
    )
    .tool(
        "delete-event", Delete, r,
        "Delete an event. Attendees are notified according to `send_updates`.",
        json!({"calendar_id": cal(), "event_id": bare("string"), "send_updates": json!({"type": "string", "enum": ["all", "externalOnly", "none"], "default": "all"})}),
        &["calendar_id", "event_id"],
    )
    .tool(
        "respond-to-event", Action, r,
        "Accept, decline or tentatively accept an invitation.",
        json!({
            "calendar_id": cal(),
            "event_id": bare("string"),
            "response": choice(&["accepted", "declined", "tentative"], "Your response"),
            "comment": string("Optional note to the organizer"),
        }),
        &["calendar_id", "event_id", "response"],
    )
    .tool(
        "find-free-time", Search, r,
        "Find time slots when all the given calendars are free, within working hours.",
        json!({
            "calendar_ids": strings("Calendars that must all be free"),
            "time_min": bare("string"),
            "time_max": bare("string"),
            "duration_minutes": integer_or("Length of the slot", 15, 480, 30),
        }),
        &["calendar_ids", "time_min", "time_max"],
    )
    .tool(
        "get-freebusy", Get, r,
        "Get busy intervals of calendars in a time range.",
        json!({"calendar_ids": strings("Calendars to query"), "time_min": bare("string"), "time_max": bare("string")}),
        &["calendar_ids", "time_min", "time_max"],
    )
    .tool(
        "list-colors", List, r,
        "List the color palette available for calendars and events.",
        json!({}),
        &[],
    );
    b.out
}

// ---------------------------------------------------------------------------
