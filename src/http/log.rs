//! Request logging: one tracing event per request (method, path, status,
//! duration), and the subscriber setup (JSON or console, from `[log]`).

use std::time::Duration;

use hyper::{Method, StatusCode};

/// Log output shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Console,
    Json,
}

/// Installs the global subscriber. `level` is an env-filter directive
/// (`info`, `pulsestream=debug,info`); `RUST_LOG` wins when set. Calling it
/// twice is harmless (the second call is ignored), which tests rely on.
pub fn init(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Console => builder.try_init(),
    };
}

/// Logs one finished request. Paths are logged without the query string,
/// which can carry tokens (`?token=` on the WebSocket).
pub fn request(method: &Method, path: &str, status: StatusCode, elapsed: Duration) {
    let micros = elapsed.as_micros() as u64;
    if status.is_server_error() {
        tracing::warn!(target: "pulsestream::request", %method, path, status = status.as_u16(), micros, "request");
    } else {
        tracing::info!(target: "pulsestream::request", %method, path, status = status.as_u16(), micros, "request");
    }
}
