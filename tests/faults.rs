//! Three nodes of one gestalt, each its own process on 127.0.0.1, edit one
//! vault for 15 s while their connections are cut at random and two of them
//! are killed with SIGKILL and started again; then they must converge with
//! every acknowledged change in history and no process having panicked.
//! The ten-node run is the `faults` benchmark (`tests/benches/faults.rs`).

use std::time::Duration;

use polykey_tests::cluster::{self, Plan};

/// Not a test of its own: the node process the test below starts.
#[test]
fn cluster_node() {
    cluster::serve_if_child();
}

#[test]
fn three_nodes_under_dropped_connections_and_kills_converge_and_lose_nothing() {
    if std::env::var_os(cluster::CHILD_ENV).is_some() {
        return;
    }
    let plan = Plan {
        nodes: 3,
        edit_for: Duration::from_secs(15),
        kills: 2,
        drop_every: Duration::from_millis(700),
        names: 24,
        converge_within: Duration::from_secs(60),
        seed: Plan::seed_from_env(),
    };
    eprintln!("fault test seed {}", plan.seed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let args = ["--exact", "cluster_node", "--nocapture"].map(String::from);
    let report = runtime
        .block_on(cluster::run(&plan, &args))
        .unwrap_or_else(|e| panic!("{e}"));
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let args = ["--exact", "cluster_node", "--nocapture"].map(String::from);
    let report = runtime
        .block_on(cluster::kill_while_syncing(&args, 100, 60, 5, seed))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{report:#?}");
    assert_eq!(report.lacked, 60, "{report:?}");
    assert!(
        report.mid_sync >= 1,
        "no kill landed before the catch-up ended: {report:?}"
    );
}
