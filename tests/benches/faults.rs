//! Ten nodes of one gestalt under faults: each its own process on
//! 127.0.0.1, editing one vault for a minute while connections are cut at
//! random and two nodes are killed with SIGKILL and started again. Prints
//! acknowledged changes per second, the time to converge once the faults
//! stop, and the largest node's resident memory then; fails if anything
//! acknowledged is lost, the nodes do not converge, or a node panicked.
//!
//! `cargo bench -p polykey-tests --bench faults` (`POLYKEY_FAULT_NODES`,
//! `POLYKEY_FAULT_PEOPLE`, `POLYKEY_FAULT_SECONDS` and
//! `POLYKEY_FAULT_SEED` change the run; with two people, the first shares
//! the vault with the second, to write).
#![allow(clippy::print_stdout)]

use std::time::Duration;

use polykey_tests::cluster::{self, Plan};

fn main() {
    cluster::serve_if_child();
    let number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let plan = Plan {
        nodes: number("POLYKEY_FAULT_NODES", 10) as usize,
        people: number("POLYKEY_FAULT_PEOPLE", 1) as usize,
        edit_for: Duration::from_secs(number("POLYKEY_FAULT_SECONDS", 60)),
        kills: 2,
        drop_every: Duration::from_millis(500),
        names: 40,
        converge_within: Duration::from_secs(120),
        seed: Plan::seed_from_env(),
    };
    println!(
        "faults: {} nodes of {} people, {:?} of edits, seed {}",
        plan.nodes, plan.people, plan.edit_for, plan.seed
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    match runtime.block_on(cluster::run(&plan, &[])) {
        Ok(r) => {
            println!(
                "acknowledged {} changes ({:.1}/s), {} interrupted, {} drops cutting {} sockets, {} kills",
                r.acknowledged,
                r.ops_per_second,
                r.interrupted,
                r.drops,
                r.sockets_cut,
                r.kills
            );
            println!(
                "converged in {:.2} s: {} commits, {} secrets; largest node {:.1} MiB resident",
                r.convergence.as_secs_f64(),
                r.commits,
                r.secrets,
                r.rss_kib as f64 / 1024.0
            );
        }
        Err(e) => {
            println!("faults: FAILED: {e}");
            std::process::exit(1);
        }
    }
}
