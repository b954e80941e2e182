//! Small constructors for the responses handlers build.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::StatusCode;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde::Serialize;

use super::{HttpResponse, ResponseBody};

/// A buffered body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// `status` with `value` serialised as JSON.
pub fn json(status: StatusCode, value: &impl Serialize) -> HttpResponse {
    // Serialising our own response types cannot fail (string keys, finite
    // numbers); if it ever did, answering 500 beats panicking a connection.
    match serde_json::to_vec(value) {
        Ok(bytes) => build(status, "application/json", full(bytes)),
        Err(e) => {
            tracing::error!(error = %e, "BUG: response did not serialise");
            build(
                StatusCode::INTERNAL_SERVER_ERROR,
                "application/json",
                full(r#"{"error":{"code":"internal","message":"internal error","details":[]}}"#),
            )
        }
    }
}

/// `status` with `body` as `content_type`.
pub fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> HttpResponse {
    build(status, content_type, full(body))
}

/// `status` with no body (204, 202 without content...).
pub fn empty(status: StatusCode) -> HttpResponse {
    let mut resp = hyper::Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *resp.status_mut() = status;
    resp
}

/// Adds a header to a response.
pub fn with_header(mut resp: HttpResponse, name: HeaderName, value: HeaderValue) -> HttpResponse {
    resp.headers_mut().insert(name, value);
    resp
}

fn build(status: StatusCode, content_type: &'static str, body: ResponseBody) -> HttpResponse {
    let mut resp = hyper::Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
