//! Queries: the model (what is asked) and the engine (how it is answered).
//!
//! `engine` holds the entry points; `filter` compiles and evaluates
//! predicates and prunes; `aggregate` groups, buckets and aggregates;
//! `rollup_plan` answers whole units from their rollups; `search` walks
//! newest-first; `testing` is an in-memory unit for tests.

pub mod aggregate;
pub mod control;
pub mod distinct;
pub mod engine;
pub mod filter;
pub mod hash;
pub mod model;
pub mod rollup_plan;
pub mod search;
#[doc(hidden)]
pub mod testing;

pub use model::*;
