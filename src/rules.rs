//! Routing rules: ordered conditions in CEL over the request and budget
//! state, each sending traffic to weighted targets.
//!
//! A rule has a scope (everyone, or one customer, team or key), a priority
//! (lower first), a CEL condition and weighted `provider/model` targets. For
//! a request, the first enabled rule in scope whose condition is true picks
//! one of its targets by weight; the rule's other targets follow it as
//! fallbacks, before the request's own. A condition that fails to evaluate
//! (a type error, say) counts as false and is logged; one that fails to
//! compile is refused when the rule is written.
//!
//! Variables a condition can use ([`RuleInput`]): `model` (as requested),
//! `headers` (lower-cased names), `key`, `team`, `customer` (ids, or null),
//! `tokens` (the prompt's token estimate) and `budget_used_percent` (the
//! highest share of any budget above the key already spent in its window).

use std::collections::HashMap;
use std::sync::Arc;

use cel_interpreter::{Context, Program, Value};
use serde::{Deserialize, Serialize};

/// Who a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum RuleScope {
    Global,
    Customer(String),
    Team(String),
    Key(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedTarget {
    /// `provider/model`.
    pub model: String,
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// What a condition sees of a request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RuleInput {
    pub model: String,
    pub headers: HashMap<String, String>,
    pub key: Option<String>,
    pub team: Option<String>,
    pub customer: Option<String>,
    pub tokens: u64,
    pub budget_used_percent: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("condition does not compile: {0}")]
    Compile(String),
    #[error("condition: {0}")]
    Eval(String),
    #[error("condition must be true or false, not {0}")]
    NotBool(String),
}

/// A compiled condition.
pub struct Condition {
    source: String,
    program: Program,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Condition").field(&self.source).finish()
    }
}

/// The longest condition accepted, bytes.
pub const MAX_CONDITION_BYTES: usize = 1024;
/// The deepest nesting of brackets a condition may have.
const MAX_DEPTH: usize = 32;
/// The longest run of prefix operators (`-`, `!`) a condition may have.
const MAX_PREFIX_RUN: usize = 4;

/// Checks what the CEL parser would spend unbounded time on before it runs:
/// it is antlr-generated, and some malformed input sends its error recovery
/// exponential (fuzzing found 864 bytes that took 20 s and 2 GB). So a
/// condition must be short, its strings closed, its brackets balanced and
/// shallow, and its prefix operators few; only then is it parsed.
fn precheck(source: &str) -> Result<(), RuleError> {
    let bad = |why: String| Err(RuleError::Compile(why));
    if source.len() > MAX_CONDITION_BYTES {
        return bad(format!("longer than {MAX_CONDITION_BYTES} bytes"));
    }
    let mut open: Vec<char> = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut prefix_run = 0usize;
    for c in source.chars() {
        if let Some(q) = quote {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, c) if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '-' | '!' => {
                prefix_run += 1;
                if prefix_run > MAX_PREFIX_RUN {
                    return bad(format!("more than {MAX_PREFIX_RUN} operators in a row"));
                }
                continue;
            }
            c if c.is_whitespace() => continue,
            '\'' | '"' => quote = Some(c),
            '(' | '[' | '{' => {
                open.push(c);
                if open.len() > MAX_DEPTH {
                    return bad(format!("nested more than {MAX_DEPTH} deep"));
                }
            }
            ')' | ']' | '}' => {
                let want = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if open.pop() != Some(want) {
                    return bad("unbalanced brackets".into());
                }
            }
            _ => {}
        }
        prefix_run = 0;
    }
    if quote.is_some() {
        return bad("a string is not closed".into());
    }
    if !open.is_empty() {
        return bad("unbalanced brackets".into());
    }
    Ok(())
}

