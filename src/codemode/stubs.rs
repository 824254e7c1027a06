//! Python stubs and docs of MCP tools, for Code Mode's `readToolFile` and
//! `getToolDocs`: what a model reads instead of every tool's JSON Schema.
//!
//! - A stub is one compact signature per tool: required parameters first,
//!   optional ones `= None`, JSON Schema types as Python types (`str`,
//!   `int`, `float`, `bool`, `list[T]`, `dict[str, Any]`, `Literal[...]` for
//!   enums, `X | None` for nullable), and the first line of the description
//!   as a one-line docstring.
//! - Docs are one tool's full docstring: every argument with its type,
//!   whether it is required, its default, its description, the shape of
//!   nested objects (indented), enum values, a note on what it returns and a
//!   usage example built from the required arguments.
//! - Names that are not Python identifiers (`read-file`, `class`, `2fa`) are
//!   made into identifiers (`read_file`, `class_`, `_2fa`); [`py_name`] is the
//!   mapping, and a script's calls are mapped back through it.
//!
//! No I/O here: input is (server, tool, description, input schema).

use std::fmt::Write;

use serde_json::Value;

/// A tool as the stub writer sees it.
#[derive(Debug, Clone)]
pub struct ToolSpec<'a> {
    pub server: &'a str,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub input_schema: &'a Value,
}

const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "load", "nonlocal", "not", "or", "pass", "raise", "return", "try",
    "while", "with", "yield",
];

/// `name` as a Python identifier: other characters become `_`, a leading
/// digit gets a `_` in front, keywords (and Starlark's `load`) get one behind.
pub fn py_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if KEYWORDS.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

/// The Python type of a JSON Schema.
pub fn py_type(schema: &Value) -> String {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let items: Vec<String> = values.iter().map(literal).collect();
        return format!("Literal[{}]", items.join(", "));
    }
    if let Some(c) = schema.get("const") {
        return format!("Literal[{}]", literal(c));
    }
    for union in ["anyOf", "oneOf"] {
        if let Some(options) = schema.get(union).and_then(Value::as_array) {
            let mut types: Vec<String> = Vec::new();
            for o in options {
                let t = py_type(o);
                if !types.contains(&t) {
                    types.push(t);
                }
            }
            return join_union(types);
        }
    }
    match schema.get("type") {
        Some(Value::String(t)) => single(t, schema),
        Some(Value::Array(ts)) => {
            let types: Vec<String> = ts
                .iter()
                .filter_map(Value::as_str)
                .map(|t| single(t, schema))
                .collect();
            join_union(types)
        }
        _ if schema.get("properties").is_some() => "dict[str, Any]".into(),
        _ => "Any".into(),
    }
}

fn single(t: &str, schema: &Value) -> String {
    match t {
        "string" => "str".into(),
        "integer" => "int".into(),
        "number" => "float".into(),
        "boolean" => "bool".into(),
        "null" => "None".into(),
        "array" => match schema.get("items") {
            Some(items) => format!("list[{}]", py_type(items)),
            None => "list[Any]".into(),
        },
        "object" => "dict[str, Any]".into(),
        _ => "Any".into(),
    }
}

/// `A | B`, with `None` last.
fn join_union(mut types: Vec<String>) -> String {
    if types.is_empty() {
        return "Any".into();
    }
    if let Some(i) = types.iter().position(|t| t == "None") {
        let none = types.remove(i);
        types.push(none);
    }
    types.join(" | ")
}

fn literal(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

fn first_line(text: Option<&str>) -> Option<&str> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .and_then(|t| t.lines().next())
        .map(str::trim)
}

/// (name, schema, required) of a schema's properties: required ones first,
/// each group in name order (stable across servers that list keys in any order).
fn parameters(schema: &Value) -> Vec<(&str, &Value, bool)> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut params: Vec<(&str, &Value, bool)> = props
        .iter()
        .map(|(k, v)| (k.as_str(), v, required.contains(&k.as_str())))
        .collect();
    params.sort_by_key(|(_, _, req)| !req);
    params
}

