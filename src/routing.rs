//! Where a request goes: model names to targets, and a target to a provider key.
//!
//! A model is `provider/model` (the provider's configured name, then the
//! upstream model id, which may itself contain `/`), or a bare name looked up
//! in the catalog of configured providers. Keys are chosen by weight among
//! those allowed to serve the model, skipping keys cooling down after a 429
//! and keys the current request has seen rejected. Reads are lock-free: the
//! only shared mutable state is each key's cool-down deadline, an atomic.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue};

use crate::config::{Config, ProviderConfig, UpstreamConfig};
use crate::providers::presets::Format;
use crate::providers::presets::{AuthStyle, ProviderKind, UrlStyle};

/// A provider as the request path uses it: config resolved, headers pre-built.
#[derive(Debug)]
pub struct Provider {
    /// Position in [`Catalog::providers`]; indexes per-provider resources such as HTTP clients.
    pub index: usize,
    pub name: Arc<str>,
    pub kind: ProviderKind,
    /// Without a trailing slash.
    pub base_url: String,
    pub auth: AuthStyle,
    pub urls: UrlStyle,
    pub stream_usage: bool,
    /// The API the upstream speaks.
    pub wire: Format,
    /// OpenAI format: models that take `reasoning_effort`.
    pub reasoning_models: Vec<Pattern>,
    pub keys: Vec<ProviderKey>,
    pub models: Vec<String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub upstream: UpstreamConfig,
    pub api_version: Option<String>,
    pub deployments: HashMap<String, String>,
}

#[derive(Debug)]
pub struct ProviderKey {
    pub name: Arc<str>,
    /// The header value ready to send (`Bearer ...` or the bare key), marked sensitive.
    pub header: HeaderValue,
    pub weight: u32,
    models: Vec<Pattern>,
    /// Milliseconds since `Catalog::epoch` before which this key is not used (429).
    cool_until_ms: AtomicU64,
    /// Bedrock: how requests with this key are signed, and where they go.
    pub aws: Option<AwsKey>,
    /// Vertex: the key's project, location and token.
    pub vertex: Option<crate::providers::vertex::Key>,
}

/// A Bedrock key: its credentials (or API key) and region.
#[derive(Debug)]
pub struct AwsKey {
    pub auth: crate::providers::aws::Auth,
    pub region: String,
    /// The provider's base URL with this key's region in it.
    pub base_url: String,
}

/// A resolved destination: which provider, which upstream model.
#[derive(Debug, Clone)]
pub struct Target {
    pub provider: Arc<Provider>,
    pub model: String,
    /// The API this model is reached through (a Vertex provider serves
    /// Gemini models natively and Claude models in Anthropic's format).
    pub wire: Format,
    /// The model as metrics and route health name it (see [`ModelLabels`]).
    pub label: Arc<str>,
}

/// Names for models in metric labels and the (gossiped) route health map,
/// which must stay bounded whatever model names clients send: a model the
/// provider lists is itself; any other is itself while fewer than
/// [`ModelLabels::CAP`] such names were seen, and `other` after that.
#[derive(Debug, Default)]
pub struct ModelLabels {
    seen: std::sync::RwLock<std::collections::HashSet<Arc<str>>>,
}

impl ModelLabels {
    pub const CAP: usize = 256;
    pub const OTHER: &'static str = "other";

    fn label(&self, provider: &Provider, model: &str) -> Arc<str> {
        if provider.models.iter().any(|m| m == model) {
            return model.into();
        }
        if let Some(l) = self.seen.read().expect("labels lock").get(model) {
            return l.clone();
        }
        let mut seen = self.seen.write().expect("labels lock");
        if seen.len() >= Self::CAP {
            return Self::OTHER.into();
        }
        let l: Arc<str> = model.into();
        seen.insert(l.clone());
        l
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResolveError {
    #[error(
        "model '{0}' not found: name it as provider/model, or use a model listed at /v1/models"
    )]
    UnknownModel(String),
    #[error("provider '{provider}' has no key that may serve model '{model}'")]
    NoKeyForModel { provider: String, model: String },
}