impl Condition {
    pub fn compile(source: &str) -> Result<Condition, RuleError> {
        precheck(source)?;
        // The CEL parser (cel-interpreter 0.10, antlr-generated) panics on
        // some malformed input instead of returning an error; a bad rule
        // must be a 400, never a crash.
        let parsed = std::panic::catch_unwind(|| Program::compile(source))
            .map_err(|_| RuleError::Compile("malformed expression".into()))?;
        let program = parsed.map_err(|e| RuleError::Compile(e.to_string()))?;
        Ok(Condition {
            source: source.to_string(),
            program,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the condition for `input`.
    pub fn eval(&self, input: &RuleInput) -> Result<bool, RuleError> {
        let mut ctx = Context::default();
        ctx.add_variable_from_value("model", input.model.clone());
        ctx.add_variable_from_value("headers", input.headers.clone());
        ctx.add_variable_from_value("key", input.key.clone());
        ctx.add_variable_from_value("team", input.team.clone());
        ctx.add_variable_from_value("customer", input.customer.clone());
        ctx.add_variable_from_value(
            "tokens",
            Value::Int(i64::try_from(input.tokens).unwrap_or(i64::MAX)),
        );
        ctx.add_variable_from_value(
            "budget_used_percent",
            Value::Float(input.budget_used_percent),
        );
        let run =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.program.execute(&ctx)))
                .map_err(|_| RuleError::Eval("the evaluator failed".into()))?;
        match run {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(RuleError::NotBool(format!("{other:?}"))),
            Err(e) => Err(RuleError::Eval(e.to_string())),
        }
    }
}

/// A rule ready for the request path.
#[derive(Debug)]
pub struct CompiledRule {
    pub id: String,
    pub priority: i64,
    pub scope: RuleScope,
    pub condition: Condition,
    pub targets: Vec<WeightedTarget>,
}

/// Which targets a matching rule sends a request to: the one drawn by
/// weight first, then the others by descending weight.
pub fn order_targets(targets: &[WeightedTarget], draw: f64) -> Vec<String> {
    let total: u64 = targets.iter().map(|t| u64::from(t.weight)).sum();
    if total == 0 {
        return Vec::new();
    }
    let mut r = (draw.clamp(0.0, 0.999_999) * total as f64) as u64;
    let mut first = 0;
    for (i, t) in targets.iter().enumerate() {
        if r < u64::from(t.weight) {
            first = i;
            break;
        }
        r -= u64::from(t.weight);
    }
    let mut rest: Vec<&WeightedTarget> = targets
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != first)
        .map(|(_, t)| t)
        .collect();
    rest.sort_by_key(|t| std::cmp::Reverse(t.weight));
    std::iter::once(&targets[first])
        .chain(rest)
        .map(|t| t.model.clone())
        .collect()
}

/// The rules in force, ordered by priority (then id).
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Arc<CompiledRule>>,
}

/// A rule that matched, and where it sends the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    pub rule: String,
    pub targets: Vec<String>,
}

