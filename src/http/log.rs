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
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, never into log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Console => builder.try_init(),
    };
}

/// Logs one finished request. Successes are logged at `debug`: at tens of
/// thousands of ingest requests a second, a line per request would cost
/// more than the request. Client errors are `info`, server errors `warn`.
/// `log.level = "info,pulsestream::request=debug"` logs every request.
/// Paths are logged without the query string, which can carry tokens
/// (`?token=` on the WebSocket).
pub fn request(method: &Method, path: &str, status: StatusCode, elapsed: Duration) {
    let micros = elapsed.as_micros() as u64;
    let code = status.as_u16();
    if status.is_server_error() {
        tracing::warn!(target: "pulsestream::request", %method, path, status = code, micros, "request");
    } else if status.is_client_error() {
        tracing::info!(target: "pulsestream::request", %method, path, status = code, micros, "request");
    } else {
        tracing::debug!(target: "pulsestream::request", %method, path, status = code, micros, "request");
    }
}
