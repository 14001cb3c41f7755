//! Workload certificates issued per second by a cluster's intermediate, as a bench binary that
//! prints its figures: `cargo bench -p meshfleet-ca --bench issue [-- COUNT]`.
//!
//! Each certificate gets a new ECDSA P-256 key (generated here, as meshfleet issues them
//! itself) and is signed by an intermediate of each algorithm meshfleet makes: ECDSA P-256 and
//! RSA 2048 (RSA 4096 for the root, as Istio's tools make it).

use std::time::{Duration, Instant};

use meshfleet_ca::{
    Algorithm, Authority, INTERMEDIATE_VALIDITY, ROOT_VALIDITY, SpiffeId, WORKLOAD_VALIDITY,
};

fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2_000);
    println!("meshfleet CA bench: {count} workload certificates per intermediate algorithm");
    for (root_algorithm, intermediate_algorithm, name) in [
        (
            Algorithm::EcdsaP256,
            Algorithm::EcdsaP256,
            "ECDSA P-256 intermediate",
        ),
        (
            Algorithm::Rsa4096,
            Algorithm::Rsa2048,
            "RSA 2048 intermediate (RSA 4096 root)",
        ),
    ] {
        let started = Instant::now();
        let root =
            Authority::generate_root("cluster.local", root_algorithm, ROOT_VALIDITY).expect("root");
        let issued = root
            .issue_intermediate("bench", intermediate_algorithm, INTERMEDIATE_VALIDITY)
            .expect("intermediate");
        let setup = started.elapsed();
        let chain: String = issued.chain_pem();
        let intermediate =
            Authority::from_pem("cluster.local", "chain", &chain, "key", &issued.key_pem)
                .expect("intermediate loads");
        let mut times: Vec<Duration> = Vec::with_capacity(count);
        let started = Instant::now();
        for i in 0..count {
            let id = SpiffeId::new("cluster.local", "bench", &format!("sa-{i}"));
            let one = Instant::now();
            let leaf = intermediate
                .issue_workload(&id, WORKLOAD_VALIDITY)
                .expect("workload certificate");
            times.push(one.elapsed());
            std::hint::black_box(leaf);
        }
        let total = started.elapsed();
        times.sort();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!(
            "{name}: {:.0} certificates/s; per certificate p50 {:.2} ms, p99 {:.2} ms (root and intermediate made in {:.2} s)",
            count as f64 / total.as_secs_f64(),
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            setup.as_secs_f64(),
        );
    }
}