impl RuleSet {
    pub fn new(mut rules: Vec<CompiledRule>) -> RuleSet {
        rules.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
        RuleSet {
            rules: rules.into_iter().map(Arc::new).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first rule in scope whose condition holds, with its targets
    /// ordered (`draw` in [0, 1) picks by weight). Conditions that fail to
    /// evaluate are skipped, and reported through `on_error`.
    pub fn route(
        &self,
        input: &RuleInput,
        draw: f64,
        mut on_error: impl FnMut(&str, &RuleError),
    ) -> Option<Routed> {
        for rule in &self.rules {
            let in_scope = match &rule.scope {
                RuleScope::Global => true,
                RuleScope::Customer(id) => input.customer.as_deref() == Some(id),
                RuleScope::Team(id) => input.team.as_deref() == Some(id),
                RuleScope::Key(id) => input.key.as_deref() == Some(id),
            };
            if !in_scope {
                continue;
            }
            match rule.condition.eval(input) {
                Ok(true) => {
                    return Some(Routed {
                        rule: rule.id.clone(),
                        targets: order_targets(&rule.targets, draw),
                    });
                }
                Ok(false) => {}
                Err(e) => on_error(&rule.id, &e),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_the_parser_could_spend_unbounded_time_on_are_refused_first() {
        // Found by fuzzing the admin API: 20 s and 2 GB in the CEL parser.
        let fuzzed = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fuzz/regressions/admin_body/cel-parser-exponential"
        ))
        .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&fuzzed[1..]).unwrap();
        let source = body["condition"].as_str().unwrap();
        assert!(matches!(
            Condition::compile(source),
            Err(RuleError::Compile(_))
        ));
        for bad in [
            "model == 'a".to_string(),
            "(model == 'a'".to_string(),
            "model == 'a')".to_string(),
            "[(])".to_string(),
            "-----1 == 1".to_string(),
            format!("{}true{}", "(".repeat(40), ")".repeat(40)),
            format!("model == '{}'", "x".repeat(MAX_CONDITION_BYTES)),
        ] {
            assert!(
                matches!(Condition::compile(&bad), Err(RuleError::Compile(_))),
                "{bad}"
            );
        }
        for good in [
            "model == 'a' && headers['x-tier'] == 'gold'",
            "!(model == 'a') || -tokens < -1",
            "model.startsWith('gpt-') && 'it\\'s' != model",
            "tokens > 1000 && (team == 't' || customer == 'c')",
        ] {
            assert!(Condition::compile(good).is_ok(), "{good}");
        }
    }

    fn input() -> RuleInput {
        RuleInput {
            model: "gpt-4o".into(),
            headers: HashMap::from([("x-tier".into(), "gold".into())]),
            key: Some("vk_1".into()),
            team: Some("team_1".into()),
            customer: None,
            tokens: 1200,
            budget_used_percent: 86.5,
        }
    }

    /// Every case in `tests/golden/rules/conditions.json` evaluates to the
    /// recorded result (`UPDATE_GOLDEN=1` rewrites the results).
    #[test]
    fn golden_condition_evaluation() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden/rules/conditions.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        let update = std::env::var_os("UPDATE_GOLDEN").is_some();
        for case in &mut cases {
            let source = case["condition"].as_str().unwrap();
            let input: RuleInput = serde_json::from_value(case["input"].clone()).unwrap();
            let got = match Condition::compile(source).and_then(|c| c.eval(&input)) {
                Ok(b) => serde_json::json!(b),
                Err(RuleError::Compile(_)) => serde_json::json!("compile error"),
                Err(RuleError::Eval(_)) | Err(RuleError::NotBool(_)) => {
                    serde_json::json!("eval error")
                }
            };
            if update {
                case["expected"] = got;
            } else {
                assert_eq!(got, case["expected"], "{source}");
            }
        }
        if update {
            std::fs::write(&path, serde_json::to_string_pretty(&cases).unwrap() + "\n").unwrap();
        }
    }

    #[test]
    fn the_first_rule_in_scope_that_holds_routes() {
        let rule = |id: &str, priority, scope, cond: &str, models: &[(&str, u32)]| CompiledRule {
            id: id.into(),
            priority,
            scope,
            condition: Condition::compile(cond).unwrap(),
            targets: models
                .iter()
                .map(|(m, w)| WeightedTarget {
                    model: (*m).into(),
                    weight: *w,
                })
                .collect(),
        };
        let set = RuleSet::new(vec![
            rule("r3", 30, RuleScope::Global, "true", &[("mock/cheap", 1)]),
            rule(
                "r1",
                10,
                RuleScope::Customer("cus_9".into()),
                "true",
                &[("mock/other", 1)],
            ),
            rule(
                "r2",
                20,
                RuleScope::Team("team_1".into()),
                "budget_used_percent > 85.0",
                &[("groq/a", 3), ("mock/b", 1)],
            ),
            rule(
                "bad",
                5,
                RuleScope::Global,
                "tokens + 'x'",
                &[("mock/x", 1)],
            ),
        ]);
        let mut errors = Vec::new();
        let routed = set
            .route(&input(), 0.1, |id, _| errors.push(id.to_string()))
            .unwrap();
        assert_eq!(routed.rule, "r2", "r1 is another customer's; bad fails");
        assert_eq!(routed.targets, vec!["groq/a", "mock/b"]);
        assert_eq!(errors, vec!["bad"]);
        let under = RuleInput {
            budget_used_percent: 50.0,
            ..input()
        };
        assert_eq!(set.route(&under, 0.1, |_, _| {}).unwrap().rule, "r3");
        // A draw past the first target's share picks the second first.
        assert_eq!(
            set.route(&input(), 0.9, |_, _| {}).unwrap().targets,
            vec!["mock/b", "groq/a"]
        );
    }
}
