//! AWS Signature Version 4: what a request to an AWS service (Bedrock)
//! carries to prove who sent it.
//!
//! [`authorization`] builds the canonical request (method, path, query,
//! signed headers, payload hash), the string to sign and the signing key
//! derived from the secret, date, region and service, and returns the
//! `Authorization` header's value. Pure: the caller supplies the time and
//! adds `x-amz-date` (and `x-amz-security-token` for temporary credentials)
//! to the headers it signs and sends. Checked against AWS's published test
//! vectors in `tests`.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::config::Secret;

/// Access key and secret, and the session token of temporary credentials
/// (`Debug` shows neither secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// One request as it will be sent, for signing.
pub struct Signable<'a> {
    pub method: &'a str,
    /// The path as sent on the wire, already percent-encoded (`/model/
    /// us.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse`).
    pub path: &'a str,
    /// Query parameters, decoded.
    pub query: &'a [(&'a str, &'a str)],
    /// Every header to sign, `host` and `x-amz-date` among them (names in
    /// any case).
    pub headers: &'a [(&'a str, &'a str)],
    /// Lower-case hex SHA-256 of the body.
    pub payload_hash: &'a str,
}

/// The hex SHA-256 of `bytes` (a payload hash).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// `x-amz-date`'s form of a Unix time in seconds: `20150830T123600Z`.
pub fn amz_date(unix_secs: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_secs as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The `Authorization` header's value for `request`, signed at `amz_date`
/// (`x-amz-date`'s value) for `region` and `service`.
pub fn authorization(
    request: &Signable<'_>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    amz_date: &str,
) -> String {
    let (canonical, signed_headers) = canonical_request(request);
    let day = &amz_date[..amz_date.len().min(8)];
    let scope = format!("{day}/{region}/{service}/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let key = [day, region, service, "aws4_request"].iter().fold(
        format!("AWS4{}", credentials.secret_access_key.expose()).into_bytes(),
        |key, part| hmac(&key, part.as_bytes()),
    );
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key_id
    )
}

/// The canonical request and its signed-header list.
fn canonical_request(r: &Signable<'_>) -> (String, String) {
    // Every service but S3 encodes the (already encoded) path once more.
    let path = if r.path.is_empty() {
        "/".to_string()
    } else {
        encode(r.path, false)
    };
    let mut query: Vec<(String, String)> = r
        .query
        .iter()
        .map(|(k, v)| (encode(k, true), encode(v, true)))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers: Vec<(String, String)> = Vec::with_capacity(r.headers.len());
    for (name, value) in r.headers {
        let name = name.to_ascii_lowercase();
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        match headers.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                v.push(',');
                v.push_str(&value);
            }
            None => headers.push((name, value)),
        }
    }
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed = headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical = format!(
        "{}\n{path}\n{query}\n{canonical_headers}\n{signed}\n{}",
        r.method, r.payload_hash
    );
    (canonical, signed)
}

/// RFC 3986 percent-encoding of everything but the unreserved characters
/// (and `/`, unless `slash`).
fn encode(s: &str, slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if !slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The credentials of AWS's Signature Version 4 test suite.
    fn suite() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: None,
        }
    }

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn signed(method: &str, query: &[(&str, &str)]) -> String {
        let headers = [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ];
        let r = Signable {
            method,
            path: "/",
            query,
            headers: &headers,
            payload_hash: EMPTY,
        };
        authorization(&r, &suite(), "us-east-1", "service", "20150830T123600Z")
    }

    fn signature(authz: &str) -> &str {
        authz.rsplit("Signature=").next().unwrap()
    }

    /// `get-vanilla`, `post-vanilla` and `get-vanilla-query-order-key-case`
    /// of the published suite.
    #[test]
    fn the_published_test_vectors() {
        assert_eq!(
            signed("GET", &[]),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        assert_eq!(
            signature(&signed("POST", &[])),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
        assert_eq!(
            signature(&signed(
                "GET",
                &[("Param2", "value2"), ("Param1", "value1")]
            )),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
    }

    /// The S3 documentation's GET Object example (a path, a range header,
    /// the payload hash header): its canonical request's hash and signature.
    #[test]
    fn the_s3_documentation_example() {
        let headers = [
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY),
            ("x-amz-date", "20130524T000000Z"),
        ];
        let r = Signable {
            method: "GET",
            path: "/test.txt",
            query: &[],
            headers: &headers,
            payload_hash: EMPTY,
        };
        let (canonical, signed_headers) = canonical_request(&r);
        assert_eq!(signed_headers, "host;range;x-amz-content-sha256;x-amz-date");
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
        );
        let creds = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            session_token: None,
        };
        assert_eq!(
            signature(&authorization(
                &r,
                &creds,
                "us-east-1",
                "s3",
                "20130524T000000Z"
            )),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// A Bedrock model id's `:` travels encoded once and is signed encoded
    /// twice; repeated headers join with a comma, values' runs of spaces
    /// fold; the secret never shows in `Debug`.
    #[test]
    fn paths_headers_and_secrets() {
        let r = Signable {
            method: "POST",
            path: "/model/us.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse",
            query: &[],
            headers: &[("X-Multi", "a"), ("x-multi", "b   c"), ("host", "h")],
            payload_hash: EMPTY,
        };
        let (canonical, signed) = canonical_request(&r);
        assert!(
            canonical
                .contains("\n/model/us.anthropic.claude-3-7-sonnet-20250219-v1%253A0/converse\n"),
            "{canonical}"
        );
        assert!(canonical.contains("x-multi:a,b c\n"), "{canonical}");
        assert_eq!(signed, "host;x-multi");
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        let debug = format!("{:?}", suite());
        assert!(!debug.contains("wJalr"), "{debug}");
    }
}
