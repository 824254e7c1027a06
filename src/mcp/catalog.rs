//! Resources, resource templates and prompts of every connected upstream
//! server, as `/mcp` shows them: named `server-name` like tools (so the same
//! key scopes and tool groups select them), each encoded once when the
//! catalog is built. Resource URIs are the upstream's own: `resources/read`
//! finds its server by the URI (a listed resource, else a template that
//! matches it). No I/O here.

use std::collections::HashMap;
use std::sync::Arc;

use rmcp::model::{Prompt, Resource, ResourceTemplate};
use serde_json::value::RawValue;

use crate::governance::ToolScope;
use crate::governance::objects::McpServer;

/// The most resources, templates or prompts one server contributes; a
/// server listing more is cut (and says so in the node's log).
pub const MAX_PER_SERVER: usize = 10_000;
/// The longest URI `resources/read` matches against templates.
const MAX_MATCHED_URI: usize = 4096;

/// What one server listed besides its tools.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listed {
    pub resources: Vec<Resource>,
    pub templates: Vec<ResourceTemplate>,
    pub prompts: Vec<Prompt>,
}

impl Listed {
    /// Cuts each list to [`MAX_PER_SERVER`]; true if anything was cut.
    pub fn bound(&mut self) -> bool {
        let over = self.resources.len() > MAX_PER_SERVER
            || self.templates.len() > MAX_PER_SERVER
            || self.prompts.len() > MAX_PER_SERVER;
        self.resources.truncate(MAX_PER_SERVER);
        self.templates.truncate(MAX_PER_SERVER);
        self.prompts.truncate(MAX_PER_SERVER);
        over
    }
}

/// One resource, template or prompt as `/mcp` shows it.
#[derive(Debug)]
pub struct Entry {
    pub server: Arc<str>,
    /// `server-name`.
    pub name: String,
    /// Its name at its server.
    pub original: String,
    /// The resource's URI or the template's URI template; empty for prompts.
    pub uri: String,
    /// The definition renamed, encoded once.
    pub json: Box<RawValue>,
    /// Whose connection reads it, for a per-user OAuth server (`None`: the
    /// gateway's own connection).
    pub subject: Option<Arc<str>>,
}

/// The three kinds of things the catalog lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Resources,
    Templates,
    Prompts,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Resources, Kind::Templates, Kind::Prompts];

    /// The field a list result carries them in.
    fn field(self) -> &'static str {
        match self {
            Kind::Resources => "resources",
            Kind::Templates => "resourceTemplates",
            Kind::Prompts => "prompts",
        }
    }
}

#[derive(Debug, Default)]
pub struct Catalog {
    resources: Vec<Entry>,
    templates: Vec<Entry>,
    prompts: Vec<Entry>,
    by_uri: HashMap<String, Vec<usize>>,
    by_prompt: HashMap<String, usize>,
}

/// `item` as the catalog shows it: renamed `server-name` by `rename`, encoded.
fn entry<T: serde::Serialize + Clone>(
    server: &Arc<str>,
    item: &T,
    original: &str,
    uri: &str,
    rename: impl Fn(&mut T, String),
) -> Entry {
    let name = super::tool_name(server, original);
    let mut shown = item.clone();
    rename(&mut shown, name.clone());
    Entry {
        server: server.clone(),
        name,
        original: original.to_string(),
        uri: uri.to_string(),
        json: serde_json::value::to_raw_value(&shown).expect("MCP definitions encode"),
        subject: None,
    }
}

/// `{"<field>":[a,b,…]<trailer>}` from encoded items; `trailer` is empty or
/// starts with a comma (the stateless era's cache fields).
pub fn join<'a>(
    field: &str,
    items: impl Iterator<Item = &'a RawValue>,
    trailer: &str,
) -> Box<RawValue> {
    let mut out = format!(r#"{{"{field}":["#);
    for (i, json) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(json.get());
    }
    out.push(']');
    out.push_str(trailer);
    out.push('}');
    RawValue::from_string(out).expect("joined JSON values are JSON")
}

