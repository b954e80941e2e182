//! The built-in web dashboard (contract section 6, `GET /` and below).
//!
//! Owns the static assets in `src/ui/web/`, embedded in the binary at
//! compile time (no Node, no network, no files at run time), and the one
//! handler that serves them: content type, a strong `ETag` from the
//! content hash, `Cache-Control`, and a gzip copy for clients that accept
//! it. Page paths of the single-page app (`/overview`, `/tail`, ...) answer
//! `index.html`; the script picks the page from the path.
//!
//! This module never reads request bodies and never touches the store:
//! the pages read data through the public JSON API like any client.

mod assets;

use std::io::Write;
use std::sync::OnceLock;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use hyper::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue,
    IF_NONE_MATCH, VARY,
};
use hyper::{Method, StatusCode};
use sha2::{Digest, Sha256};

use crate::http::{self, ApiError, HttpResponse};

pub use assets::PAGES;

/// Assets smaller than this are sent as they are: gzip's header and the
/// extra work cost more than the bytes it would save.
const MIN_GZIP_BYTES: usize = 512;

/// How long a browser may reuse `index.html` without asking: never, so a
/// new binary's pages show at the next load (revalidation with the ETag
/// costs one small 304).
const HTML_CACHE_CONTROL: &str = "no-cache";

/// Scripts, styles and icons: one hour, then revalidate with the ETag.
/// Their URLs carry no content hash (no build step), so they cannot be
/// cached "forever"; an hour keeps reloads fast and upgrades visible soon.
const ASSET_CACHE_CONTROL: &str = "public, max-age=3600, must-revalidate";

/// One embedded file, ready to serve.
struct Prepared {
    path: &'static str,
    content_type: &'static str,
    raw: Bytes,
    /// `Some` when gzip made it smaller.
    gzip: Option<Bytes>,
    etag: HeaderValue,
}

/// Every asset, compressed and hashed once on first use.
fn prepared() -> &'static [Prepared] {
    static CELL: OnceLock<Vec<Prepared>> = OnceLock::new();
    CELL.get_or_init(|| assets::ASSETS.iter().map(prepare).collect())
}

fn prepare(a: &assets::Asset) -> Prepared {
    let digest = Sha256::digest(a.bytes);
    let etag = format!("\"{}\"", hex::encode(&digest[..12]));
    let gzip = (a.bytes.len() >= MIN_GZIP_BYTES)
        .then(|| gzip(a.bytes))
        .flatten()
        .filter(|z| z.len() < a.bytes.len())
        .map(Bytes::from);
    Prepared {
        path: a.path,
        content_type: a.content_type,
        raw: Bytes::from_static(a.bytes),
        gzip,
        // A hex string in quotes is always a valid header value.
        etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\"")),
    }
}

fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::with_capacity(bytes.len() / 3), Compression::best());
    enc.write_all(bytes).ok()?;
    enc.finish().ok()
}

/// Total gzip-compressed size of all assets (what a first load transfers
/// at most); reported by tests against the 500 KiB budget.
pub fn compressed_total_bytes() -> usize {
    prepared()
        .iter()
        .map(|p| p.gzip.as_ref().map_or(p.raw.len(), Bytes::len))
        .sum()
}

/// Whether `path` is served by this module (the router asks before its
/// 404): an embedded asset, `/`, or a page of the app.
pub fn owns(path: &str) -> bool {
    lookup(path).is_some()
}

fn lookup(path: &str) -> Option<&'static Prepared> {
    let trimmed = path.trim_end_matches('/');
    let page = trimmed.trim_start_matches('/');
    let want = if page.is_empty() || PAGES.contains(&page) {
        "/index.html"
    } else {
        trimmed
    };
    prepared().iter().find(|p| p.path == want)
}

/// `GET`/`HEAD` of `/`, a page, or an asset.
pub fn serve(method: &Method, path: &str, headers: &HeaderMap) -> Result<HttpResponse, ApiError> {
    let asset = lookup(path).ok_or_else(|| ApiError::not_found("no such page"))?;
    let cache = if asset.content_type.starts_with("text/html") {
        HTML_CACHE_CONTROL
    } else {
        ASSET_CACHE_CONTROL
    };
    let not_modified = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == asset.etag || t.trim() == "*")
        });
    let use_gzip = asset.gzip.is_some() && accepts_gzip(headers);
    let mut resp = if not_modified {
        http::empty(StatusCode::NOT_MODIFIED)
    } else {
        let body = match (&asset.gzip, use_gzip) {
            (Some(z), true) => z.clone(),
            _ => asset.raw.clone(),
        };
        let body = if *method == Method::HEAD {
            Bytes::new()
        } else {
            body
        };
        http::text(StatusCode::OK, asset.content_type, body)
    };
    let h = resp.headers_mut();
    h.insert(ETAG, asset.etag.clone());
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if asset.content_type.starts_with("text/html") {
        // Everything the pages load comes from this server and no script
        // runs inline. Inline style attributes are allowed: the pages set
        // widths and colours of bars and legends that way, and a style
        // cannot run code.
        h.insert(
            "content-security-policy",
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                 script-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'",
            ),
        );
    }
    if asset.gzip.is_some() {
        h.insert(VARY, HeaderValue::from_static("accept-encoding"));
        if use_gzip && !not_modified {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
    }
    if not_modified {
        h.remove(CONTENT_TYPE);
    }
    Ok(resp)
}

/// `Accept-Encoding` lists gzip with a non-zero weight.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let zero = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !zero
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn pages_and_root_serve_index() {
        for p in ["/", "/overview", "/tail/", "/settings"] {
            let a = lookup(p).unwrap();
            assert_eq!(a.path, "/index.html", "{p}");
        }
        assert!(lookup("/nope").is_none());
        assert!(lookup("/assets/../index.html").is_none());
    }

    #[test]
    fn every_asset_has_a_known_type_and_fits_the_budget() {
        for p in prepared() {
            assert!(!p.content_type.is_empty(), "{}", p.path);
            assert!(p.path.starts_with('/'), "{}", p.path);
        }
        // The issue's budget for a first load.
        assert!(compressed_total_bytes() <= 500 * 1024);
    }

    #[test]
    fn gzip_only_when_accepted() {
        assert!(accepts_gzip(&headers(&[("accept-encoding", "gzip, br")])));
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "br;q=1, gzip;q=0.5"
        )])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "br")])));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn etag_match_answers_not_modified() {
        let a = lookup("/").unwrap();
        let etag = a.etag.to_str().unwrap().to_owned();
        let r = serve(&Method::GET, "/", &headers(&[("if-none-match", &etag)])).unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        let r = serve(
            &Method::GET,
            "/",
            &headers(&[("if-none-match", "\"other\"")]),
        )
        .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}
