//! `meshfleet ca init | issue | verify`: the fleet's root and each cluster's plug-in CA files,
//! made and checked with [`meshfleet_ca`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;

use meshfleet_ca::{
    Algorithm, Authority, Certificate, INTERMEDIATE_VALIDITY, SpiffeId, WORKLOAD_VALIDITY, istio,
};

use meshfleet_ca::store::{ROOT_KEY, RootDir};

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Make the fleet's root CA (or adopt one) in DIR: `root-cert.pem`, `root-key.pem` (0600)
    /// and `trust-domain`.
    Init(InitArgs),
    /// Issue a member cluster's intermediate CA as Istio's plug-in files (`ca-cert.pem`,
    /// `ca-key.pem`, `root-cert.pem`, `cert-chain.pem`) and the `cacerts` Secret
    /// (`cacerts.yaml`).
    Issue(IssueArgs),
    /// Check a directory of plug-in files (or a root directory) and say what is wrong.
    Verify(VerifyArgs),
    /// Replace the root: a new one signs from now on, the old one stays trusted (in every
    /// cluster's `root-cert.pem` from the next `ca issue`) until `--finish`.
    Rotate(RotateArgs),
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The mesh's SPIFFE trust domain (Istio's default is `cluster.local`).
    #[arg(long, value_name = "TD")]
    pub trust_domain: String,
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Adopt an existing root: its certificate and key (PKCS#8, PKCS#1 or SEC1 PEM).
    #[arg(long, num_args = 2, value_names = ["CERT", "KEY"])]
    pub import_root: Option<Vec<PathBuf>>,
    /// Key algorithm of a new root: ecdsa-p256, rsa-2048 or rsa-4096.
    #[arg(long, default_value = "ecdsa-p256", value_parser = parse_algorithm)]
    pub algorithm: Algorithm,
    /// Validity of a new root.
    #[arg(long, default_value = "10years", value_parser = humantime::parse_duration)]
    pub validity: Duration,
}

