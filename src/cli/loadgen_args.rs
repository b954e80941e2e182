//! Arguments of `pulsestream loadgen`. The generator itself lives in
//! `crate::loadgen` (ingestion side).

use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct LoadgenArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub url: String,
    /// Ingest API key (psk_...); not needed with --tenants or --keys-file.
    #[arg(long, required_unless_present_any = ["tenants", "keys_file"])]
    pub api_key: Option<String>,
    /// Send for this many tenants, in a skewed mix (the busiest of 50 gets
    /// about a quarter): created through the admin API (--admin-password),
    /// or the first N keys of --keys-file.
    #[arg(long)]
    pub tenants: Option<usize>,
    /// Platform administrator's password, to create the --tenants (also
    /// read from PULSESTREAM_ADMIN_PASSWORD).
    #[arg(long, env = "PULSESTREAM_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    #[arg(long, default_value = "admin@localhost")]
    pub admin_email: String,
    /// Ingest keys, one per line (instead of creating tenants).
    #[arg(long)]
    pub keys_file: Option<std::path::PathBuf>,
    /// Spread event timestamps over this much of the past, e.g. 24h (agents
    /// flushing a buffer).
    #[arg(long)]
    pub backfill: Option<String>,
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
    match options(args).and_then(crate::loadgen::run) {
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

/// The generator's options: the keys of `--tenants` are read or created
/// here, before the clock starts.
fn options(args: LoadgenArgs) -> anyhow::Result<crate::loadgen::Options> {
    let backfill = match &args.backfill {
        Some(b) => {
            Some(crate::config::parse_duration(b).map_err(|e| anyhow::anyhow!("--backfill: {e}"))?)
        }
        None => None,
    };
    let tenant_keys = match (&args.keys_file, args.tenants) {
        (Some(path), n) => {
            let mut keys = crate::loadgen_tenants::read_keys_file(path)?;
            if let Some(n) = n {
                if n > keys.len() {
                    anyhow::bail!(
                        "--tenants {n} but {} holds {} keys",
                        path.display(),
                        keys.len()
                    );
                }
                keys.truncate(n);
            }
            keys
        }
        (None, Some(n)) => {
            let Some(password) = &args.admin_password else {
                anyhow::bail!(
                    "--tenants needs --admin-password (or PULSESTREAM_ADMIN_PASSWORD) or --keys-file"
                );
            };
            let prefix = format!(
                "loadgen-{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let keys = rt.block_on(crate::loadgen_tenants::create_tenants(
                &args.url,
                &args.admin_email,
                password,
                n,
                &prefix,
            ))?;
            eprintln!("created {n} tenants {prefix}-0000 ..");
            keys
        }
        (None, None) => Vec::new(),
    };
    Ok(crate::loadgen::Options {
        url: args.url,
        api_key: args.api_key.unwrap_or_default(),
        tenant_keys,
        backfill,
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
    })
}
