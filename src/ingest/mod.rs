//! Ingestion transports of the JSON API: the two ingest endpoints, from
//! request bytes to events handed to `pipeline::Ingestor`. `decode` reads
//! bodies, `validate` types events, `handlers` joins them to the pipeline
//! (which owns limits, the append, the observers and the ids).

pub mod decode;
pub mod handlers;
pub mod validate;

pub use handlers::{handle_batch, handle_single};
