//! The command line: `meshfleet run | schedule | render | catalog | demo`. Parsing and printing
//! only; the work lives in [`meshfleet_runtime::run`], [`meshfleet_propagation`], [`meshfleet_catalog`] and
//! [`meshfleet_demo`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Parser, Subcommand, ValueEnum};

use meshfleet_catalog::Catalog;
use meshfleet_index::Index;
use meshfleet_model::problem::Problem;
use meshfleet_propagation::plan::plan;
use meshfleet_runtime::sink::DirSink;
use meshfleet_runtime::source::ConfigDir;

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
    Run(Box<meshfleet_runtime::RunArgs>),
    /// Pull mode, inside a member cluster: apply the manifests the gateway cluster holds for
    /// it (its Works), and report their status and the cluster's back.
    Agent(meshfleet_runtime::kube::agent::AgentArgs),
    /// Dry run of propagation: one ResourceBinding per propagated resource.
    Schedule(ScheduleArgs),
    /// Write what propagation would apply, per member cluster, under `<out>/clusters/`.
    Render(RenderArgs),
    /// Print the NameService catalog: every exported service with its endpoints.
    Catalog(CatalogArgs),
    /// The traffic split a client locality gets for a service, now or after a failure
    /// (`--without-zone`, `--without-cluster`, `--unready`), as its Envoy computes it.
    Explain(crate::explain::ExplainArgs),
    /// The two-zone demo: backends, the controller and one Envoy per zone, live.
    Demo(meshfleet_demo::DemoArgs),
    /// The fleet's certificate authority: root, per-cluster intermediates (Istio's `cacerts`).
    #[command(subcommand)]
    Ca(crate::ca::CaCommand),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ScheduleArgs {
    /// Directory of YAML manifests.
    #[arg(long, value_name = "DIR")]
    pub config: PathBuf,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = BindingOutput::Yaml)]
    pub output: BindingOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BindingOutput {
    Yaml,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RenderArgs {
    /// Directory of YAML manifests.
    #[arg(long, value_name = "DIR")]
    pub config: PathBuf,
    /// Where to write: `<out>/clusters/<cluster>/<namespace>/<kind>-<name>.yaml`.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
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
    meshfleet_runtime::run::init_tracing(default_level);
    let result = match cli.command {
        Command::Run(args) => runtime().and_then(|rt| {
            let result = rt.block_on(meshfleet_runtime::run::run(*args));
            // A read stuck in the kernel (a hung network mount) must not hold the exit.
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
            result
        }),
        Command::Agent(args) => {
            runtime().and_then(|rt| rt.block_on(meshfleet_runtime::kube::agent::run(args)))
        }
        Command::Schedule(args) => schedule(&args),
        Command::Render(args) => render(&args),
        Command::Catalog(args) => catalog(&args),
        Command::Explain(args) => load(&args.config)
            .and_then(|index| crate::explain::run(&args, &index))
            .and_then(|text| write_stdout(&text)),
        Command::Demo(args) => runtime().and_then(|rt| rt.block_on(meshfleet_demo::run(args))),
        Command::Ca(command) => crate::ca::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is::<Incomplete>() || error.is::<crate::explain::Refused>() => {
            eprintln!("meshfleet: {error}");
            ExitCode::from(2)
        }
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
    let index = load(&args.config)?;
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

/// Loads a config directory once.
fn load(config: &std::path::Path) -> anyhow::Result<Index> {
    meshfleet_runtime::ensure_dir(config)?;
    let mut index = Index::default();
    ConfigDir::new(config.to_owned()).load(&mut index);
    Ok(index)
}

/// A dry run that printed or wrote everything it could, but not everything: some documents
/// were refused, some bindings are not scheduled or some copies not rendered. Exit status 2.
#[derive(Debug, thiserror::Error)]
#[error(
    "{refused} document(s) refused, {unscheduled} binding(s) not scheduled, {unrendered} cop(ies) not rendered; see the warnings above"
)]
struct Incomplete {
    refused: usize,
    unscheduled: usize,
    unrendered: usize,
}

/// `Err(Incomplete)` when some of the config was refused or some of `plan` would not be
/// applied.
fn complete(index: &Index, plan: &meshfleet_propagation::plan::Plan) -> anyhow::Result<()> {
    let refused = index.refused();
    let unscheduled = plan
        .bindings
        .values()
        .filter(|b| {
            b.status
                .conditions
                .iter()
                .any(|c| c.type_ == "Scheduled" && c.status != "True")
        })
        .count();
    // Copies held back by a policy's `suspension` are kept on purpose.
    let unrendered = plan.keep.values().map(|k| k.len()).sum::<usize>() - suspended(plan);
    if refused + unscheduled + unrendered == 0 {
        return Ok(());
    }
    Err(Incomplete {
        refused,
        unscheduled,
        unrendered,
    }
    .into())
}

/// How many copies a policy's `suspension` holds back.
fn suspended(plan: &meshfleet_propagation::plan::Plan) -> usize {
    plan.suspended.values().map(|k| k.len()).sum()
}

/// Prints the problems of the index and of a plan on stderr.
fn report(index: &Index, problems: &[Problem]) {
    for problem in index.problems().iter().chain(problems) {
        eprintln!("warning: {problem}");
    }
}

/// `meshfleet schedule`: one ResourceBinding per propagated resource.
fn schedule(args: &ScheduleArgs) -> anyhow::Result<()> {
    let index = load(&args.config)?;
    let plan = plan(&index, &Default::default(), SystemTime::now());
    report(&index, &plan.problems);
    let bindings: Vec<&meshfleet_api::ResourceBinding> =
        plan.bindings.values().map(AsRef::as_ref).collect();
    let text = match args.output {
        BindingOutput::Yaml => {
            let mut text = String::new();
            for binding in bindings {
                text.push_str("---\n");
                text.push_str(&serde_norway::to_string(binding)?);
            }
            text
        }
        BindingOutput::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": bindings});
            serde_json::to_string_pretty(&list)? + "\n"
        }
    };
    write_stdout(&text)?;
    complete(&index, &plan)
}

/// `meshfleet render`: every cluster's manifests under `<out>/clusters/<cluster>/`.
fn render(args: &RenderArgs) -> anyhow::Result<()> {
    let index = load(&args.config)?;
    let plan = plan(&index, &Default::default(), SystemTime::now());
    report(&index, &plan.problems);
    let clusters: Vec<_> = index.clusters().cloned().collect();
    let mut sink = DirSink::new(&args.out);
    let applied = futures::executor::block_on(meshfleet_runtime::apply::apply(
        &mut sink,
        plan.desired(),
        &clusters,
        None,
        None,
    ))?;
    let held = match suspended(&plan) {
        0 => String::new(),
        n => format!(", {n} left as they are: dispatching suspended"),
    };
    eprintln!(
        "{} manifests for {} clusters in {} ({} written, {} unchanged, {} removed{held})",
        applied.written + applied.unchanged,
        plan.manifests.len(),
        args.out.join("clusters").display(),
        applied.written,
        applied.unchanged,
        applied.removed,
    );
    complete(&index, &plan)
}

/// Prints `text`; a closed pipe (`| head`) is not an error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => Ok(result?),
    }
}
