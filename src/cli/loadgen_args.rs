//! Arguments of `pulsestream loadgen`. The generator itself lives in
//! `crate::loadgen` (ingestion side).

use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct LoadgenArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub url: String,
    /// Ingest API key (psk_...).
    #[arg(long)]
    pub api_key: String,
    /// Target events per second (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// How long to run, seconds.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Events per request (1 = single-event endpoint).
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Concurrent connections.
    #[arg(long, alias = "connections", default_value_t = 8)]
    pub concurrency: usize,
    /// Send NDJSON (default), a JSON array (`json`), or OTLP traces to
    /// /v1/traces (`otlp-protobuf`, `otlp-json`; one SERVER span per event).
    #[arg(long, default_value = "ndjson")]
    pub format: String,
    /// Random seed for reproducible traffic.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Runs the generator (`crate::loadgen`) and prints its report.
pub fn run(args: LoadgenArgs) -> ExitCode {
    if !["ndjson", "json", "otlp-protobuf", "otlp-json"].contains(&args.format.as_str()) {
        eprintln!(
            "error: --format must be ndjson, json, otlp-protobuf or otlp-json, not {}",
            args.format
        );
        return ExitCode::from(2);
    }
    let opts = crate::loadgen::Options {
        url: args.url,
        api_key: args.api_key,
        rate: args.rate,
        duration: std::time::Duration::from_secs(args.duration),
        batch: args.batch,
        connections: args.concurrency,
        ndjson: args.format != "json",
        otlp: match args.format.as_str() {
            "otlp-protobuf" => Some(crate::loadgen::OtlpEncoding::Protobuf),
            "otlp-json" => Some(crate::loadgen::OtlpEncoding::Json),
            _ => None,
        },
        seed: args.seed,
    };
    match crate::loadgen::run(opts) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
