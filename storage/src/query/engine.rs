//! Entry points of the query engine: aggregate queries and newest-first
//! search over a set of `ScanUnit`s.

use std::sync::Arc;

use crate::error::{Result, StorageError};
use crate::query::model::{Query, QueryResult, SearchRequest, SearchResult};
use crate::scan::ScanUnit;

/// Answers an aggregate query over `units` (already restricted to the
/// query's tenants by the caller; pruned by time here).
pub fn execute(units: &[Arc<dyn ScanUnit>], q: &Query) -> Result<QueryResult> {
    let _ = (units, q);
    Err(StorageError::invalid("query", "engine under construction"))
}

/// Newest-first event search with a cursor.
pub fn search(units: &[Arc<dyn ScanUnit>], req: &SearchRequest) -> Result<SearchResult> {
    let _ = (units, req);
    Err(StorageError::invalid("search", "engine under construction"))
}
