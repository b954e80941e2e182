//! Queries: the model (what is asked) and the engine (how it is answered).

pub mod engine;
pub mod model;

pub use model::*;