impl Catalog {
    /// The catalog of one subject's connection to a per-user OAuth server.
    pub fn personal(server: &McpServer, listed: &Listed, subject: &str) -> Catalog {
        let mut c = Catalog::build([(server, listed)]);
        let subject: Arc<str> = Arc::from(subject);
        for list in [&mut c.resources, &mut c.templates, &mut c.prompts] {
            list.iter_mut()
                .for_each(|e| e.subject = Some(subject.clone()));
        }
        c
    }

    pub fn build<'a>(servers: impl IntoIterator<Item = (&'a McpServer, &'a Listed)>) -> Catalog {
        let mut c = Catalog::default();
        for (server, listed) in servers {
            let id: Arc<str> = Arc::from(server.id.as_str());
            for r in &listed.resources {
                c.resources
                    .push(entry(&id, r, &r.name, &r.uri, |r, n| r.name = n));
            }
            for t in &listed.templates {
                c.templates
                    .push(entry(&id, t, &t.name, &t.uri_template, |t, n| t.name = n));
            }
            for p in &listed.prompts {
                c.prompts
                    .push(entry(&id, p, &p.name, "", |p, n| p.name = n));
            }
        }
        for list in [&mut c.resources, &mut c.templates, &mut c.prompts] {
            list.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.uri.cmp(&b.uri)));
        }
        c.prompts.dedup_by(|a, b| a.name == b.name);
        for (i, r) in c.resources.iter().enumerate() {
            c.by_uri.entry(r.uri.clone()).or_default().push(i);
        }
        c.by_prompt = c
            .prompts
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), i))
            .collect();
        c
    }

    fn entries(&self, kind: Kind) -> &[Entry] {
        match kind {
            Kind::Resources => &self.resources,
            Kind::Templates => &self.templates,
            Kind::Prompts => &self.prompts,
        }
    }

    /// The list result of `kind` for `scope`.
    pub fn list_json(&self, kind: Kind, scope: &ToolScope, trailer: &str) -> Box<RawValue> {
        self.list_json_with(kind, scope, &[], trailer)
    }

    /// [`Self::list_json`], followed by what the catalogs in `more` list.
    pub fn list_json_with(
        &self,
        kind: Kind,
        scope: &ToolScope,
        more: &[Arc<Catalog>],
        trailer: &str,
    ) -> Box<RawValue> {
        let shown = std::iter::once(self)
            .chain(more.iter().map(|c| &**c))
            .flat_map(|c| c.entries(kind))
            .filter(|e| scope.allows(&e.name))
            .map(|e| &*e.json);
        join(kind.field(), shown, trailer)
    }

    /// Whether `kind` lists the same things in both catalogs.
    pub fn same(&self, other: &Catalog, kind: Kind) -> bool {
        let (a, b) = (self.entries(kind), other.entries(kind));
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.json.get() == y.json.get())
    }

    /// The prompt named `name`, if `scope` allows it.
    pub fn prompt(&self, scope: &ToolScope, name: &str) -> Option<&Entry> {
        let p = &self.prompts[*self.by_prompt.get(name)?];
        scope.allows(&p.name).then_some(p)
    }

    /// The resource or template `scope` allows that `uri` reads: a listed
    /// resource of that URI, else the first template (in name order) that
    /// matches it.
    pub fn resource(&self, scope: &ToolScope, uri: &str) -> Option<&Entry> {
        let listed = self.by_uri.get(uri).into_iter().flatten();
        if let Some(r) = listed
            .map(|&i| &self.resources[i])
            .find(|r| scope.allows(&r.name))
        {
            return Some(r);
        }
        if uri.len() > MAX_MATCHED_URI {
            return None;
        }
        self.templates
            .iter()
            .find(|t| scope.allows(&t.name) && template_matches(&t.uri, uri))
    }

    pub fn count_of(&self, server: &str, kind: Kind) -> usize {
        self.entries(kind)
            .iter()
            .filter(|e| &*e.server == server)
            .count()
    }
}

