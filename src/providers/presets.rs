//! Named presets of the OpenAI-compatible provider family.
//!
//! A preset is only defaults: base URL, how the key is sent, which environment
//! variable registers it when no config exists, and a small catalog of model
//! names so that bare names resolve. Every field can be overridden in config.
//! Anthropic and Gemini are reached through their native APIs (see `translate`).

use serde::{Deserialize, Serialize};

/// A wire format, as a client speaks it or an upstream expects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// OpenAI Chat Completions (and its other endpoints).
    #[default]
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini `generateContent`.
    Gemini,
    /// Bedrock Converse (`ConverseStream` in the AWS event-stream framing).
    Bedrock,
    /// Cohere's v2 Chat (upstreams only).
    Cohere,
    /// OpenAI Responses (clients only).
    Responses,
}

impl Format {
    pub fn label(self) -> &'static str {
        match self {
            Format::OpenAi => "openai",
            Format::Anthropic => "anthropic",
            Format::Gemini => "gemini",
            Format::Bedrock => "bedrock",
            Format::Cohere => "cohere",
            Format::Responses => "responses",
        }
    }
}

/// How an upstream expects its API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStyle {
    /// `Authorization: Bearer <key>`
    Bearer,
    /// `api-key: <key>` (Azure OpenAI)
    ApiKeyHeader,
    /// `x-api-key: <key>` (Anthropic)
    XApiKey,
    /// `x-goog-api-key: <key>` (Gemini)
    GoogApiKey,
    /// AWS Signature Version 4 (Bedrock), or a Bedrock API key as `Bearer`.
    AwsSigV4,
    /// A Google OAuth access token as `Bearer` (Vertex AI): given, or
    /// exchanged for a service account's signed JWT and kept until it nears
    /// expiry.
    GoogleOAuth,
}

/// URL layout of the upstream API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlStyle {
    /// `{base_url}/chat/completions`
    Plain,
    /// `{base_url}/openai/deployments/{deployment}/chat/completions?api-version=V`
    AzureDeployments,
}

#[derive(Debug)]
pub struct Preset {
    pub name: &'static str,
    pub base_url: Option<&'static str>,
    pub auth: AuthStyle,
    pub urls: UrlStyle,
    /// Variable that registers this provider when no providers are configured.
    pub key_env: Option<&'static str>,
    pub needs_key: bool,
    /// Whether the upstream honours `stream_options.include_usage`; when it does
    /// the gateway asks for usage on every stream so it can account for it.
    pub stream_usage: bool,
    pub models: &'static [&'static str],
    /// The API the upstream speaks; requests in another format are translated.
    pub wire: Format,
    /// OpenAI format: models (patterns with `*`) that take `reasoning_effort`,
    /// to which thinking requests of other formats are mapped. Other models
    /// refuse a request that names it, so it is left out for them.
    pub reasoning_models: &'static [&'static str],
}

macro_rules! kinds {
    ($($variant:ident = $name:literal),* $(,)?) => {
        /// A provider preset, written in config as its snake_case name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ProviderKind { $(#[serde(rename = $name)] $variant),* }

        impl ProviderKind {
            pub const ALL: &'static [ProviderKind] = &[$(ProviderKind::$variant),*];

            pub fn from_name(name: &str) -> Option<ProviderKind> {
                match name { $($name => Some(ProviderKind::$variant),)* _ => None }
            }
        }
    };
}

