//! The catalog and the suite, checked on their own.

use super::*;

const SIZES: [(usize, usize); 3] = [(6, 96), (11, 251), (16, 508)];

/// Runs a task's classic policy against [`call`]; the answer and the calls made.
fn run_classic(task: &Task) -> (String, Vec<(String, String)>) {
    let mut results = Vec::new();
    let mut calls = Vec::new();
    for _ in 0..30 {
        match task.classic_next(&results) {
            Step::Answer(a) => return (a, calls),
            Step::Call { server, tool, args } => {
                let v = call(&server, &tool, &args).unwrap_or_else(|e| {
                    panic!("{}: {server}.{tool}({args}) failed: {e}", task.name)
                });
                calls.push((server, tool));
                results.push(v);
            }
        }
    }
    panic!("{} did not answer within 30 steps", task.name);
}

fn py_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[test]
fn catalogs_have_exactly_the_sizes_asked_for() {
    for (servers, tools) in SIZES {
        let c = generate(servers, tools);
        assert_eq!(c.servers.len(), servers);
        assert_eq!(
            c.servers.iter().map(|s| s.tools.len()).sum::<usize>(),
            tools,
            "{servers} servers"
        );
        for s in &c.servers {
            assert!(
                !s.name.contains('-'),
                "{} is not a valid gateway server id",
                s.name
            );
            let mut names: Vec<String> = s.tools.iter().map(|t| py_name(&t.name)).collect();
            names.sort();
            names.dedup();
            assert_eq!(
                names.len(),
                s.tools.len(),
                "{}: two tools share a Python name",
                s.name
            );
            for t in &s.tools {
                assert!(
                    t.input_schema["properties"].is_object(),
                    "{}.{}",
                    s.name,
                    t.name
                );
                assert!(t.description.len() > 30, "{}.{}", s.name, t.name);
            }
        }
    }
}

#[test]
fn the_first_six_servers_are_the_same_at_every_size() {
    let small = generate(6, 96);
    for (servers, tools) in SIZES {
        assert_eq!(generate(servers, tools).servers[..6], small.servers[..]);
    }
    assert_eq!(generate(16, 508), generate(16, 508));
}

#[test]
fn calls_are_deterministic_and_checked() {
    let args = json!({"project": "ENG", "filters": {"status": "Open"}});
    assert_eq!(
        call("jira", "list_issues", &args),
        call("jira", "list_issues", &args)
    );
    let args = json!({"namespace": "prod", "limit": 5});
    assert_eq!(
        call("kubernetes", "list_pods", &args),
        call("kubernetes", "list_pods", &args)
    );
    assert!(
        call("jira", "list_issues", &json!({}))
            .unwrap_err()
            .contains("missing required argument 'project'")
    );
    assert!(
        call(
            "jira",
            "list_issues",
            &json!({"project": "ENG", "filters": {"status": "Closed"}})
        )
        .unwrap_err()
        .contains("must be one of")
    );
    assert!(
        call(
            "jira",
            "list_issues",
            &json!({"project": "ENG", "limit": 500})
        )
        .unwrap_err()
        .contains("at most 100")
    );
    assert!(
        call(
            "jira",
            "list_issues",
            &json!({"project": "ENG", "bogus": 1})
        )
        .unwrap_err()
        .contains("unknown argument")
    );
    assert!(call("jira", "get_issue", &json!({"issue_key": "ENG-999"})).is_err());
    assert!(
        call(
            "jira",
            "list_issues",
            &json!({"project": "ENG", "cursor": null})
        )
        .is_ok()
    );
    assert!(call("nope", "x", &json!({})).is_err());
}

/// Minimal valid arguments of a schema: required properties only.
fn example(schema: &Value) -> Value {
    let schema = schema.get("anyOf").and_then(|o| o.get(0)).unwrap_or(schema);
    if let Some(first) = schema.get("enum").and_then(|e| e.get(0)) {
        return first.clone();
    }
    match schema["type"].as_str() {
        Some("integer") => schema.get("minimum").cloned().unwrap_or(json!(1)),
        Some("number") => json!(1.5),
        Some("boolean") => json!(true),
        Some("array") => json!([example(&schema["items"])]),
        Some("object") | None => {
            let mut m = Map::new();
            for r in strs(schema.get("required")) {
                m.insert(r.to_string(), example(&schema["properties"][r]));
            }
            Value::Object(m)
        }
        _ => json!("example"),
    }
}

#[test]
fn every_tool_answers_minimal_valid_arguments() {
    let mut answered = 0;
    for server in generate(16, 508).servers {
        for t in &server.tools {
            let args = example(&t.input_schema);
            validate(&t.input_schema, &args, "")
                .unwrap_or_else(|e| panic!("{}.{}: {e}", server.name, t.name));
            // World-backed tools may refuse made-up ids; generic ones never do.
            if let Ok(v) = call(&server.name, &t.name, &args) {
                assert!(v.is_object(), "{}.{}", server.name, t.name);
                answered += 1;
            }
        }
    }
    assert!(answered > 480, "only {answered} tools answered");
}

#[test]
fn every_task_finishes_in_classic_mode() {
    let tasks = tasks();
    assert!((5..=8).contains(&tasks.len()));
    let small = generate(6, 96);
    for task in &tasks {
        let (answer, calls) = run_classic(task);
        assert!(
            (3..=15).contains(&calls.len()),
            "{}: {} calls",
            task.name,
            calls.len()
        );
        assert!(
            !answer.is_empty() && !answer.contains("none") && !answer.starts_with("no"),
            "{}: {answer}",
            task.name
        );
        for (server, tool) in &calls {
            let s = small
                .servers
                .iter()
                .find(|s| &s.name == server)
                .expect("a core server");
            assert!(s.tools.iter().any(|t| &t.name == tool), "{server}.{tool}");
        }
        for s in task.code_servers() {
            assert!(small.servers.iter().any(|x| x.name == s));
        }
        for (s, t) in task.code_docs() {
            assert!(
                small
                    .servers
                    .iter()
                    .any(|x| x.name == s && x.tools.iter().any(|y| y.name == t))
            );
        }
        assert!(task.script().contains("result = "));
        println!("{}: {} calls\n  {answer}", task.name, calls.len());
    }
}