/// `*` matches any run of characters; everything else literally.
#[derive(Debug, Clone)]
pub struct Pattern(String);

impl Pattern {
    pub fn new(p: impl Into<String>) -> Pattern {
        Pattern(p.into())
    }

    pub fn matches(&self, s: &str) -> bool {
        glob(self.0.as_bytes(), s.as_bytes())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    // Iterative wildcard match with single backtrack point: O(|p|·|s|) worst case.
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Why a key was not available for an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoKey {
    /// Every key allowed for the model is cooling down; the soonest is free after this long.
    CoolingDown(Duration),
    /// Every allowed key was rejected (401/403) during this request.
    Exhausted,
}

/// All configured providers, built once at start-up.
#[derive(Debug)]
pub struct Catalog {
    providers: Vec<Arc<Provider>>,
    by_name: HashMap<String, Arc<Provider>>,
    /// Bare model name → every provider listing it, in config order.
    bare: HashMap<String, Vec<Arc<Provider>>>,
    epoch: Instant,
    labels: ModelLabels,
}

impl Catalog {
    pub fn from_config(config: &Config) -> Catalog {
        let providers: Vec<Arc<Provider>> = config
            .providers
            .iter()
            .enumerate()
            .map(|(i, (name, p))| Arc::new(build_provider(i, name, p, &config.upstream)))
            .collect();
        let mut by_name = HashMap::new();
        let mut bare = HashMap::new();
        for p in &providers {
            by_name.insert(p.name.to_string(), p.clone());
            for m in &p.models {
                bare.entry(m.clone())
                    .or_insert_with(Vec::new)
                    .push(p.clone());
            }
        }
        Catalog {
            providers,
            by_name,
            bare,
            epoch: Instant::now(),
            labels: ModelLabels::default(),
        }
    }

    pub fn providers(&self) -> &[Arc<Provider>] {
        &self.providers
    }

    /// `provider/model` when `provider` is configured; otherwise the whole
    /// string as a bare catalog name, served by the first provider listing it.
    pub fn resolve(&self, model: &str) -> Result<Target, ResolveError> {
        self.candidates(model).map(|mut c| c.swap_remove(0))
    }

    /// Every target that can serve `model`: the one named by a
    /// `provider/model`, or each provider whose catalog lists a bare name (in
    /// config order, those with a key for it).
    pub fn candidates(&self, model: &str) -> Result<Vec<Target>, ResolveError> {
        if let Some((prefix, rest)) = model.split_once('/')
            && let Some(p) = self.by_name.get(prefix)
            && !rest.is_empty()
        {
            return self.check_keys(p, rest).map(|t| vec![t]);
        }
        let Some(providers) = self.bare.get(model) else {
            return Err(ResolveError::UnknownModel(model.to_string()));
        };
        let mut out = Vec::with_capacity(providers.len());
        let mut first_err = None;
        for p in providers {
            match self.check_keys(p, model) {
                Ok(t) => out.push(t),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if out.is_empty() {
            return Err(first_err.expect("a listed model has a provider"));
        }
        Ok(out)
    }

    fn check_keys(&self, p: &Arc<Provider>, model: &str) -> Result<Target, ResolveError> {
        if !p.keys.is_empty() && !p.keys.iter().any(|k| k.allows(model)) {
            return Err(ResolveError::NoKeyForModel {
                provider: p.name.to_string(),
                model: model.to_string(),
            });
        }
        Ok(Target {
            provider: p.clone(),
            wire: p.wire_for(model),
            model: model.to_string(),
            label: self.labels.label(p, model),
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The keys of `target` a request may use now: allowed for the model, not
    /// in `excluded`, not cooling down.
    pub fn usable_keys(&self, target: &Target, excluded: &[usize]) -> Vec<usize> {
        let now = self.now_ms();
        target
            .provider
            .keys
            .iter()
            .enumerate()
            .filter(|(i, k)| {
                k.allows(&target.model)
                    && !excluded.contains(i)
                    && k.cool_until_ms.load(Ordering::Relaxed) <= now
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Picks a key for `target` by weight, skipping keys in `excluded` (indices
    /// rejected during this request) and keys cooling down. `Ok(None)` for
    /// providers that need no key.
    pub fn pick_key(&self, target: &Target, excluded: &[usize]) -> Result<Option<usize>, NoKey> {
        let keys = &target.provider.keys;
        if keys.is_empty() {
            return Ok(None);
        }
        let now = self.now_ms();
        let mut total = 0u64;
        let mut soonest: Option<u64> = None;
        let mut any_allowed = false;
        // Two passes over a handful of keys: sum weights of usable keys, then pick.
        let usable = |i: usize, k: &ProviderKey| k.allows(&target.model) && !excluded.contains(&i);
        for (i, k) in keys.iter().enumerate() {
            if !usable(i, k) {
                continue;
            }
            any_allowed = true;
            let until = k.cool_until_ms.load(Ordering::Relaxed);
            if until > now {
                soonest = Some(soonest.map_or(until, |s| s.min(until)));
                continue;
            }
            total += u64::from(k.weight);
        }
        if total == 0 {
            return Err(match soonest {
                Some(t) if any_allowed => NoKey::CoolingDown(Duration::from_millis(t - now)),
                _ => NoKey::Exhausted,
            });
        }
        let mut r = fastrand::u64(0..total);
        for (i, k) in keys.iter().enumerate() {
            if !usable(i, k) || k.cool_until_ms.load(Ordering::Relaxed) > now {
                continue;
            }
            let w = u64::from(k.weight);
            if r < w {
                return Ok(Some(i));
            }
            r -= w;
        }
        // Raced with a concurrent cool-down between the passes: take any usable key.
        keys.iter()
            .enumerate()
            .find(|(i, k)| usable(*i, k))
            .map(|(i, _)| Some(i))
            .ok_or(NoKey::Exhausted)
    }

    /// Takes a key out of rotation for every request until `for_how_long` passes.
    pub fn cool_down(&self, target: &Target, key: usize, for_how_long: Duration) {
        let until = self.now_ms() + for_how_long.as_millis() as u64;
        target.provider.keys[key]
            .cool_until_ms
            .fetch_max(until, Ordering::Relaxed);
    }

    /// Every `provider/model` the catalog lists, for `/v1/models`.
    pub fn listed_models(&self) -> impl Iterator<Item = (&str, &str)> {
        self.providers
            .iter()
            .flat_map(|p| p.models.iter().map(move |m| (&*p.name, m.as_str())))
    }
}

impl ProviderKey {
    pub fn allows(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|p| p.matches(model))
    }
}

impl Provider {
    /// The upstream URL of `path` (an [`Endpoint`](crate::providers::openai::Endpoint) path) for `model`.
    pub fn url(&self, path: &str, model: &str) -> String {
        match self.urls {
            UrlStyle::Plain => format!("{}{}", self.base_url, path),
            UrlStyle::AzureDeployments => {
                let deployment = self.deployments.get(model).map_or(model, String::as_str);
                format!(
                    "{}/openai/deployments/{}{}?api-version={}",
                    self.base_url,
                    crate::providers::openai::path_segment(deployment),
                    path,
                    self.api_version.as_deref().unwrap_or_default()
                )
            }
        }
    }

    /// The API `model` is reached through here.
    pub fn wire_for(&self, model: &str) -> Format {
        if self.kind == ProviderKind::Vertex && model.starts_with("claude") {
            return Format::Anthropic;
        }
        self.wire
    }

    /// Whether `model` here takes OpenAI's `reasoning_effort`.
    pub fn takes_reasoning_effort(&self, model: &str) -> bool {
        self.reasoning_models.iter().any(|p| p.matches(model))
    }

    pub fn auth_header(&self) -> HeaderName {
        match self.auth {
            AuthStyle::Bearer | AuthStyle::AwsSigV4 | AuthStyle::GoogleOAuth => {
                http::header::AUTHORIZATION
            }
            AuthStyle::ApiKeyHeader => HeaderName::from_static("api-key"),
            AuthStyle::XApiKey => HeaderName::from_static("x-api-key"),
            AuthStyle::GoogApiKey => HeaderName::from_static("x-goog-api-key"),
        }
    }
}

/// A Bedrock key as configured: signed when it has an access key id, else
/// a Bedrock API key.
fn aws_key(p: &ProviderConfig, base_url: &str, k: &crate::config::KeyConfig) -> AwsKey {
    use crate::providers::aws::{Auth, sigv4::Credentials};
    let region = k
        .region
        .clone()
        .or_else(|| p.region.clone())
        .or_else(|| env_nonempty("AWS_REGION"))
        .or_else(|| env_nonempty("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".into());
    let auth = match &k.access_key_id {
        Some(id) => Auth::Keys(Credentials {
            access_key_id: id.clone(),
            secret_access_key: k.secret.clone(),
            session_token: k.session_token.clone(),
        }),
        None => Auth::Bearer(k.secret.clone()),
    };
    AwsKey {
        auth,
        base_url: base_url.replace("{region}", &region),
        region,
    }
}

/// A Vertex key as configured; `None` (logged) when it cannot be used.
fn vertex_key(
    provider: &str,
    p: &ProviderConfig,
    base_url: &str,
    k: &crate::config::KeyConfig,
) -> Option<crate::providers::vertex::Key> {
    let location = k
        .region
        .clone()
        .or_else(|| p.region.clone())
        .unwrap_or_else(|| "us-central1".into());
    let project = k
        .project
        .clone()
        .or_else(|| p.project.clone())
        .or_else(|| env_nonempty("GOOGLE_CLOUD_PROJECT"));
    crate::providers::vertex::Key::new(&k.secret, project, &location, base_url)
        .inspect_err(|e| {
            tracing::error!(provider, key = ?k.name, error = %e, "Vertex key cannot be used");
        })
        .ok()
}

/// A Vertex provider without keys uses the service account file
/// `GOOGLE_APPLICATION_CREDENTIALS` names, as Google's SDKs do.
fn google_environment_key(provider: &str) -> Option<crate::config::KeyConfig> {
    let path = env_nonempty("GOOGLE_APPLICATION_CREDENTIALS")?;
    let text = std::fs::metadata(&path)
        .ok()
        .filter(|m| m.len() <= crate::providers::vertex::MAX_JSON as u64)
        .and_then(|_| std::fs::read_to_string(&path).ok());
    let Some(text) = text else {
        tracing::error!(provider, %path, "GOOGLE_APPLICATION_CREDENTIALS cannot be read (or is over 64 KiB)");
        return None;
    };
    Some(crate::config::KeyConfig::new(
        "adc",
        crate::config::Secret::new(text),
    ))
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A Bedrock provider without keys uses the credentials an AWS SDK would
/// find: the environment's, then the shared credentials file's.
fn aws_environment_key(provider: &str) -> Option<crate::config::KeyConfig> {
    use crate::providers::aws::{self, Auth};
    match aws::resolve(None, |v| std::env::var(v).ok()) {
        Ok(Auth::Keys(c)) => Some(crate::config::KeyConfig {
            access_key_id: Some(c.access_key_id),
            session_token: c.session_token,
            ..crate::config::KeyConfig::new("aws", c.secret_access_key)
        }),
        Ok(Auth::Bearer(token)) => Some(crate::config::KeyConfig::new("aws", token)),
        Err(e) => {
            tracing::error!(provider, error = %e, "Bedrock provider has no credentials; its requests will be refused");
            None
        }
    }
}

fn build_provider(
    index: usize,
    name: &str,
    p: &ProviderConfig,
    defaults: &UpstreamConfig,
) -> Provider {
    // Config::validate has run: the kind resolves, URLs and headers parse.
    let kind = p.resolved_kind(name).expect("validated provider kind");
    let preset = kind.preset();
    let base_url = p
        .base_url
        .as_deref()
        .or(preset.base_url)
        .expect("validated base_url")
        .trim_end_matches('/')
        .to_string();
    let mut configured = p.all_keys();
    if preset.auth == AuthStyle::AwsSigV4 && configured.is_empty() {
        configured.extend(aws_environment_key(name));
    }
    if preset.auth == AuthStyle::GoogleOAuth && configured.is_empty() {
        configured.extend(google_environment_key(name));
    }
    let keys = configured
        .into_iter()
        .enumerate()
        .map(|(i, k)| {
            let aws = (preset.auth == AuthStyle::AwsSigV4).then(|| aws_key(p, &base_url, &k));
            let vertex = (preset.auth == AuthStyle::GoogleOAuth)
                .then(|| vertex_key(name, p, &base_url, &k))
                .flatten();
            let raw = match preset.auth {
                AuthStyle::Bearer | AuthStyle::AwsSigV4 | AuthStyle::GoogleOAuth => {
                    format!("Bearer {}", k.secret.expose())
                }
                AuthStyle::ApiKeyHeader | AuthStyle::XApiKey | AuthStyle::GoogApiKey => {
                    k.secret.expose().to_string()
                }
            };
            let mut header = HeaderValue::from_str(&raw).unwrap_or_else(|_| {
                tracing::error!(
                    provider = name,
                    key = i,
                    "API key has characters not allowed in a header"
                );
                HeaderValue::from_static("invalid")
            });
            header.set_sensitive(true);
            ProviderKey {
                name: k.name.unwrap_or_else(|| format!("key-{i}")).into(),
                header,
                weight: k.weight,
                models: k.models.into_iter().map(Pattern::new).collect(),
                cool_until_ms: AtomicU64::new(0),
                aws,
                vertex,
            }
        })
        .collect();
    let mut headers: Vec<(HeaderName, HeaderValue)> = p
        .headers
        .iter()
        .filter_map(|(h, v)| {
            let name = HeaderName::from_bytes(h.as_bytes()).ok()?;
            let mut value = HeaderValue::from_str(v.expose()).ok()?;
            value.set_sensitive(true);
            Some((name, value))
        })
        .collect();
    if preset.wire == Format::Anthropic && !headers.iter().any(|(h, _)| h == "anthropic-version") {
        headers.push((
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static("2023-06-01"),
        ));
    }
    Provider {
        index,
        name: name.into(),
        kind,
        base_url,
        auth: preset.auth,
        urls: preset.urls,
        stream_usage: p.stream_usage.unwrap_or(preset.stream_usage),
        wire: preset.wire,
        reasoning_models: match &p.reasoning_models {
            Some(list) => list.iter().map(Pattern::new).collect(),
            None => preset
                .reasoning_models
                .iter()
                .map(|m| Pattern::new(*m))
                .collect(),
        },
        keys,
        models: p
            .models
            .clone()
            .unwrap_or_else(|| preset.models.iter().map(|m| m.to_string()).collect()),
        headers,
        upstream: defaults.for_provider(p),
        api_version: p.api_version.clone(),
        deployments: p.deployments.clone().into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(toml: &str) -> Catalog {
        Catalog::from_config(&Config::from_parts(toml, &[]).unwrap())
    }

    #[test]
    fn glob_patterns() {
        for (p, s, want) in [
            ("gpt-4o*", "gpt-4o-mini", true),
            ("gpt-4o*", "gpt-4.1", false),
            ("*", "", true),
            ("*mini", "o3-mini", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(Pattern::new(p).matches(s), want, "{p} vs {s}");
        }
    }

    #[test]
    fn resolves_prefixed_bare_and_unknown_models() {
        let c = catalog(
            "[providers.groq]\napi_key = \"g\"\n[providers.openrouter]\napi_key = \"o\"\nmodels = [\"meta-llama/llama-3.3-70b\"]\n",
        );
        let t = c.resolve("groq/llama-3.1-8b-instant").unwrap();
        assert_eq!(
            (&*t.provider.name, t.model.as_str()),
            ("groq", "llama-3.1-8b-instant"),
            "a prefixed model need not be in the preset's list"
        );
        // Upstream ids with a slash stay whole after the provider prefix...
        let t = c.resolve("openrouter/meta-llama/llama-3.3-70b").unwrap();
        assert_eq!(t.model, "meta-llama/llama-3.3-70b");
        // ...and resolve bare when the prefix is not a provider name.
        let t = c.resolve("meta-llama/llama-3.3-70b").unwrap();
        assert_eq!(&*t.provider.name, "openrouter");
        let t = c.resolve("qwen/qwen3.8-27b").unwrap();
        assert_eq!(&*t.provider.name, "groq");
        // A bare name listed by several providers has them all as candidates, in order.
        let c2 = catalog(
            "[providers.a]\nkind = \"mock\"\nmodels = [\"m\"]\n[providers.b]\nkind = \"mock\"\nmodels = [\"m\"]\n",
        );
        let names: Vec<String> = c2
            .candidates("m")
            .unwrap()
            .iter()
            .map(|t| t.provider.name.to_string())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(c2.candidates("a/x").unwrap().len(), 1);
        assert_eq!(
            c.resolve("nope").unwrap_err(),
            ResolveError::UnknownModel("nope".into())
        );
        assert!(matches!(
            c.resolve("groq/"),
            Err(ResolveError::UnknownModel(_))
        ));
    }

    #[test]
    fn key_allow_lists_shape_resolution_and_picking() {
        let c = catalog(
            "[providers.openai]\n[[providers.openai.keys]]\nname = \"mini\"\nsecret = \"a\"\nmodels = [\"*-mini\"]\n[[providers.openai.keys]]\nname = \"big\"\nsecret = \"b\"\nmodels = [\"gpt-4.1\"]\n",
        );
        assert!(matches!(
            c.resolve("openai/o3"),
            Err(ResolveError::NoKeyForModel { .. })
        ));
        let t = c.resolve("openai/gpt-4o-mini").unwrap();
        for _ in 0..50 {
            assert_eq!(c.pick_key(&t, &[]), Ok(Some(0)));
        }
        assert_eq!(c.pick_key(&t, &[0]), Err(NoKey::Exhausted));
    }

    #[test]
    fn weights_split_traffic_and_cool_downs_skip_keys() {
        let c = catalog(
            "[providers.mock]\n[[providers.mock.keys]]\nsecret = \"a\"\nweight = 1\n[[providers.mock.keys]]\nsecret = \"b\"\nweight = 3\n",
        );
        let t = c.resolve("mock/m").unwrap();
        let mut counts = [0u32; 2];
        for _ in 0..4000 {
            counts[c.pick_key(&t, &[]).unwrap().unwrap()] += 1;
        }
        // Expected 1000 / 3000; a 10-sigma band keeps this from ever flaking.
        assert!((700..1300).contains(&counts[0]), "{counts:?}");
        c.cool_down(&t, 1, Duration::from_secs(60));
        for _ in 0..100 {
            assert_eq!(c.pick_key(&t, &[]), Ok(Some(0)));
        }
        c.cool_down(&t, 0, Duration::from_secs(30));
        match c.pick_key(&t, &[]) {
            Err(NoKey::CoolingDown(d)) => {
                assert!(d <= Duration::from_secs(30) && d > Duration::from_secs(25))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn azure_urls_use_deployments_and_api_version() {
        let c = catalog(
            "[providers.az]\nkind = \"azure\"\nbase_url = \"https://r.openai.azure.com/\"\napi_key = \"k\"\napi_version = \"2024-10-21\"\ndeployments = { \"gpt-4o\" = \"prod-4o\" }\n",
        );
        let t = c.resolve("az/gpt-4o").unwrap();
        assert_eq!(
            t.provider.url("/chat/completions", &t.model),
            "https://r.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(t.provider.auth_header().as_str(), "api-key");
        assert_eq!(t.provider.keys[0].header.to_str().unwrap(), "k");
    }
}
