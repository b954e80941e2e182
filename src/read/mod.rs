//! Reading events back: search, statistics, the JSON query language and
//! export, plus the wire forms of times they share with ingestion.

pub mod timeparse;
