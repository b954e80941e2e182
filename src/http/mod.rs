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
