//! Bedrock as an upstream, through the real binary and the mock's Converse
//! endpoint, which checks every SigV4 signature: where credentials come
//! from (config keys, session tokens, the AWS environment, the profile
//! file, Bedrock API keys), regions per key, a wrong secret refused, prompt
//! cache points and their usage. The inbound × upstream matrix with Bedrock
//! in it is `tests/translate.rs`; budgets on it, `tests/budget_bounds.rs`.

mod common;

use common::*;
use serde_json::{Value, json};

const MODEL: &str = "us.anthropic.claude-haiku-4-5-20251001-v1:0";

fn provider(mock: &Proc, extra: &str) -> String {
    format!(
        "[providers.bed]\nkind = \"bedrock\"\nbase_url = \"http://{}\"\n{extra}\n",
        mock.addr
    )
}

async fn chat(gw: &Gateway, model: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hello there"}]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn last(mock: &Proc) -> Value {
    get_json(mock.url("/mock/last")).await
}

#[tokio::test]
async fn keys_are_signed_for_their_own_region_with_their_session_token() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&provider(
        &mock,
        "region = \"us-west-2\"\n\
         [[providers.bed.keys]]\nname = \"west\"\naccess_key_id = \"AKIDWEST\"\nsecret = \"AKIDWEST-secret\"\nmodels = [\"west-*\"]\n\
         [[providers.bed.keys]]\nname = \"eu\"\naccess_key_id = \"ASIATEMP\"\nsecret = \"ASIATEMP-secret\"\n\
         session_token = \"a-session-token\"\nregion = \"eu-central-1\"\nmodels = [\"eu-*\"]\n",
    ))
    .await;
    let (status, v) = chat(&gw, "bed/west-model").await;
    assert_eq!(status, 200, "{v}");
    let scope = last(&mock).await["aws-credential"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(scope.starts_with("AKIDWEST/"), "{scope}");
    assert!(
        scope.ends_with("/us-west-2/bedrock/aws4_request"),
        "{scope}"
    );

    let (status, v) = chat(&gw, "bed/eu-model").await;
    assert_eq!(
        status, 200,
        "temporary credentials sign with their token: {v}"
    );
    let scope = last(&mock).await["aws-credential"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(scope.starts_with("ASIATEMP/"), "{scope}");
    assert!(
        scope.ends_with("/eu-central-1/bedrock/aws4_request"),
        "{scope}"
    );
    assert!(
        !v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 0, "{v}");
}

#[tokio::test]
async fn a_wrong_secret_is_refused_and_said_so() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&provider(
        &mock,
        "keys = [{ access_key_id = \"AKIDBAD\", secret = \"not-the-secret\" }]",
    ))
    .await;
    let (status, v) = chat(&gw, &format!("bed/{MODEL}")).await;
    assert_ne!(status, 200, "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("bed"), "{message}");
    let stats = get_json(mock.url("/mock/stats")).await;
    assert_eq!(stats["requests"], 0, "refused before admission: {stats}");
}

/// A provider without keys on a node started with `env`: the `Credential`
/// its request was signed with (null for a bearer key).
async fn credential_from(mock: &Proc, env: &[(&str, &str)]) -> Value {
    let gw = Gateway::start_with_env(&provider(mock, ""), tempfile::tempdir().unwrap(), env).await;
    let (status, v) = chat(&gw, &format!("bed/{MODEL}")).await;
    assert_eq!(status, 200, "{v}");
    last(mock).await["aws-credential"].clone()
}

#[tokio::test]
async fn credentials_come_from_the_aws_environment_and_the_profile_file() {
    let mock = start_mock(&[]).await;
    // The standard variables.
    let scope = credential_from(
        &mock,
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "AKIDENV-secret"),
            ("AWS_SESSION_TOKEN", "env-session"),
            ("AWS_REGION", "ap-south-1"),
        ],
    )
    .await;
    let scope = scope.as_str().unwrap();
    assert!(
        scope.starts_with("AKIDENV/") && scope.contains("/ap-south-1/"),
        "{scope}"
    );

    // A named profile of a shared credentials file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = x\n\n\
         [profile team]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = AKIDPROFILE-secret\n",
    )
    .unwrap();
    let scope = credential_from(
        &mock,
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()),
            ("AWS_PROFILE", "team"),
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
        ],
    )
    .await;
    let scope = scope.as_str().unwrap();
    assert!(
        scope.starts_with("AKIDPROFILE/") && scope.contains("/us-east-1/"),
        "{scope}"
    );

    // A Bedrock API key: a bearer token, nothing signed.
    let scope = credential_from(
        &mock,
        &[("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key-from-env")],
    )
    .await;
    assert!(scope.is_null(), "{scope}");
    let stats = get_json(mock.url("/mock/stats")).await;
    assert_eq!(stats["by_key"]["bedrock-api-key-from-env"], 1, "{stats}");
}

/// Anthropic's `cache_control` becomes a Converse cache point; the first
/// request writes the prefix, the second reads it, and both say so in the
/// client's own usage fields.
#[tokio::test]
async fn cache_points_reach_bedrock_and_their_usage_comes_back() {
    let mock = start_mock(&[]).await;
    let gw = Gateway::start(&provider(&mock, "api_key = \"k\"")).await;
    let system = "You are a careful assistant. ".repeat(40);
    let body = json!({"model": format!("bed/{MODEL}"), "max_tokens": 64,
        "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hello"}]});
    let ask = || async {
        let r = reqwest::Client::new()
            .post(gw.url("/anthropic/v1/messages"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()
    };
    let first = ask().await;
    let sent = last(&mock).await["body"].clone();
    assert_eq!(
        sent["system"][1],
        json!({"cachePoint": {"type": "default"}}),
        "{sent}"
    );
    assert_eq!(sent["inferenceConfig"]["maxTokens"], 64, "{sent}");
    assert!(
        first["usage"]["cache_creation_input_tokens"]
            .as_u64()
            .unwrap()
            > 0,
        "{first}"
    );
    assert_eq!(first["usage"]["cache_read_input_tokens"], 0, "{first}");
    let second = ask().await;
    assert_eq!(
        second["usage"]["cache_creation_input_tokens"], 0,
        "{second}"
    );
    assert_eq!(
        second["usage"]["cache_read_input_tokens"], first["usage"]["cache_creation_input_tokens"],
        "{second}"
    );
}
