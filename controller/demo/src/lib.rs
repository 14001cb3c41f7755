//! `meshfleet demo`: two zones (`us-east/us-east-1a`, `us-west/us-west-2a`), two clusters each,
//! echo backends on loopback, meshfleet serving ADS, and one real Envoy per zone. It sends
//! traffic through both Envoys and prints, live, which zone answers; then it fails a zone,
//! shows traffic moving, and restores it.
#![forbid(unsafe_code)]

/// Prints a line; a closed stdout (`| head`) does not stop the demo.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod echo;
pub mod envoy;
pub mod fleet;
pub mod traffic;

use std::time::Duration;

use anyhow::Context;
use meshfleet_model::Locality;

use envoy::{AdsApi, Envoy, EnvoyConfig, eventually, free_port};
use fleet::{Fleet, HOST};
use meshfleet_runtime::RunArgs;
use meshfleet_runtime::run::Controller;

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Seconds each phase (steady, zone down, restored) lasts.
    #[arg(long, default_value_t = 6)]
    pub phase_seconds: u64,
    /// Where the demo writes its config directory (default: a temporary directory).
    #[arg(long, value_name = "DIR")]
    pub config: Option<std::path::PathBuf>,
}

/// Runs the whole demo and returns an error if a phase did not behave as it should.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = args.config.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    let mut fleet = Fleet::start(&dir, fleet::two_zones()).await?;
    let controller = Controller::start(&RunArgs {
        config: Some(dir.clone()),
        kube: Default::default(),
        xds_addr: "127.0.0.1:0".parse()?,
        admin_addr: "127.0.0.1:0".parse()?,
        state_dir: None,
        zone: None,
        xds_limits: Default::default(),
        source_limits: Default::default(),
        ca_dir: None,
        xds_tls_addr: "127.0.0.1:0".parse()?,
        workload_cert_ttl: Duration::from_secs(24 * 3600),
        ca_check_interval: Duration::from_secs(60),
        dns_addr: "127.0.0.1:0".parse()?,
        dns: Default::default(),
    })
    .await?;
    say!(
        "meshfleet: xDS on {}, admin on http://{}/debug/syncz, config in {}",
        controller.xds_addr,
        controller.admin_addr,
        dir.display()
    );
    say!("fleet view: http://{}/", controller.admin_addr);
    let envoys = start_envoys(&fleet, &controller).await?;
    let result = phases(&args, &mut fleet, &envoys, &controller).await;
    for envoy in envoys {
        envoy.stop().await;
    }
    controller.shutdown();
    result
}

async fn start_envoys(fleet: &Fleet, controller: &Controller) -> anyhow::Result<Vec<Envoy>> {
    let mut envoys = Vec::new();
    for spec in fleet
        .zones()
        .iter()
        .filter_map(|z| fleet.clusters.iter().find(|c| &c.zone == z))
    {
        let config = EnvoyConfig {
            node_id: format!("envoy-{}", spec.zone),
            locality: Locality::new(&spec.region, &spec.zone, ""),
            network: String::new(),
            xds_addr: controller.xds_addr,
            listener_port: free_port()?,
            admin_port: free_port()?,
            api: AdsApi::Sotw,
            certs: None,
        };
        let envoy = Envoy::start(config, None).await?;
        eventually(Duration::from_secs(20), || async {
            match traffic::get(envoy.listener(), HOST, "/").await? {
                (200, _) => Ok(()),
                (status, body) => anyhow::bail!("status {status}: {body}"),
            }
        })
        .await
        .with_context(|| format!("envoy {} never routed to {HOST}", envoy.config.node_id))?;
        say!(
            "envoy {} ({}) listening on {}",
            envoy.config.node_id,
            envoy.config.locality,
            envoy.listener()
        );
        envoys.push(envoy);
    }
    Ok(envoys)
}

