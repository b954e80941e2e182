//! HTTP plumbing shared by every handler: the response body type, JSON and
//! empty responses, the contract's error body (`ApiError`), bounded body
//! reading and query-string parsing.
//!
//! This module owns the wire shape of errors and the single mapping from
//! storage errors to statuses. It never decides who may do what (that is
//! `auth`) and never touches the store.

mod body;
pub mod deadline;
mod error;
pub mod log;
mod query;
mod response;

pub use body::{read_body_charged, read_body_limited, read_json};
pub use error::{ApiError, FieldError};
pub use query::{parse_query, query_value};
pub use response::{empty, full, json, text, with_header};

/// Every response body the server produces: buffered or streamed, boxed so
/// handlers of both kinds share one router.
pub type ResponseBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

/// A response as handlers return it.
pub type HttpResponse = hyper::Response<ResponseBody>;

/// The peer address of the connection a request came on, put into the
/// request's extensions by the server (per-address limits read it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::SocketAddr);

impl ClientAddr {
    /// The request's client IP; unspecified when the server did not record
    /// one (requests built in tests), which then share one bucket.
    pub fn ip_of<B>(req: &hyper::Request<B>) -> std::net::IpAddr {
        req.extensions()
            .get::<ClientAddr>()
            .map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |c| {
                c.0.ip()
            })
    }
}
