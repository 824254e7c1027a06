//! How tools behave: hashing, ids and dates, argument checks against the
//! schema, and the generic record every tool outside the world answers with.

use super::*;

// Hashing, IDs and dates
// ---------------------------------------------------------------------------

/// FNV-1a with a splitmix64 finaliser, so that nearby keys land far apart.
pub(super) fn hash(key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

pub(super) fn pick<T: Copy>(items: &[T], key: &str) -> T {
    items[(hash(key) % items.len() as u64) as usize]
}

/// An integer in `lo..=hi` chosen by `key`.
pub(super) fn between(key: &str, lo: i64, hi: i64) -> i64 {
    lo + (hash(key) % (hi - lo + 1) as u64) as i64
}

pub(super) const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
pub(super) const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub(super) const HEX: &[u8] = b"0123456789abcdef";
pub(super) const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// `prefix` then `len` characters of `alphabet` chosen by `key`.
pub(super) fn ident(prefix: &str, key: &str, len: usize, alphabet: &[u8]) -> String {
    let mut out = prefix.to_string();
    let mut h = 0;
    for i in 0..len {
        if i % 8 == 0 {
            h = hash(&format!("{key}#{i}"));
        }
        out.push(alphabet[(h % alphabet.len() as u64) as usize] as char);
        h /= alphabet.len() as u64;
    }
    out
}

/// The benchmark's "now": every date in the world is relative to it.
pub(super) const TODAY: &str = "2026-03-12";
pub(super) const NOW_HOUR: i64 = 10;

pub(super) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(super) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a string starting with `YYYY-MM-DD`.
pub(super) fn day_of(text: &str) -> Option<i64> {
    let y = text.get(0..4)?.parse().ok()?;
    let m = text.get(5..7)?.parse().ok()?;
    let d = text.get(8..10)?.parse().ok()?;
    (text.get(4..5) == Some("-") && text.get(7..8) == Some("-")).then(|| days_from_civil(y, m, d))
}

pub(super) fn today() -> i64 {
    day_of(TODAY).expect("TODAY is a date")
}

pub(super) fn now_unix() -> i64 {
    today() * 86_400 + NOW_HOUR * 3600
}

pub(super) fn date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// RFC 3339 in UTC, e.g. `2026-03-12T09:30:00Z`.
pub(super) fn stamp(unix: i64) -> String {
    let secs = unix.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        date(unix.div_euclid(86_400)),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

// ---------------------------------------------------------------------------
// Arguments: schema check, access
// ---------------------------------------------------------------------------

/// Checks `value` against the subset of JSON Schema the catalog uses:
/// types, required properties, unknown properties, enums, integer bounds,
/// array items, `anyOf`. A null stands for an absent optional argument.
pub(super) fn validate(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let at = |p: &str| {
        if p.is_empty() {
            "arguments".to_string()
        } else {
            format!("'{p}'")
        }
    };
    if value.is_null() {
        return Ok(());
    }
    if let Some(options) = schema.get("anyOf").and_then(Value::as_array) {
        let mut last = Ok(());
        for o in options {
            last = validate(o, value, path);
            if last.is_ok() {
                return last;
            }
        }
        return last;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        return Err(format!(
            "{} must be one of {}, not {value}",
            at(path),
            list.join(", ")
        ));
    }
    let fits = |ty: &str| match ty {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        _ => true,
    };
    let ok = match schema.get("type") {
        Some(Value::String(t)) => fits(t),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).any(fits),
        _ => true,
    };
    if !ok {
        return Err(format!("{} must be of type {}", at(path), schema["type"]));
    }
    if let Some(n) = value.as_i64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_i64)
            && n < min
        {
            return Err(format!("{} must be at least {min}", at(path)));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_i64)
            && n > max
        {
            return Err(format!("{} must be at most {max}", at(path)));
        }
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match value {
        Value::Object(fields) => {
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for r in required.iter().filter_map(Value::as_str) {
                    if fields.get(r).is_none_or(Value::is_null) {
                        return Err(format!("missing required argument '{}'", join(r)));
                    }
                }
            }
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                let open = schema
                    .get("additionalProperties")
                    .is_some_and(|a| a != &Value::Bool(false));
                for (k, v) in fields {
                    match props.get(k) {
                        Some(p) => validate(p, v, &join(k))?,
                        None if !open => {
                            let mut known: Vec<&str> = props.keys().map(String::as_str).collect();
                            known.sort_unstable();
                            return Err(format!(
                                "unknown argument '{}' (expected one of: {})",
                                join(k),
                                known.join(", ")
                            ));
                        }
                        None => {}
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    validate(item, v, &format!("{path}[{i}]"))?;
                }
            }
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                return Err(format!("{} needs at least {min} items", at(path)));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Drops null members of objects (a script's `x=None` means "not given").
pub(super) fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// Checked arguments of one call.
pub(super) struct Args<'a>(pub(super) &'a Map<String, Value>);

impl Args<'_> {
    pub(super) fn str(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(Value::as_str)
    }

    /// A required string (the schema check guarantees it is there).
    pub(super) fn req(&self, k: &str) -> &str {
        self.str(k).unwrap_or_default()
    }

    pub(super) fn int(&self, k: &str) -> Option<i64> {
        self.0.get(k).and_then(Value::as_i64)
    }

    pub(super) fn bool(&self, k: &str) -> Option<bool> {
        self.0.get(k).and_then(Value::as_bool)
    }

    pub(super) fn strs(&self, k: &str) -> Vec<&str> {
        strs(self.0.get(k))
    }

    pub(super) fn sub(&self, k: &str) -> Args<'_> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        match self.0.get(k).and_then(Value::as_object) {
            Some(m) => Args(m),
            None => Args(EMPTY.get_or_init(Map::new)),
        }
    }
}