/// One tool's signature: `def name(a: str, b: int = None) -> Any:` and a
/// one-line docstring.
pub fn signature(tool: &ToolSpec<'_>) -> String {
    let args: Vec<String> = parameters(tool.input_schema)
        .into_iter()
        .map(|(name, schema, required)| {
            let ty = py_type(schema);
            if required {
                format!("{}: {ty}", py_name(name))
            } else {
                format!("{}: {ty} = None", py_name(name))
            }
        })
        .collect();
    let mut out = format!("def {}({}) -> Any:", py_name(tool.name), args.join(", "));
    match first_line(tool.description) {
        Some(d) => {
            let _ = write!(out, "\n    \"\"\"{}\"\"\"", d.replace("\"\"\"", "'''"));
        }
        None => out.push_str("\n    ..."),
    }
    out
}

/// The stub file of a server: a header naming the binding, then every tool's
/// signature.
pub fn server_stub(server: &str, tools: &[ToolSpec<'_>]) -> String {
    let mut out = format!(
        "# servers/{server}.pyi — call as {}.<tool>(...)\nfrom typing import Any, Literal\n",
        py_name(server)
    );
    for t in tools {
        out.push('\n');
        out.push_str(&signature(t));
        out.push('\n');
    }
    out
}

/// The stub file of one tool (tool binding).
pub fn tool_stub(tool: &ToolSpec<'_>) -> String {
    format!(
        "# servers/{}/{}.pyi — call as {}.{}(...)\nfrom typing import Any, Literal\n\n{}\n",
        tool.server,
        tool.name,
        py_name(tool.server),
        py_name(tool.name),
        signature(tool)
    )
}

/// Lines `start..=end` (1-based, inclusive, clamped) of `text`.
pub fn line_range(text: &str, start: Option<usize>, end: Option<usize>) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let from = start.unwrap_or(1).max(1);
    let to = end.unwrap_or(lines.len()).min(lines.len());
    if from > to {
        return String::new();
    }
    lines[from - 1..to].join("\n") + "\n"
}

/// One tool's full documentation.
pub fn docs(tool: &ToolSpec<'_>) -> String {
    let mut out = signature_line(tool);
    out.push('\n');
    if let Some(d) = tool.description.map(str::trim).filter(|d| !d.is_empty()) {
        out.push('\n');
        out.push_str(d);
        out.push('\n');
    }
    let params = parameters(tool.input_schema);
    if !params.is_empty() {
        out.push_str("\nArgs:\n");
        for (name, schema, required) in &params {
            describe(&mut out, name, schema, *required, 1);
        }
    }
    out.push_str(
        "\nReturns:\n    The tool's result: its structured content when it has one, else its text \
         (a str, or a list of the content parts); a failing tool raises an error with its message.\n",
    );
    let example: Vec<String> = params
        .iter()
        .filter(|(_, _, required)| *required)
        .map(|(name, schema, _)| format!("{}={}", py_name(name), example_value(schema)))
        .collect();
    let _ = write!(
        out,
        "\nExample:\n    result = {}.{}({})\n    print(result)\n",
        py_name(tool.server),
        py_name(tool.name),
        example.join(", ")
    );
    out
}

fn signature_line(tool: &ToolSpec<'_>) -> String {
    signature(tool)
        .lines()
        .next()
        .expect("a signature has a line")
        .to_string()
}

