//! `ApiError`: the contract's error body (section 2) and the one place that
//! maps storage errors to HTTP statuses.
//!
//! Body: `{"error": {"code", "message", "details": [{"field", "message"}]}}`.

use hyper::StatusCode;
use hyper::header::{HeaderName, HeaderValue, RETRY_AFTER};
use pulsestream_storage::StorageError;
use serde::Serialize;

use super::HttpResponse;

/// One field's problem inside a `validation_failed` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An error answer. Handlers return `Err(ApiError)`; the router renders it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// The contract's machine-readable code (`validation_failed`, ...).
    pub code: &'static str,
    /// A human sentence.
    pub message: String,
    pub details: Vec<FieldError>,
    /// Extra headers (`Retry-After`, `X-RateLimit-*`, `Allow`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    details: &'a [FieldError],
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    /// 400 `validation_failed` with per-field details.
    pub fn validation(details: Vec<FieldError>) -> Self {
        let message = match details.first() {
            Some(d) if details.len() == 1 => format!("{}: {}", d.field, d.message),
            _ => "request failed validation".to_owned(),
        };
        let mut e = Self::new(StatusCode::BAD_REQUEST, "validation_failed", message);
        e.details = details;
        e
    }
    /// Shorthand for a single-field validation failure.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message).with_header(
            hyper::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        )
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub fn payload_too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body exceeds the limit of {limit} bytes"),
        )
    }
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }
    pub fn locked(message: impl Into<String>) -> Self {
        Self::new(StatusCode::LOCKED, "locked", message)
    }
    /// 429 with `Retry-After` (whole seconds, at least 1).
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "rate limit exceeded",
        )
        .with_header(RETRY_AFTER, HeaderValue::from(retry_after_secs.max(1)))
    }
    /// 503 with `Retry-After`: the server cannot keep up right now.
    pub fn overloaded(retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "server is overloaded, retry later",
        )
        .with_header(RETRY_AFTER, HeaderValue::from(retry_after_secs.max(1)))
    }
    pub fn insufficient_storage() -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient_storage",
            "the disk is full; writes resume when space returns",
        )
    }
    /// 500. The cause is logged here; the client sees only a generic sentence.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
    /// 405 naming the methods the path accepts.
    pub fn method_not_allowed(allowed: &[&str]) -> Self {
        let allow = allowed.join(", ");
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("method not allowed; allowed: {allow}"),
        );
        if let Ok(v) = HeaderValue::from_str(&allow) {
            e.headers.push((hyper::header::ALLOW, v));
        }
        e
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Renders the contract's error body.
    pub fn into_response(self) -> HttpResponse {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                details: &self.details,
            },
        };
        let mut resp = super::json(self.status, &body);
        for (name, value) in self.headers {
            resp.headers_mut().append(name, value);
        }
        resp
    }
}

/// `Retry-After` when the store is overloaded: about one seal's time.
const OVERLOADED_RETRY_AFTER_SECS: u64 = 2;

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::DiskFull { .. } => ApiError::insufficient_storage(),
            StorageError::Invalid { what, detail } => {
                ApiError::bad_request(format!("invalid {what}: {detail}"))
            }
            // Nothing was stored: the client may send the same batch again.
            StorageError::Overloaded { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "the server cannot keep up; nothing of this request was stored, retry it",
            )
            .with_header(RETRY_AFTER, HeaderValue::from(OVERLOADED_RETRY_AFTER_SECS)),
            StorageError::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "the store is shutting down",
            )
            .with_header(RETRY_AFTER, HeaderValue::from(1u64)),
            StorageError::QueryCancelled => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "query_timeout",
                "the query ran past limits.query_timeout and was stopped; narrow its range or filters",
            )
            .with_header(RETRY_AFTER, HeaderValue::from(1u64)),
            StorageError::QueryTooLarge { limit_bytes } => ApiError::new(
                StatusCode::BAD_REQUEST,
                "query_too_large",
                format!(
                    "the query's groups need more than limits.query_memory_bytes ({limit_bytes} bytes); \
                     group by fewer or coarser fields, or narrow the range"
                ),
            ),
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::meta::MetaError> for ApiError {
    fn from(e: crate::meta::MetaError) -> Self {
        use crate::meta::MetaError;
        match e {
            MetaError::NotFound { what, .. } => ApiError::not_found(format!("{what} not found")),
            MetaError::Conflict(m) => ApiError::conflict(m),
            other => ApiError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_json(resp: HttpResponse) -> serde_json::Value {
        let bytes = resp.into_body().collect().await.map(|c| c.to_bytes());
        serde_json::from_slice(&bytes.expect("body")).expect("json")
    }

    #[tokio::test]
    async fn renders_contract_shape() {
        let e = ApiError::validation(vec![FieldError::new(
            "events[3].status_code",
            "must be between 100 and 599",
        )]);
        let resp = e.into_response();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let v = body_json(resp).await;
        assert_eq!(v["error"]["code"], "validation_failed");
        assert_eq!(v["error"]["details"][0]["field"], "events[3].status_code");
    }

    #[tokio::test]
    async fn storage_errors_map_to_statuses() {
        let full: ApiError = StorageError::DiskFull { path: "x".into() }.into();
        assert_eq!(full.status, StatusCode::INSUFFICIENT_STORAGE);
        let bad: ApiError = StorageError::invalid("query", "nope").into();
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let closed: ApiError = StorageError::Closed.into();
        assert_eq!(closed.status, StatusCode::SERVICE_UNAVAILABLE);
        let corrupt: ApiError = StorageError::corrupted("block", "seg 1", "crc").into();
        assert_eq!(corrupt.status, StatusCode::INTERNAL_SERVER_ERROR);
        let resp = ApiError::rate_limited(0).into_response();
        assert_eq!(resp.headers()[RETRY_AFTER], "1");
    }
}
