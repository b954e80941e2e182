//! The command line (contract section 1): `serve`, `demo`, offline admin
//! commands (`tenant`, `key`, `user`), `check` and `loadgen`.
//!
//! Exit codes: 0 success; 1 the command ran and found a problem (`check`
//! found damage) or failed; 2 bad usage or a command not available.

mod admin;
pub mod demo;
mod demo_inbox;
mod loadgen_args;
mod online;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub use loadgen_args::LoadgenArgs;

use crate::config::{Config, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "pulsestream",
    version,
    about = "Self-hosted, multi-tenant, real-time API monitoring"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the appliance.
    Serve(ServeArgs),
    /// Serve a throw-away data dir with synthetic traffic.
    Demo {
        #[arg(long)]
        listen: Option<String>,
    },
    /// Tenant administration (offline, or through the running server).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// API key administration (offline, or through the running server).
    #[command(subcommand)]
    Key(KeyCommand),
    /// User administration (offline, or through the running server).
    #[command(subcommand)]
    User(UserCommand),
    /// Verify every checksum of the store (WAL records included); exit 0
    /// only when all is sound.
    Check(CheckArgs),
    /// Realistic API-call traffic generator.
    Loadgen(LoadgenArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML config file (see config.toml.example).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:8080.
    #[arg(long)]
    pub listen: Option<String>,
}

/// Where the offline commands find the data.
#[derive(Debug, Args, Clone)]
pub struct DirArgs {
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct CheckArgs {
    #[command(flatten)]
    pub dir: DirArgs,
    /// Rebuild a missing or unreadable catalog from the segment footers
    /// (the server must be stopped), then verify.
    #[arg(long)]
    pub rebuild_catalog: bool,
}

impl DirArgs {
    fn load(&self) -> anyhow::Result<Config> {
        Ok(Config::load(
            self.config.as_deref(),
            &Overrides {
                data_dir: self.data_dir.clone(),
                listen: None,
            },
        )?)
    }
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; prints its id and a new ingest API key.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, requires = "owner_password")]
        owner_email: Option<String>,
        #[arg(long, requires = "owner_email")]
        owner_password: Option<String>,
        #[command(flatten)]
        dir: DirArgs,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        dir: DirArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key for a tenant; prints it (shown once).
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value = "cli")]
        name: String,
        /// Comma-separated: ingest, read.
        #[arg(long, default_value = "ingest", value_delimiter = ',')]
        scopes: Vec<String>,
        #[command(flatten)]
        dir: DirArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user of a tenant.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        /// viewer, admin or owner.
        #[arg(long, default_value = "viewer")]
        role: String,
        #[command(flatten)]
        dir: DirArgs,
    },
    /// Clear an account's lockout and failure count (offline).
    Unlock {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        dir: DirArgs,
    },
    /// Set a new password (random and printed when not given), clear any
    /// lockout and end every session of the account (offline).
    ResetPassword {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: Option<String>,
        #[command(flatten)]
        dir: DirArgs,
    },
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    run(cli.command)
}

fn run(command: Command) -> ExitCode {
    let result = match command {
        Command::Serve(args) => serve(args),
        Command::Demo { listen } => demo::run(listen),
        Command::Tenant(TenantCommand::Create {
            name,
            owner_email,
            owner_password,
            dir,
        }) => admin::tenant_create(&dir, &name, owner_email, owner_password),
        Command::Tenant(TenantCommand::List { dir }) => admin::tenant_list(&dir),
        Command::Key(KeyCommand::Create {
            tenant,
            name,
            scopes,
            dir,
        }) => admin::key_create(&dir, &tenant, &name, &scopes),
        Command::User(UserCommand::Create {
            tenant,
            email,
            password,
            role,
            dir,
        }) => admin::user_create(&dir, &tenant, &email, &password, &role),
        Command::User(UserCommand::Unlock { email, dir }) => admin::user_unlock(&dir, &email),
        Command::User(UserCommand::ResetPassword {
            email,
            password,
            dir,
        }) => admin::user_reset_password(&dir, &email, password),
        Command::Check(args) => return admin::check(&args),
        Command::Loadgen(args) => return loadgen_args::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(
        args.config.as_deref(),
        &Overrides {
            data_dir: args.data_dir,
            listen: args.listen,
        },
    )?;
    crate::http::log::init(config.log.format, &config.log.level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let state = std::sync::Arc::new(crate::app::AppState::open(config)?);
        let server = crate::server::Server::bind(state).await?;
        let addr = server.local_addr()?;
        println!("pulsestream listening on http://{addr}");
        tracing::info!(%addr, "listening");
        server.run(crate::server::shutdown_signal()).await
    })
}