kinds! {
    OpenAi = "openai",
    Azure = "azure",
    Anthropic = "anthropic",
    Gemini = "gemini",
    Bedrock = "bedrock",
    Vertex = "vertex",
    Cohere = "cohere",
    Groq = "groq",
    Mistral = "mistral",
    Cerebras = "cerebras",
    DeepSeek = "deepseek",
    Xai = "xai",
    Together = "together",
    Fireworks = "fireworks",
    OpenRouter = "openrouter",
    Perplexity = "perplexity",
    Ollama = "ollama",
    Vllm = "vllm",
    HuggingFace = "huggingface",
    Nebius = "nebius",
    SambaNova = "sambanova",
    Novita = "novita",
    Hyperbolic = "hyperbolic",
    DashScope = "dashscope",
    Moonshot = "moonshot",
    Zhipu = "zhipu",
    Databricks = "databricks",
    LmStudio = "lmstudio",
    LlamaCpp = "llamacpp",
    Sglang = "sglang",
    Mock = "mock",
    OpenAiCompatible = "openai_compatible",
}

const fn bearer(
    name: &'static str,
    base_url: &'static str,
    key_env: &'static str,
    models: &'static [&'static str],
) -> Preset {
    Preset {
        name,
        base_url: Some(base_url),
        auth: AuthStyle::Bearer,
        urls: UrlStyle::Plain,
        key_env: Some(key_env),
        needs_key: true,
        stream_usage: true,
        models,
        wire: Format::OpenAi,
        reasoning_models: &[],
    }
}

const fn keyless(name: &'static str, base_url: Option<&'static str>) -> Preset {
    Preset {
        name,
        base_url,
        auth: AuthStyle::Bearer,
        urls: UrlStyle::Plain,
        key_env: None,
        needs_key: false,
        stream_usage: true,
        models: &[],
        wire: Format::OpenAi,
        reasoning_models: &[],
    }
}

const OPENAI_REASONING: &[&str] = &["o1*", "o3*", "o4*", "gpt-5*"];

