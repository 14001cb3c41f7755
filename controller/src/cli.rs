//! The command line: `meshfleet run | catalog | demo`. Parsing only; the work lives in
//! [`crate::run`], [`crate::catalog`] and [`crate::demo`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::catalog::Catalog;
use crate::index::Index;
use crate::source::ConfigDir;

#[derive(Debug, Parser)]
#[command(
    name = "meshfleet",
    version,
    about = "Runs a fleet of Kubernetes clusters as one Istio mesh"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the mesh: xDS to Envoy and proxyless gRPC, admin and metrics.
    Run(RunArgs),
    /// Print the NameService catalog: every exported service with its endpoints.
    Catalog(CatalogArgs),
    /// The two-zone demo: backends, the controller and one Envoy per zone, live.
    Demo(crate::demo::DemoArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Directory of YAML manifests, watched for changes.
    #[arg(long, value_name = "DIR")]
    pub config: PathBuf,
    /// ADS over plaintext gRPC.
    #[arg(long, default_value = "0.0.0.0:15010")]
    pub xds_addr: SocketAddr,
    /// `/metrics`, `/healthz`, `/readyz`, `/debug/...`.
    #[arg(long, default_value = "0.0.0.0:15014")]
    pub admin_addr: SocketAddr,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CatalogArgs {
    /// Directory of YAML manifests.
    #[arg(long, value_name = "DIR")]
    pub config: PathBuf,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo's own lines are its output; the controller inside it speaks only of trouble.
    let default_level = match cli.command {
        Command::Demo(_) => "warn",
        _ => "info",
    };
    crate::run::init_tracing(default_level);
    let result = match cli.command {
        Command::Run(args) => runtime().and_then(|rt| rt.block_on(crate::run::run(args))),
        Command::Catalog(args) => catalog(&args),
        Command::Demo(args) => runtime().and_then(|rt| rt.block_on(crate::demo::run(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("meshfleet: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// `meshfleet catalog`: load once, print, report problems on stderr.
fn catalog(args: &CatalogArgs) -> anyhow::Result<()> {
    let mut index = Index::default();
    ConfigDir::new(args.config.clone()).load(&mut index);
    let catalog = Catalog::build_reporting(&index);
    for problem in &catalog.problems {
        eprintln!("warning: {problem}");
    }
    let text = match args.output {
        Output::Table => catalog.to_table(),
        Output::Json => serde_json::to_string_pretty(&catalog)? + "\n",
    };
    write_stdout(&text)
}

/// Prints `text`; a closed pipe (`| head`) is not an error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => Ok(result?),
    }
}
