//! Authentication and authorisation: verified principals, passwords, JWT
//! access tokens, API keys and the random identifiers they are made of.
//!
//! This module owns every secret-handling primitive. It never reads or
//! writes the metadata database itself (that is `meta`); `AppState::
//! authenticate` joins the two.

pub mod account_locks;
pub mod apikey;
pub mod hash_gate;
pub mod jwt;
pub mod login_limit;
pub mod password;
pub mod principal;
pub mod random;

pub use principal::{Principal, Role, Scope, TenantScope};