static OPENAI: Preset = Preset {
    reasoning_models: OPENAI_REASONING,
    ..bearer(
        "openai",
        "https://api.openai.com/v1",
        "OPENAI_API_KEY",
        &[
            "gpt-4.1",
            "gpt-4.1-mini",
            "gpt-4.1-nano",
            "gpt-4o",
            "gpt-4o-mini",
            "o3",
            "o3-mini",
            "o4-mini",
            "gpt-5",
            "gpt-5-mini",
            "gpt-5-nano",
            "text-embedding-3-small",
            "text-embedding-3-large",
            "gpt-3.5-turbo-instruct",
        ],
    )
};
static AZURE: Preset = Preset {
    name: "azure",
    base_url: None,
    auth: AuthStyle::ApiKeyHeader,
    urls: UrlStyle::AzureDeployments,
    key_env: Some("AZURE_OPENAI_API_KEY"),
    needs_key: true,
    stream_usage: true,
    models: &[],
    wire: Format::OpenAi,
    reasoning_models: OPENAI_REASONING,
};
static ANTHROPIC: Preset = Preset {
    // The native Messages API (`{base_url}/messages`, `x-api-key`,
    // `anthropic-version`); its streams always report usage.
    auth: AuthStyle::XApiKey,
    wire: Format::Anthropic,
    ..bearer(
        "anthropic",
        "https://api.anthropic.com/v1",
        "ANTHROPIC_API_KEY",
        &[
            "claude-opus-4-7",
            "claude-sonnet-4-6",
            "claude-opus-4-5",
            "claude-sonnet-4-5",
            "claude-haiku-4-5",
        ],
    )
};
static GEMINI: Preset = Preset {
    // The native API (`{base_url}/models/{model}:generateContent`,
    // `x-goog-api-key`); its streams always report usage.
    auth: AuthStyle::GoogApiKey,
    wire: Format::Gemini,
    ..bearer(
        "gemini",
        "https://generativelanguage.googleapis.com/v1beta",
        "GEMINI_API_KEY",
        &[
            "gemini-2.5-pro",
            "gemini-2.5-flash",
            "gemini-2.5-flash-lite",
        ],
    )
};
static BEDROCK: Preset = Preset {
    // Converse (`{base_url}/model/{modelId}/converse[-stream]`), signed with
    // SigV4 or given a Bedrock API key; `{region}` is each key's region.
    // Credentials may also come from the AWS environment variables or
    // profile file, so a key is not required.
    name: "bedrock",
    base_url: Some("https://bedrock-runtime.{region}.amazonaws.com"),
    auth: AuthStyle::AwsSigV4,
    urls: UrlStyle::Plain,
    key_env: Some("AWS_BEARER_TOKEN_BEDROCK"),
    needs_key: false,
    stream_usage: true,
    models: &[
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "us.anthropic.claude-opus-4-5-20251101-v1:0",
        "us.amazon.nova-pro-v1:0",
        "us.amazon.nova-lite-v1:0",
        "us.amazon.nova-micro-v1:0",
    ],
    wire: Format::Bedrock,
    reasoning_models: &[],
};
static VERTEX: Preset = Preset {
    // `{base_url}/v1/projects/{project}/locations/{location}/publishers/
    // google/models/{model}:generateContent` (Gemini, its own format) and
    // `…/publishers/anthropic/models/{model}:rawPredict` (Claude, in
    // Anthropic's). `{location}` is each key's; `global` drops it from the host.
    name: "vertex",
    base_url: Some("https://{location}-aiplatform.googleapis.com"),
    auth: AuthStyle::GoogleOAuth,
    urls: UrlStyle::Plain,
    key_env: None,
    needs_key: false,
    stream_usage: true,
    models: &[
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "claude-sonnet-4-5@20250929",
    ],
    wire: Format::Gemini,
    reasoning_models: &[],
};
static COHERE: Preset = Preset {
    // The v2 Chat API (`{base_url}/chat`), translated; its streams report usage.
    wire: Format::Cohere,
    ..bearer(
        "cohere",
        "https://api.cohere.com/v2",
        "COHERE_API_KEY",
        &[
            "command-a-03-2025",
            "command-r-plus-08-2024",
            "command-r-08-2024",
        ],
    )
};
static GROQ: Preset = Preset {
    reasoning_models: &["openai/gpt-oss*", "qwen/*"],
    ..bearer(
        "groq",
        "https://api.groq.com/openai/v1",
        "GROQ_API_KEY",
        &[
            "openai/gpt-oss-120b",
            "openai/gpt-oss-20b",
            "qwen/qwen3.8-27b",
        ],
    )
};
static MISTRAL: Preset = bearer(
    "mistral",
    "https://api.mistral.ai/v1",
    "MISTRAL_API_KEY",
    &[
        "mistral-large-latest",
        "mistral-medium-latest",
        "mistral-small-latest",
        "codestral-latest",
        "mistral-embed",
    ],
);
static CEREBRAS: Preset = bearer(
    "cerebras",
    "https://api.cerebras.ai/v1",
    "CEREBRAS_API_KEY",
    &["llama3.1-8b", "llama-3.3-70b", "qwen-3-32b"],
);
static DEEPSEEK: Preset = bearer(
    "deepseek",
    "https://api.deepseek.com/v1",
    "DEEPSEEK_API_KEY",
    &["deepseek-chat", "deepseek-reasoner"],
);
static XAI: Preset = Preset {
    reasoning_models: &["grok-3-mini*"],
    ..bearer(
        "xai",
        "https://api.x.ai/v1",
        "XAI_API_KEY",
        &["grok-4.3", "grok-4.20", "grok-code-fast-1"],
    )
};
static TOGETHER: Preset = bearer(
    "together",
    "https://api.together.xyz/v1",
    "TOGETHER_API_KEY",
    &["meta-llama/Llama-3.3-70B-Instruct-Turbo"],
);
static FIREWORKS: Preset = bearer(
    "fireworks",
    "https://api.fireworks.ai/inference/v1",
    "FIREWORKS_API_KEY",
    &["accounts/fireworks/models/llama-v3p3-70b-instruct"],
);
static OPENROUTER: Preset = Preset {
    // OpenRouter takes it for every model and passes it on where it applies.
    reasoning_models: &["*"],
    ..bearer(
        "openrouter",
        "https://openrouter.ai/api/v1",
        "OPENROUTER_API_KEY",
        &[],
    )
};
static PERPLEXITY: Preset = Preset {
    stream_usage: false,
    ..bearer(
        "perplexity",
        "https://api.perplexity.ai",
        "PERPLEXITY_API_KEY",
        &["sonar", "sonar-pro", "sonar-reasoning"],
    )
};
static OLLAMA: Preset = keyless("ollama", Some("http://localhost:11434/v1"));
static VLLM: Preset = keyless("vllm", Some("http://localhost:8000/v1"));

