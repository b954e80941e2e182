//! Ingestion: the two ingest endpoints, from request bytes to a durable
//! acknowledgement. `decode` reads bodies, `validate` types events.

pub mod decode;
pub mod validate;