#[derive(Debug, clap::Args)]
pub struct IssueArgs {
    /// A directory made by `ca init`.
    #[arg(long, value_name = "DIR")]
    pub ca_dir: PathBuf,
    /// The member cluster the intermediate is for.
    #[arg(long, value_name = "NAME")]
    pub cluster: String,
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Key algorithm of the intermediate: ecdsa-p256, rsa-2048 or rsa-4096.
    #[arg(long, default_value = "ecdsa-p256", value_parser = parse_algorithm)]
    pub algorithm: Algorithm,
    /// Validity (never beyond the issuer's): 1 year for an intermediate, 24 h for a workload.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub validity: Option<Duration>,
    /// Issue a workload certificate for `NAMESPACE/SERVICEACCOUNT` instead, from the cluster's
    /// CA as `run --ca-dir` keeps it (`DIR/clusters/<cluster>/`), as Istio's file-mounted
    /// certificates: `cert-chain.pem`, `key.pem` (0600), `root-cert.pem`.
    #[arg(long, value_name = "NS/SA")]
    pub workload: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// A directory made by `ca init`.
    #[arg(long, value_name = "DIR")]
    pub ca_dir: PathBuf,
    /// End the rotation: stop trusting the previous roots (once every cluster's intermediate
    /// and every workload certificate comes from the new root).
    #[arg(long)]
    pub finish: bool,
    /// Key algorithm of the new root: ecdsa-p256, rsa-2048 or rsa-4096.
    #[arg(long, default_value = "ecdsa-p256", value_parser = parse_algorithm)]
    pub algorithm: Algorithm,
    /// Validity of the new root.
    #[arg(long, default_value = "10years", value_parser = humantime::parse_duration)]
    pub validity: Duration,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// A cluster's plug-in files (`ca issue --out`) or a root directory (`ca init --out`).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

fn parse_algorithm(text: &str) -> Result<Algorithm, String> {
    Algorithm::parse(text).map_err(|e| e.to_string())
}

pub fn run(command: CaCommand) -> anyhow::Result<()> {
    match command {
        CaCommand::Init(args) => init(&args),
        CaCommand::Issue(args) => issue(&args),
        CaCommand::Verify(args) => verify(&args.dir),
        CaCommand::Rotate(args) => rotate(&args),
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

fn init(args: &InitArgs) -> anyhow::Result<()> {
    let root = match &args.import_root {
        Some(files) => {
            let (cert, key) = (&files[0], &files[1]);
            Authority::from_pem(
                &args.trust_domain,
                &cert.display().to_string(),
                &read(cert)?,
                &key.display().to_string(),
                &read(key)?,
            )?
        }
        None => Authority::generate_root(&args.trust_domain, args.algorithm, args.validity)?,
    };
    RootDir::create(&args.out, &root).map_err(|e| match &args.import_root {
        Some(_) => anyhow::anyhow!("--import-root: {e}"),
        None => e.into(),
    })?;
    println!(
        "root CA for trust domain {} in {}",
        args.trust_domain,
        args.out.display()
    );
    Ok(())
}

fn issue(args: &IssueArgs) -> anyhow::Result<()> {
    if let Some(workload) = &args.workload {
        return issue_workload(args, workload);
    }
    let RootDir { root, previous, .. } = RootDir::load(&args.ca_dir)?;
    let validity = args.validity.unwrap_or(INTERMEDIATE_VALIDITY);
    let issued = root.issue_intermediate(&args.cluster, args.algorithm, validity)?;
    istio::write_files(&args.out, &istio::plugin_files(&issued, &previous))?;
    println!(
        "intermediate CA of {} in {} (apply {} to the cluster)",
        args.cluster,
        args.out.display(),
        args.out.join(istio::SECRET).display()
    );
    Ok(())
}

/// A workload certificate from the cluster's CA, as Istio mounts one from files.
fn issue_workload(args: &IssueArgs, workload: &str) -> anyhow::Result<()> {
    let Some((namespace, account)) = workload
        .split_once('/')
        .filter(|(ns, sa)| !ns.is_empty() && !sa.is_empty() && !sa.contains('/'))
    else {
        anyhow::bail!("--workload {workload:?}: expected NAMESPACE/SERVICEACCOUNT");
    };
    let root = RootDir::load(&args.ca_dir)?;
    let ca = root.cluster_authority(&args.cluster, std::time::SystemTime::now())?;
    let id = SpiffeId::new(ca.trust_domain(), namespace, account);
    let issued = ca.issue_workload(&id, args.validity.unwrap_or(WORKLOAD_VALIDITY))?;
    let intermediates = &issued.chain[..issued.chain.len().saturating_sub(1)];
    let chain: String = std::iter::once(&issued.certificate)
        .chain(intermediates)
        .map(Certificate::pem)
        .collect();
    let roots: String = root.trusted_roots().iter().map(Certificate::pem).collect();
    istio::write_files(
        &args.out,
        &[
            ("cert-chain.pem", chain),
            ("key.pem", issued.key_pem.clone()),
            ("root-cert.pem", roots),
        ],
    )?;
    println!(
        "workload certificate of {id} from the CA of {} in {}",
        args.cluster,
        args.out.display()
    );
    Ok(())
}

fn verify(dir: &Path) -> anyhow::Result<()> {
    if dir.join(ROOT_KEY).exists() && !dir.join(istio::CA_CERT).exists() {
        let RootDir { root, previous, .. } = RootDir::load(dir)?;
        println!(
            "ok: root CA of trust domain {}{}",
            root.trust_domain(),
            match previous.len() {
                0 => String::new(),
                n => format!(", rotating: {n} previous root(s) still trusted"),
            }
        );
        return Ok(());
    }
    let verified = istio::verify_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    println!(
        "ok: {} (expires {}), chained to {}{}",
        verified.subject,
        verified.not_after,
        verified.root,
        match verified.trusted_roots {
            1 => String::new(),
            n => format!("; {n} roots trusted"),
        }
    );
    Ok(())
}

fn rotate(args: &RotateArgs) -> anyhow::Result<()> {
    let dir = &args.ca_dir;
    if args.finish {
        let previous = RootDir::finish_rotation(dir)?;
        println!(
            "rotation finished: {previous} previous root(s) no longer trusted; issue every cluster again"
        );
        return Ok(());
    }
    let current = RootDir::load(dir)?;
    let new = Authority::generate_root(current.root.trust_domain(), args.algorithm, args.validity)?;
    RootDir::rotate(dir, &new)?;
    println!(
        "new root in {}; the previous one stays trusted: issue every cluster again, then `ca rotate --finish` once workloads have new certificates",
        dir.display()
    );
    Ok(())
}
