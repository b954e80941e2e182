//! PulseStream, the appliance: HTTP front door, metadata, auth, ingestion and
//! reading APIs over the `pulsestream-storage` engine.
//!
//! Module map: `server` (accept loop, limits, shutdown) → `router` (the one
//! dispatcher) → `handlers` (own endpoints) and the ingestion/reading
//! modules; `pipeline` (the one ingest path every transport feeds: limits,
//! append, observers, ids); `services` (background work with one
//! lifecycle); `app` (shared state, authentication); `auth` (principals,
//! passwords, tokens, keys); `meta` (redb metadata); `http` (errors,
//! bodies, responses); `alerting` (rolling windows, rules, alerts,
//! notifications); `config`; `metrics`; `cli`.

pub mod alerting;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod connection;
pub mod handlers;
pub mod http;
pub mod ingest;
pub mod live;
pub mod loadgen;
pub mod loadgen_tenants;
pub mod meta;
pub mod metrics;
pub mod otlp;
pub mod pipeline;
pub mod read;
pub mod retention;
pub mod router;
pub mod server;
pub mod services;
pub mod ui;
