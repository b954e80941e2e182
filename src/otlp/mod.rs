//! OpenTelemetry ingestion: `POST /v1/traces` (OTLP/HTTP, protobuf and
//! JSON, contract section 4). `decode` turns bodies of either encoding into
//! the published proto messages with bounds checked, `map` turns spans
//! into events, `handlers` joins them to the ingest pipeline. This module
//! never touches the store: events go through `pipeline::Ingestor` like
//! every other transport's.

pub mod decode;
pub mod handlers;
pub mod map;

pub use handlers::handle_traces;
