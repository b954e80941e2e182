//! Reading events back: search, statistics, the JSON query language and
//! export, plus the wire forms of times and events they share with
//! ingestion.

pub mod filters;
pub mod query_lang;
pub mod render;
pub mod timeparse;
