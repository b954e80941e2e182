//! Ingestion: the two ingest endpoints, from request bytes to a durable
//! acknowledgement. `decode` reads bodies, `validate` types events,
//! `ratelimit` applies the tenant's limits, `backpressure` bounds the bytes
//! in flight.

pub mod backpressure;
pub mod decode;
pub mod ratelimit;
pub mod validate;
