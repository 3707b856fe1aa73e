//! Auto-lock counts only what a person does: a paired device syncing,
//! redials and peers' requests keep nothing unlocked.

use std::time::{Duration, Instant};

use crate::paired_with_vault;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_lock_fires_on_time_while_a_paired_device_keeps_syncing() {
    let (a, b) = paired_with_vault("Personal").await;
    // The person's last action on A.
    a.node.touch();
    let touched = Instant::now();
    let idle = Duration::from_secs(3);
    let mut n = 0;
    let locked_after = loop {
        // B keeps writing: every write reaches A (notice, pull, merge),
        // and A answers B's pulls in turn.
        n += 1;
        b.write("Personal", "counter", &n.to_string()).await;
        if a.node.lock_if_idle(idle).await.unwrap() {
            break touched.elapsed();
        }
        assert!(
            touched.elapsed() < idle + Duration::from_secs(5),
            "A never locked: its background sync counted as activity"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(locked_after >= idle, "locked early, after {locked_after:?}");
    assert!(
        locked_after < idle + Duration::from_secs(2),
        "locked {locked_after:?} after the last action"
    );
    assert!(n > 10, "B wrote only {n} times: not a syncing device");
    assert!(matches!(
        a.node.vaults().await,
        Err(polykey_node::NodeError::Locked)
    ));
}