pub(super) fn strs(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `items[offset..offset + limit]` and whether more follow.
pub(super) fn page<T: Clone>(items: &[T], offset: usize, limit: usize) -> (Vec<T>, bool) {
    let from = offset.min(items.len());
    let to = (from + limit).min(items.len());
    (items[from..to].to_vec(), to < items.len())
}

// ---------------------------------------------------------------------------
// Generic behaviour: a plausible record built from the arguments
// ---------------------------------------------------------------------------

pub(super) const OWNERS: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "hiro",
];

/// Arguments that steer a call rather than describe an object.
pub(super) const CONTROL: &[&str] = &[
    "limit",
    "per_page",
    "page",
    "cursor",
    "max_results",
    "page_size",
    "count",
    "offset",
    "sort",
    "order",
    "direction",
    "include",
    "expand",
    "fields",
    "format",
    "force",
    "start_cursor",
    "starting_after",
    "max_keys",
    "continuation_token",
    "filters",
    "filter",
];

pub(super) fn generic(server: &str, spec: &Spec, args: &Map<String, Value>) -> Value {
    let res = spec.res;
    let tool = spec.def.name.as_str();
    let key = format!("{server}/{tool}/{}", Value::Object(args.clone()));
    // The object a call is about: the first string argument naming one.
    let target = args
        .iter()
        .filter(|(k, _)| !CONTROL.contains(&k.as_str()))
        .find(|(k, v)| {
            v.is_string()
                && (k.ends_with("id")
                    || k.ends_with("_key")
                    || ["name", "key", "path", "url", "sha"].contains(&k.as_str()))
        })
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string);
    let limit = [
        "limit",
        "per_page",
        "max_results",
        "page_size",
        "count",
        "max_keys",
    ]
    .iter()
    .find_map(|k| args.get(*k).and_then(Value::as_i64))
    .unwrap_or(25)
    .clamp(1, 100) as usize;
    match spec.kind {
        Kind::List | Kind::Search => {
            let total = 4 + (hash(&key) % 6) as usize;
            let start = (hash(&format!("{key}/offset")) % res.names.len() as u64) as usize;
            let items: Vec<Value> = (0..total.min(limit))
                .map(|i| {
                    let id = ident(res.prefix, &format!("{key}#{i}"), 10, LOWER);
                    let name = res.names[(start + i) % res.names.len()];
                    let full = record(res, spec.host, &id, name, args);
                    brief(full)
                })
                .collect();
            let more = hash(&format!("{key}/more")).is_multiple_of(3);
            let mut out = Map::new();
            let field = if spec.kind == Kind::Search {
                "results"
            } else {
                res.plural
            };
            out.insert(field.into(), Value::Array(items));
            out.insert("total".into(), json!(total + if more { limit } else { 0 }));
            out.insert(
                "next_cursor".into(),
                if more {
                    json!(ident("cur_", &key, 16, ALNUM))
                } else {
                    Value::Null
                },
            );
            Value::Object(out)
        }
        Kind::Get | Kind::Update => {
            let id = target.unwrap_or_else(|| ident(res.prefix, &key, 10, LOWER));
            let name = pick(res.names, &id);
            let mut m = record(res, spec.host, &id, name, args);
            if spec.kind == Kind::Update {
                for (k, v) in args {
                    if !CONTROL.contains(&k.as_str()) && !k.ends_with("id") {
                        m.insert(k.clone(), v.clone());
                    }
                }
                m.insert("updated_at".into(), json!(stamp(now_unix())));
            }
            Value::Object(m)
        }
        Kind::Create => {
            let id = ident(res.prefix, &key, 12, LOWER);
            let name = args
                .get("name")
                .or_else(|| args.get("title"))
                .or_else(|| args.get("summary"))
                .and_then(Value::as_str)
                .unwrap_or_else(|| pick(res.names, &key))
                .to_string();
            let mut m = record(res, spec.host, &id, &name, args);
            for (k, v) in args {
                if !CONTROL.contains(&k.as_str()) && v.is_string() && k != "name" {
                    m.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            m.insert("created_at".into(), json!(stamp(now_unix())));
            m.insert("updated_at".into(), json!(stamp(now_unix())));
            Value::Object(m)
        }
        Kind::Delete => json!({
            "id": target.unwrap_or_else(|| ident(res.prefix, &key, 10, LOWER)),
            "object": res.singular,
            "deleted": true,
        }),
        Kind::Action => {
            let mut m = Map::new();
            m.insert("id".into(), json!(ident("op_", &key, 12, LOWER)));
            m.insert("action".into(), json!(tool));
            m.insert(
                "status".into(),
                json!(pick(&["completed", "completed", "accepted"], &key)),
            );
            if let Some(t) = target {
                m.insert("target".into(), json!(t));
            }
            for (k, v) in args {
                if !CONTROL.contains(&k.as_str())
                    && (v.is_string() || v.is_number() || v.is_boolean())
                {
                    m.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            m.insert("requested_at".into(), json!(stamp(now_unix())));
            m.insert(
                "url".into(),
                json!(format!(
                    "https://{}/operations/{}",
                    spec.host,
                    ident("", &key, 10, LOWER)
                )),
            );
            Value::Object(m)
        }
    }
}

/// A full record of `res` with id `id`: ~10 fields derived from the id,
/// scope arguments (namespace, bucket...) echoed, filters honoured.
pub(super) fn record(
    res: &Res,
    host: &str,
    id: &str,
    name: &str,
    args: &Map<String, Value>,
) -> Map<String, Value> {
    let k = |f: &str| format!("{}/{id}/{f}", res.singular);
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("name".into(), json!(name));
    if !res.statuses.is_empty() {
        let wanted = args
            .get("filters")
            .and_then(|f| f.get("status"))
            .or_else(|| args.get("status"))
            .and_then(Value::as_str)
            .filter(|s| res.statuses.contains(s));
        let status = wanted.unwrap_or_else(|| pick(res.statuses, &k("status")));
        m.insert("status".into(), json!(status));
    }
    for (f, fld) in res.fields {
        let v = match fld {
            Fld::Pool(values) => json!(pick(values, &k(f))),
            Fld::Int(lo, hi) => json!(between(&k(f), *lo, *hi)),
            Fld::Bool => json!(hash(&k(f)).is_multiple_of(2)),
            Fld::Day => json!(date(today() - between(&k(f), 0, 60))),
        };
        m.insert((*f).into(), v);
    }
    for (a, v) in args {
        if !CONTROL.contains(&a.as_str())
            && v.is_string()
            && !m.contains_key(a)
            && !a.ends_with("id")
        {
            m.insert(a.clone(), v.clone());
        }
    }
    let owner = pick(OWNERS, &k("owner"));
    m.insert("owner".into(), json!(format!("{owner}@acme.dev")));
    let created =
        now_unix() - between(&k("created"), 30, 400) * 86_400 - between(&k("t"), 0, 86_399);
    m.insert("created_at".into(), json!(stamp(created)));
    m.insert(
        "updated_at".into(),
        json!(stamp(
            now_unix() - between(&k("updated"), 3600, 30 * 86_400)
        )),
    );
    m.insert(
        "url".into(),
        json!(format!("https://{host}/{}/{id}", res.plural)),
    );
    m
}

/// What a list shows of a record.
pub(super) fn brief(mut full: Map<String, Value>) -> Value {
    full.remove("url");
    full.remove("created_at");
    Value::Object(full)
}

// ---------------------------------------------------------------------------