// Hosted OpenAI-compatible services (base URLs as each documents them; see
// docs/providers.md). They list no models: a preset's catalog holds only
// models the price catalog covers (so a bare name never resolves to a model a
// budgeted key cannot use), and LiteLLM's map is not yet read for these
// kinds. `provider/model` reaches any of their models; an operator may list
// and price models in config. `stream_usage` is set only where the service
// documents `stream_options.include_usage`; elsewhere the gateway counts
// streamed tokens itself, so a stream is never left uncharged.
static HUGGINGFACE: Preset = Preset {
    stream_usage: false,
    ..bearer(
        "huggingface",
        "https://router.huggingface.co/v1",
        "HF_TOKEN",
        &[],
    )
};
static NEBIUS: Preset = Preset {
    stream_usage: false,
    ..bearer(
        "nebius",
        "https://api.tokenfactory.nebius.com/v1",
        "NEBIUS_API_KEY",
        &[],
    )
};
static SAMBANOVA: Preset = bearer(
    "sambanova",
    "https://api.sambanova.ai/v1",
    "SAMBANOVA_API_KEY",
    &[],
);
static NOVITA: Preset = bearer(
    "novita",
    "https://api.novita.ai/openai/v1",
    "NOVITA_API_KEY",
    &[],
);
static HYPERBOLIC: Preset = Preset {
    stream_usage: false,
    ..bearer(
        "hyperbolic",
        "https://api.hyperbolic.xyz/v1",
        "HYPERBOLIC_API_KEY",
        &[],
    )
};
/// Alibaba Cloud Model Studio's OpenAI-compatible mode, international
/// (Singapore) endpoint; mainland China is `dashscope.aliyuncs.com`.
static DASHSCOPE: Preset = bearer(
    "dashscope",
    "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
    "DASHSCOPE_API_KEY",
    &[],
);
/// Moonshot AI (Kimi), global endpoint; mainland China is `api.moonshot.cn`.
static MOONSHOT: Preset = Preset {
    stream_usage: false,
    ..bearer(
        "moonshot",
        "https://api.moonshot.ai/v1",
        "MOONSHOT_API_KEY",
        &[],
    )
};
/// Zhipu AI (GLM) BigModel platform; outside China, Z.ai serves the same
/// API at `https://api.z.ai/api/paas/v4`. GLM does not take `stream_options`.
static ZHIPU: Preset = Preset {
    stream_usage: false,
    ..bearer(
        "zhipu",
        "https://open.bigmodel.cn/api/paas/v4",
        "ZHIPUAI_API_KEY",
        &[],
    )
};
/// Databricks Model Serving: the base URL is the workspace's
/// `https://<workspace>/serving-endpoints` (from `DATABRICKS_HOST` when
/// registered from the environment); the model is the endpoint name.
static DATABRICKS: Preset = Preset {
    base_url: None,
    stream_usage: false,
    ..bearer("databricks", "", "DATABRICKS_TOKEN", &[])
};

