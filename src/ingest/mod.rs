//! Ingestion: the two ingest endpoints, from request bytes to a durable
//! acknowledgement. `decode` reads bodies, `validate` types events,
//! `ratelimit` applies the tenant's limits, `backpressure` bounds the bytes
//! in flight, `coalesce` joins concurrent single events into one append,
//! `handlers` joins them to the store and the observers.

pub mod backpressure;
pub mod coalesce;
pub mod decode;
pub mod handlers;
pub mod ratelimit;
pub mod validate;

pub use handlers::{IngestState, handle_batch, handle_single};