/// One argument and, for objects and arrays of objects, its fields.
fn describe(out: &mut String, name: &str, schema: &Value, required: bool, depth: usize) {
    let pad = "    ".repeat(depth);
    let mut line = format!("{pad}{} ({}", py_name(name), py_type(schema));
    line.push_str(if required { ", required" } else { ", optional" });
    if let Some(d) = schema.get("default") {
        let _ = write!(line, ", default {}", literal(d));
    }
    line.push(')');
    if let Some(d) = first_line(schema.get("description").and_then(Value::as_str)) {
        let _ = write!(line, ": {d}");
    }
    if py_name(name) != name {
        let _ = write!(line, " [JSON name: {name:?}]");
    }
    out.push_str(&line);
    out.push('\n');
    let nested = match schema.get("type").and_then(Value::as_str) {
        Some("array") => schema.get("items"),
        _ => Some(schema),
    };
    if let Some(inner) = nested
        && depth < 4
    {
        let fields = parameters(inner);
        if !fields.is_empty() {
            let _ = writeln!(
                out,
                "{pad}    {}:",
                if std::ptr::eq(inner, schema) {
                    "fields"
                } else {
                    "each item has fields"
                }
            );
            for (n, s, r) in fields {
                describe(out, n, s, r, depth + 2);
            }
        }
    }
}

fn example_value(schema: &Value) -> String {
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return literal(first);
    }
    if let Some(d) = schema.get("default") {
        return literal(d);
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => "\"...\"".into(),
        Some("integer") => "1".into(),
        Some("number") => "1.0".into(),
        Some("boolean") => "True".into(),
        Some("array") => "[]".into(),
        Some("object") => "{}".into(),
        _ => "None".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_identifiers() {
        for (from, to) in [
            ("read_file", "read_file"),
            ("read-file", "read_file"),
            ("get.user", "get_user"),
            ("class", "class_"),
            ("load", "load_"),
            ("2fa", "_2fa"),
            ("", "_"),
        ] {
            assert_eq!(py_name(from), to);
        }
    }

    #[test]
    fn json_schema_types_map_to_python() {
        let cases = [
            (serde_json::json!({"type": "string"}), "str"),
            (
                serde_json::json!({"type": ["string", "null"]}),
                "str | None",
            ),
            (
                serde_json::json!({"type": "array", "items": {"type": "integer"}}),
                "list[int]",
            ),
            (
                serde_json::json!({"enum": ["a", "b"]}),
                "Literal[\"a\", \"b\"]",
            ),
            (
                serde_json::json!({"anyOf": [{"type": "null"}, {"type": "number"}]}),
                "float | None",
            ),
            (serde_json::json!({}), "Any"),
            (serde_json::json!({"properties": {}}), "dict[str, Any]"),
        ];
        for (schema, ty) in cases {
            assert_eq!(py_type(&schema), ty, "{schema}");
        }
    }

    /// Stubs and docs of a real-world-shaped catalog match their snapshots
    /// in `tests/golden/codemode/` (`UPDATE_GOLDEN=1` rewrites them).
    #[test]
    fn golden_stubs_and_docs() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/codemode");
        let catalog: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("catalog.json")).unwrap())
                .unwrap();
        let update = std::env::var_os("UPDATE_GOLDEN").is_some();
        for (server, tools) in catalog.as_object().unwrap() {
            let specs: Vec<ToolSpec<'_>> = tools
                .as_array()
                .unwrap()
                .iter()
                .map(|t| ToolSpec {
                    server,
                    name: t["name"].as_str().unwrap(),
                    description: t["description"].as_str(),
                    input_schema: &t["inputSchema"],
                })
                .collect();
            let mut outputs = vec![(format!("{server}.pyi"), server_stub(server, &specs))];
            for s in &specs {
                outputs.push((format!("{server}.{}.docs.txt", s.name), docs(s)));
            }
            for (file, text) in outputs {
                let path = dir.join(&file);
                if update {
                    std::fs::write(&path, &text).unwrap();
                }
                let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                    panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display())
                });
                assert_eq!(text, want, "{file}");
            }
        }
    }

    #[test]
    fn line_ranges_are_inclusive_and_clamped() {
        let text = "a\nb\nc\n";
        assert_eq!(line_range(text, Some(2), Some(3)), "b\nc\n");
        assert_eq!(line_range(text, None, Some(1)), "a\n");
        assert_eq!(line_range(text, Some(3), Some(99)), "c\n");
        assert_eq!(line_range(text, Some(5), None), "");
    }
}
