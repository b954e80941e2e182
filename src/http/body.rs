//! Reading request bodies with a byte limit, so no client can make the
//! server buffer more than the configured maximum.

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::Request;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use serde::de::DeserializeOwned;

use super::ApiError;

/// Most bytes of an oversized body read and thrown away before the 413 is
/// sent. A client still sending when the server answers and closes the
/// connection gets a reset instead of the answer (HTTP clients report a
/// transport error, not the 413), so the rest of a moderately oversized
/// body is drained; past this, or `DRAIN_TIME`, the connection is cut.
const DRAIN_MAX: usize = 64 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Discards what remains of `body` (bounded as above) and returns the 413.
async fn too_large<B>(mut body: std::pin::Pin<&mut B>, limit: usize) -> ApiError
where
    B: hyper::body::Body<Data = Bytes>,
{
    let drain = async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len());
            if seen > DRAIN_MAX {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
    ApiError::payload_too_large(limit as u64)
}

/// Reads the whole body of `req`, answering 413 as soon as it is known to
/// exceed `limit` bytes (from `Content-Length` before reading anything, or
/// while streaming for chunked bodies), after draining the rest of it.
pub async fn read_body_limited<B>(req: Request<B>, limit: usize) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    read_body_charged(req, limit, |_| Ok(())).await
}

/// `read_body_limited`, calling `charge` with the size of each piece of the
/// body as it arrives and before it is kept, so a caller can account for
/// memory that is really held (a stalled upload holds only what it sent).
/// An error from `charge` ends the read with that error.
pub async fn read_body_charged<B>(
    req: Request<B>,
    limit: usize,
    mut charge: impl FnMut(usize) -> Result<(), ApiError>,
) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = std::pin::pin!(req.into_body());
    if let Some(len) = declared
        && len > limit as u64
    {
        return Err(too_large(body, limit).await);
    }
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("cannot read body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(too_large(body, limit).await);
            }
            charge(data.len())?;
            if buf.is_empty() && declared == Some(data.len() as u64) {
                // The whole body in one piece: keep it without a copy.
                buf = BytesMut::from(data);
                continue;
            }
            // Grows with what arrived, never from the declared length alone:
            // a client that declares 16 MiB and then stalls holds what it sent.
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Reads a JSON body into `T`: 415 for a non-JSON content type, 400 for
/// bytes that are not the expected JSON. A missing content type is accepted
/// (curl and many scripts omit it).
pub async fn read_json<T, B>(req: Request<B>, limit: usize) -> Result<T, ApiError>
where
    T: DeserializeOwned,
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    if let Some(ct) = req.headers().get(CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") && !essence.ends_with("+json") {
            return Err(ApiError::unsupported_media_type(format!(
                "expected application/json, got {essence}"
            )));
        }
    }
    let bytes = read_body_limited(req, limit).await?;
    parse_json(&bytes)
}

/// Parses JSON bytes into `T`, turning serde's error into a 400 whose
/// message says where the input went wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        if e.is_data() {
            ApiError::new(
                hyper::StatusCode::BAD_REQUEST,
                "validation_failed",
                format!("invalid request body: {e}"),
            )
        } else {
            ApiError::bad_request(format!("malformed JSON body: {e}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    fn req(body: &'static [u8], len: Option<usize>) -> Request<Full<Bytes>> {
        let mut b = Request::builder();
        if let Some(l) = len {
            b = b.header(CONTENT_LENGTH, l);
        }
        b.body(Full::new(Bytes::from_static(body)))
            .expect("request")
    }

    #[tokio::test]
    async fn limit_is_enforced_with_and_without_length() {
        assert_eq!(
            read_body_limited(req(b"hello", None), 5).await.expect("ok"),
            "hello"
        );
        let e = read_body_limited(req(b"hello!", None), 5)
            .await
            .unwrap_err();
        assert_eq!(e.status, hyper::StatusCode::PAYLOAD_TOO_LARGE);
        let e = read_body_limited(req(b"", Some(1000)), 5)
            .await
            .unwrap_err();
        assert_eq!(e.status, hyper::StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn charge_sees_every_byte_and_can_refuse() {
        let mut seen = 0;
        let b = read_body_charged(req(b"hello", None), 100, |n| {
            seen += n;
            Ok(())
        })
        .await
        .expect("ok");
        assert_eq!((b.len(), seen), (5, 5));
        let e = read_body_charged(req(b"hello", None), 100, |_| Err(ApiError::overloaded(1)))
            .await
            .unwrap_err();
        assert_eq!(e.status, hyper::StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn json_errors_are_400_and_wrong_type_is_415() {
        #[derive(serde::Deserialize, Debug)]
        struct T {
            #[allow(dead_code)]
            a: u32,
        }
        let e = read_json::<T, _>(req(b"{nope", None), 100)
            .await
            .unwrap_err();
        assert_eq!(e.code, "bad_request");
        let e = read_json::<T, _>(req(b"{\"a\":\"x\"}", None), 100)
            .await
            .unwrap_err();
        assert_eq!(e.code, "validation_failed");
        let r = Request::builder()
            .header(CONTENT_TYPE, "text/plain")
            .body(Full::new(Bytes::from_static(b"{}")))
            .expect("request");
        let e = read_json::<T, _>(r, 100).await.unwrap_err();
        assert_eq!(e.status, hyper::StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
