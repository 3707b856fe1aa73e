//! Three nodes of one gestalt, each its own process on 127.0.0.1, edit one
//! vault for 15 s while their connections are cut at random and two of them
//! are killed with SIGKILL and started again; then they must converge with
//! every acknowledged change in history and no process having panicked.
//! The ten-node run is the `faults` benchmark (`tests/benches/faults.rs`).

use std::time::Duration;

use polykey_tests::cluster::{self, Plan};

/// Not a test of its own: the node process the tests below start.
#[test]
fn cluster_node() {
    cluster::serve_if_child();
}

/// Runs `scenario` with the arguments that start [`cluster_node`], and
/// fails the test with what went wrong.
fn run_nodes<'a, T, F>(scenario: impl FnOnce(&'a [String]) -> F) -> T
where
    F: std::future::Future<Output = Result<T, String>> + 'a,
{
    static ARGS: std::sync::LazyLock<[String; 3]> =
        std::sync::LazyLock::new(|| ["--exact", "cluster_node", "--nocapture"].map(String::from));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(scenario(&ARGS[..]))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn three_nodes_of_two_people_sharing_a_vault_converge_under_drops_and_kills_and_lose_nothing() {
    if std::env::var_os(cluster::CHILD_ENV).is_some() {
        return;
    }
    let plan = Plan {
        nodes: 3,
        // Two of one person and one of another, who shares the vault.
        people: 2,
        edit_for: Duration::from_secs(15),
        kills: 2,
        drop_every: Duration::from_millis(700),
        names: 24,
        converge_within: Duration::from_secs(60),
        seed: Plan::seed_from_env(),
    };
    eprintln!("fault test seed {}", plan.seed);
    let report = run_nodes(|args| cluster::run(&plan, args));
    eprintln!("{report:#?}");
    assert!(report.kills == 2, "{report:?}");
    assert!(
        report.sockets_cut >= report.drops,
        "the drops cut little: {report:?}"
    );
    assert!(report.acknowledged > 100, "too little was done: {report:?}");
}

/// A device coming back to a history of 60 commits of 100 secrets each,
/// after making 20 of its own, is killed five times while it fetches the
/// pages and merges: every restart opens, verifies and keeps its own
/// versions, and the two end with one head holding everything.
#[test]
fn a_device_killed_while_it_fetches_and_merges_loses_nothing() {
    if std::env::var_os(cluster::CHILD_ENV).is_some() {
        return;
    }
    let seed = Plan::seed_from_env();
    eprintln!("sync kill test seed {seed}");
    let report = run_nodes(|args| cluster::kill_while_syncing(args, 100, 60, 5, seed));
    eprintln!("{report:#?}");
    assert_eq!(report.lacked, 60, "{report:?}");
    assert!(
        report.mid_sync >= 1,
        "no kill landed before the catch-up ended: {report:?}"
    );
}