// Local OpenAI-compatible servers, at their default ports. No key is needed
// unless the server was started with one (`api_key` then sends it).
static LMSTUDIO: Preset = Preset {
    stream_usage: false,
    ..keyless("lmstudio", Some("http://localhost:1234/v1"))
};
/// `llama-server`'s default port is the gateway's own default, 8080: run one
/// of them elsewhere and set `base_url` (or `server.listen`).
static LLAMACPP: Preset = Preset {
    stream_usage: false,
    ..keyless("llamacpp", Some("http://localhost:8080/v1"))
};
static SGLANG: Preset = keyless("sglang", Some("http://localhost:30000/v1"));
/// The mock upstream that `tollgate mock` serves (a test and benchmark fixture).
static MOCK: Preset = Preset {
    models: &["mock-1", "mock-embed"],
    reasoning_models: &["*"],
    ..keyless("mock", Some("http://127.0.0.1:9000/v1"))
};
static OPENAI_COMPATIBLE: Preset = keyless("openai_compatible", None);

impl ProviderKind {
    pub fn preset(self) -> &'static Preset {
        match self {
            ProviderKind::OpenAi => &OPENAI,
            ProviderKind::Azure => &AZURE,
            ProviderKind::Anthropic => &ANTHROPIC,
            ProviderKind::Gemini => &GEMINI,
            ProviderKind::Bedrock => &BEDROCK,
            ProviderKind::Vertex => &VERTEX,
            ProviderKind::Cohere => &COHERE,
            ProviderKind::Groq => &GROQ,
            ProviderKind::Mistral => &MISTRAL,
            ProviderKind::Cerebras => &CEREBRAS,
            ProviderKind::DeepSeek => &DEEPSEEK,
            ProviderKind::Xai => &XAI,
            ProviderKind::Together => &TOGETHER,
            ProviderKind::Fireworks => &FIREWORKS,
            ProviderKind::OpenRouter => &OPENROUTER,
            ProviderKind::Perplexity => &PERPLEXITY,
            ProviderKind::Ollama => &OLLAMA,
            ProviderKind::Vllm => &VLLM,
            ProviderKind::HuggingFace => &HUGGINGFACE,
            ProviderKind::Nebius => &NEBIUS,
            ProviderKind::SambaNova => &SAMBANOVA,
            ProviderKind::Novita => &NOVITA,
            ProviderKind::Hyperbolic => &HYPERBOLIC,
            ProviderKind::DashScope => &DASHSCOPE,
            ProviderKind::Moonshot => &MOONSHOT,
            ProviderKind::Zhipu => &ZHIPU,
            ProviderKind::Databricks => &DATABRICKS,
            ProviderKind::LmStudio => &LMSTUDIO,
            ProviderKind::LlamaCpp => &LLAMACPP,
            ProviderKind::Sglang => &SGLANG,
            ProviderKind::Mock => &MOCK,
            ProviderKind::OpenAiCompatible => &OPENAI_COMPATIBLE,
        }
    }
}

/// Every preset name, for error messages.
pub fn names() -> Vec<&'static str> {
    ProviderKind::ALL.iter().map(|k| k.preset().name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in ProviderKind::ALL {
            assert_eq!(ProviderKind::from_name(k.preset().name), Some(*k));
            let parsed: ProviderKind =
                serde_json::from_value(serde_json::json!(k.preset().name)).unwrap();
            assert_eq!(parsed, *k);
        }
    }

    #[test]
    fn keyed_presets_have_a_base_url_or_are_azure() {
        for k in ProviderKind::ALL {
            let p = k.preset();
            assert!(
                p.base_url.is_some()
                    || matches!(
                        k,
                        ProviderKind::Azure
                            | ProviderKind::Databricks
                            | ProviderKind::OpenAiCompatible
                    )
            );
        }
    }

    /// The README's "20+ providers": named presets, not counting the mock
    /// fixture or the generic `openai_compatible`.
    #[test]
    fn there_are_more_than_twenty_named_presets() {
        let named = ProviderKind::ALL
            .iter()
            .filter(|k| !matches!(k, ProviderKind::Mock | ProviderKind::OpenAiCompatible))
            .count();
        assert_eq!(named, 30);
    }
}
