//! OpenTelemetry ingestion: `POST /v1/traces` (OTLP/HTTP, protobuf and
//! JSON, contract section 4). `bounds` limits what decoding may allocate,
//! `decode` turns bodies of either encoding into
//! the published proto messages with bounds checked, `map` turns spans
//! into events, `handlers` joins them to the ingest pipeline. This module
//! never touches the store: events go through `pipeline::Ingestor` like
//! every other transport's.

mod bounds;
pub mod decode;
pub mod handlers;
pub mod map;

pub use handlers::handle_traces;
