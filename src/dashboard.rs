//! The dashboard: a page served by every node at `/`, its files at
//! `/ui/<file>`, compiled into the binary (`build.rs`). It reads everything
//! through the admin API with a session cookie (`admin::session`).
//!
//! Every answer carries a strict Content-Security-Policy (scripts and
//! styles from this origin only, no inline script, no framing) and
//! `nosniff`; the page itself builds its DOM with `textContent`, so a
//! name or log field written by a client or an admin is shown as text.

use std::borrow::Cow;

use axum::Router;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};

/// The assets: (file name, bytes).
static ASSETS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/dashboard_assets.rs"));

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn routes() -> Router {
    Router::new()
        .route("/", get(|| async { asset("index.html") }))
        .route(
            "/ui/{file}",
            get(|Path(file): Path<String>| async move { asset(&file) }),
        )
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

fn asset(name: &str) -> Response {
    let Some(bytes) = bytes_of(name) else {
        return secured(
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "no such dashboard file",
            )
                .into_response(),
        );
    };
    secured(
        (
            [
                (header::CONTENT_TYPE, content_type(name)),
                // The files change with the binary: a browser asks again
                // (cheaply) instead of mixing two versions after an upgrade.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
    )
}

fn bytes_of(name: &str) -> Option<Cow<'static, [u8]>> {
    #[cfg(debug_assertions)]
    if let Some(dir) = std::env::var_os("TOLLGATE_DASHBOARD_DIR") {
        // Development only (debug builds): the files as they are on disk now.
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        return plain
            .then(|| {
                std::fs::read(std::path::Path::new(&dir).join(name))
                    .ok()
                    .map(Cow::Owned)
            })
            .flatten();
    }
    ASSETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| Cow::Borrowed(*b))
}

fn secured(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_files_are_compiled_in() {
        assert!(ASSETS.iter().any(|(n, _)| *n == "index.html"));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/dashboard/assets");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if !name.starts_with('.') {
                assert!(ASSETS.iter().any(|(n, _)| *n == name), "{name}");
            }
        }
    }

    #[test]
    fn no_page_file_runs_inline_script_or_writes_html() {
        for (name, bytes) in ASSETS {
            let text = String::from_utf8_lossy(bytes);
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(!text.contains(banned), "{name} uses {banned}");
            }
            if name.ends_with(".html") {
                for tag in text.split("<script").skip(1) {
                    let open = &tag[..tag.find('>').unwrap_or(tag.len())];
                    assert!(open.contains(" src="), "{name} has an inline script");
                }
                assert!(!text.contains(" style="), "{name} has an inline style");
                assert!(!text.contains(" onclick="), "{name} has an inline handler");
            }
        }
    }
}