async fn phases(
    args: &DemoArgs,
    fleet: &mut Fleet,
    envoys: &[Envoy],
    controller: &Controller,
) -> anyhow::Result<()> {
    let failed_zone = fleet.zones()[0].clone();
    say!("\n== steady: every Envoy keeps ~99% of its traffic in its own zone");
    traffic_for(args, envoys).await;

    say!("\n== zone {failed_zone} goes down: its backends die, then turn not-ready");
    for line in predictions(controller, envoys, &failed_zone) {
        say!("  predicted (meshfleet explain --without-zone {failed_zone}): {line}");
    }
    fleet.stop_zone(&failed_zone);
    let half = args.phase_seconds / 2;
    traffic_for(
        &DemoArgs {
            phase_seconds: half,
            ..args.clone()
        },
        envoys,
    )
    .await;
    fleet.set_zone_ready(&failed_zone, false)?;
    traffic_for(
        &DemoArgs {
            phase_seconds: args.phase_seconds - half,
            ..args.clone()
        },
        envoys,
    )
    .await;

    say!("\n== zone {failed_zone} is restored");
    fleet.restart_zone(&failed_zone).await?;
    fleet.set_zone_ready(&failed_zone, true)?;
    let last = traffic_for(args, envoys).await;
    let home = &envoys[0];
    let share = last[0].share(&home.config.locality.zone);
    anyhow::ensure!(
        share > 90.0,
        "after the restore {} kept only {share:.1}% in its zone",
        home.config.node_id
    );
    say!("\ndone: traffic is back in its zones");
    Ok(())
}

/// What `meshfleet explain --without-zone <zone>` says each Envoy will do, from the catalog
/// the controller serves.
fn predictions(controller: &Controller, envoys: &[Envoy], zone: &str) -> Vec<String> {
    let catalog = controller.state.catalog();
    let Some(svc) = catalog.services.iter().find(|s| s.service.host == HOST) else {
        return Vec::new();
    };
    let failure = meshfleet_xds::explain::Failure {
        zones: [zone.to_owned()].into(),
        ..Default::default()
    };
    envoys
        .iter()
        .filter_map(|envoy| {
            let key = meshfleet_model::ClientKey {
                locality: envoy.config.locality.clone(),
                network: envoy.config.network.clone(),
                listener_port: u32::from(envoy.config.listener_port),
                ..Default::default()
            };
            let split = meshfleet_xds::explain::split(&svc.service, None, &key, &failure).ok()?;
            let zones: Vec<String> = split
                .localities
                .iter()
                .map(|l| format!("{} {:5.1}%", l.locality.zone, l.percent))
                .collect();
            Some(format!(
                "envoy@{}: {}",
                envoy.config.locality.zone,
                zones.join(" ")
            ))
        })
        .collect()
}

/// Sends traffic through every Envoy for the phase, one printed line per second; returns the
/// last second's tallies.
async fn traffic_for(args: &DemoArgs, envoys: &[Envoy]) -> Vec<traffic::Tally> {
    let started = tokio::time::Instant::now();
    let mut last = Vec::new();
    while started.elapsed() < Duration::from_secs(args.phase_seconds.max(1)) {
        let sends = envoys
            .iter()
            .map(|e| traffic::send_for(e.listener(), HOST, Duration::from_secs(1)));
        last = futures::future::join_all(sends).await;
        let line: Vec<String> = envoys
            .iter()
            .zip(&last)
            .map(|(e, t)| describe(e, t))
            .collect();
        say!("  {}", line.join("  |  "));
    }
    last
}

fn describe(envoy: &Envoy, tally: &traffic::Tally) -> String {
    let zones: Vec<String> = tally
        .zones
        .keys()
        .map(|zone| format!("{zone} {:5.1}%", tally.share(zone)))
        .collect();
    format!(
        "envoy@{}: {} ({} ok, {} failed)",
        envoy.config.locality.zone,
        zones.join(" "),
        tally.ok(),
        tally.failed
    )
}
