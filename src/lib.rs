//! PulseStream, the appliance: HTTP front door, metadata, auth, ingestion and
//! reading APIs over the `pulsestream-storage` engine.
pub mod ingest;
pub mod read;