/// Whether `uri` is an expansion of the RFC 6570 URI template `template`.
/// A simple `{var}` stands for one or more characters other than `/`, `?`
/// and `#` (expansion percent-encodes those); `{+var}` and `{#var}` for any;
/// `{/var}`, `{.var}`, `{;var}`, `{?var}` and `{&var}` for anything (their
/// expansions may be empty). Linear in the template's parts times the URI's
/// length.
pub fn template_matches(template: &str, uri: &str) -> bool {
    let uri = uri.as_bytes();
    // Positions of `uri` the template so far can end at.
    let mut reach = vec![false; uri.len() + 1];
    reach[0] = true;
    let mut rest = template;
    while !rest.is_empty() {
        let mut next = vec![false; uri.len() + 1];
        if let Some(open) = rest.strip_prefix('{') {
            let Some((expr, after)) = open.split_once('}') else {
                return false;
            };
            rest = after;
            let (allowed, non_empty): (fn(u8) -> bool, bool) = match expr.as_bytes().first() {
                Some(b'+' | b'#') => (|_| true, true),
                Some(b'/' | b'.' | b';' | b'?' | b'&') => (|_| true, false),
                _ => (|b| !matches!(b, b'/' | b'?' | b'#'), true),
            };
            // A start inside the previous start's run ends where that run
            // does (which characters are allowed does not depend on where),
            // so each character is looked at once per part.
            let mut run_end = None;
            for start in (0..=uri.len()).filter(|&p| reach[p]) {
                if !non_empty {
                    next[start] = true;
                }
                if run_end.is_some_and(|e| start < e) {
                    continue;
                }
                let mut end = start;
                while end < uri.len() && allowed(uri[end]) {
                    end += 1;
                    next[end] = true;
                }
                run_end = Some(end);
            }
        } else {
            let lit_end = rest.find('{').unwrap_or(rest.len());
            let lit = &rest.as_bytes()[..lit_end];
            rest = &rest[lit_end..];
            for start in (0..=uri.len()).filter(|&p| reach[p]) {
                if uri[start..].starts_with(lit) {
                    next[start + lit.len()] = true;
                }
            }
        }
        reach = next;
        if !reach.contains(&true) {
            return false;
        }
    }
    reach[uri.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::objects::McpTransport;
    use serde_json::{Value, json};

    fn server(name: &str) -> McpServer {
        McpServer {
            id: name.into(),
            transport: McpTransport::Http {
                url: "http://127.0.0.1:1/mcp".into(),
                headers: Default::default(),
            },
            tool_prices: Default::default(),
            auto_execute: Default::default(),
            code_mode: false,
            oauth: None,
            enabled: true,
            created_at: 0,
        }
    }

    fn listed(resources: &[(&str, &str)], templates: &[(&str, &str)], prompts: &[&str]) -> Listed {
        Listed {
            resources: resources
                .iter()
                .map(|(n, u)| serde_json::from_value(json!({"name": n, "uri": u})).unwrap())
                .collect(),
            templates: templates
                .iter()
                .map(|(n, u)| serde_json::from_value(json!({"name": n, "uriTemplate": u})).unwrap())
                .collect(),
            prompts: prompts
                .iter()
                .map(|n| serde_json::from_value(json!({"name": n})).unwrap())
                .collect(),
        }
    }

    #[test]
    fn templates_match_their_expansions_only() {
        assert!(template_matches("file:///{path}", "file:///a.txt"));
        assert!(!template_matches("file:///{path}", "file:///dir/a.txt"));
        assert!(template_matches("file:///{+path}", "file:///dir/a.txt"));
        assert!(!template_matches("file:///{path}", "file:///"));
        assert!(template_matches(
            "users://{id}/profile",
            "users://42/profile"
        ));
        assert!(!template_matches(
            "users://{id}/profile",
            "users://42/posts"
        ));
        assert!(template_matches(
            "search://q{?term,lang}",
            "search://q?term=a&lang=b"
        ));
        assert!(template_matches("search://q{?term}", "search://q"));
        assert!(template_matches("a://{x}-{y}", "a://1-2-3"));
        assert!(!template_matches("a://{x", "a://1"));
        assert!(template_matches("plain://exact", "plain://exact"));
        assert!(!template_matches("plain://exact", "plain://exactly"));
        // Hostile lengths answer in linear time.
        let long = "x".repeat(MAX_MATCHED_URI);
        assert!(template_matches("{a}{b}{c}{d}", &long));
        assert!(!template_matches(&"{a}".repeat(64), &long[..10]));
    }

    #[test]
    fn names_scopes_and_routing() {
        let (files, notes) = (server("files"), server("notes"));
        let f = listed(
            &[("readme", "file:///readme.md"), ("shared", "mem://shared")],
            &[("by_path", "file:///{+path}")],
            &["review"],
        );
        let n = listed(
            &[("shared", "mem://shared")],
            &[("note", "note://{id}")],
            &["summary"],
        );
        let c = Catalog::build([(&files, &f), (&notes, &n)]);
        let all = ToolScope::new(None, &[]);
        let listed: Value =
            serde_json::from_str(c.list_json(Kind::Resources, &all, "").get()).unwrap();
        let names: Vec<&str> = listed["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["files-readme", "files-shared", "notes-shared"]);
        assert_eq!(listed["resources"][0]["uri"], "file:///readme.md");
        let trailer = r#","ttlMs":5,"resultType":"complete""#;
        let prompts: Value =
            serde_json::from_str(c.list_json(Kind::Prompts, &all, trailer).get()).unwrap();
        assert_eq!(prompts["prompts"][1]["name"], "notes-summary");
        assert_eq!(prompts["ttlMs"], 5);

        // Routing: the listed URI, then templates; the scope applies to both.
        assert_eq!(
            &*c.resource(&all, "file:///readme.md").unwrap().server,
            "files"
        );
        let by_template = c.resource(&all, "file:///docs/a.md").unwrap();
        assert_eq!(
            (by_template.name.as_str(), by_template.original.as_str()),
            ("files-by_path", "by_path")
        );
        assert_eq!(&*c.resource(&all, "note://7").unwrap().server, "notes");
        assert!(c.resource(&all, "other://x").is_none());
        let notes_only = ToolScope::new(Some(&["notes-*".to_string()]), &[]);
        assert_eq!(
            &*c.resource(&notes_only, "mem://shared").unwrap().server,
            "notes"
        );
        assert!(c.resource(&notes_only, "file:///readme.md").is_none());
        assert!(c.resource(&notes_only, "file:///docs/a.md").is_none());
        let p = c.prompt(&all, "files-review").unwrap();
        assert_eq!((&*p.server, p.original.as_str()), ("files", "review"));
        assert!(c.prompt(&notes_only, "files-review").is_none());
        assert!(c.prompt(&all, "review").is_none());
        let listed: Value =
            serde_json::from_str(c.list_json(Kind::Templates, &notes_only, "").get()).unwrap();
        assert_eq!(
            listed,
            json!({"resourceTemplates": [{"name": "notes-note", "uriTemplate": "note://{id}"}]})
        );

        let same = Catalog::build([(&files, &f), (&notes, &n)]);
        assert!(Kind::ALL.iter().all(|&k| c.same(&same, k)));
        let fewer = Catalog::build([(&files, &f)]);
        assert!(!c.same(&fewer, Kind::Prompts));
        assert_eq!(c.count_of("files", Kind::Resources), 2);
    }
}
