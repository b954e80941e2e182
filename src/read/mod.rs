//! Reading events back: search, statistics, the JSON query language and
//! export (contract section 5), plus the wire forms of times and events
//! they share with ingestion.
//!
//! Every handler takes the tenant from the verified credential
//! (`Principal::require_read`), never from the request.

pub mod export;
pub mod filters;
pub mod gate;
pub mod query;
pub mod query_lang;
pub mod render;
pub mod search;
pub mod statistics;
pub mod timeparse;
pub mod warnings;

pub use export::export;
pub use query::query;
pub use search::search;
pub use statistics::statistics;
