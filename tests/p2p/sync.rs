//! Two and three devices of one gestalt keeping their vaults in sync.

use std::time::Duration;

use crate::{device, eventually, pair, paired_with_vault, Device};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paired_devices_sync_both_ways_merge_and_keep_both_versions_of_a_conflict() {
    let (a, b) = (device().await, device().await);
    a.node.create_vault("Personal".into()).await.unwrap();
    a.write("Personal", "github", "pw-a1").await;

    pair(&a, &b).await;

    // The new device receives the vault; an edit on A then appears on B.
    eventually("B has A's vault", &[&a, &b], || async {
        b.read("Personal", "github").await.as_deref() == Some("pw-a1")
    })
    .await;
    a.write("Personal", "github", "pw-a2").await;
    eventually("A's edit reaches B", &[&a, &b], || async {
        b.read("Personal", "github").await.as_deref() == Some("pw-a2")
    })
    .await;
    // And the other way round.
    b.write("Personal", "email", "e1").await;
    eventually("B's edit reaches A", &[&a, &b], || async {
        a.read("Personal", "email").await.as_deref() == Some("e1")
    })
    .await;

    // Concurrent edits of different secrets merge.
    tokio::join!(
        a.write("Personal", "x", "from a"),
        b.write("Personal", "y", "from b")
    );
    eventually("both have both edits and one head", &[&a, &b], || async {
        a.read("Personal", "y").await.as_deref() == Some("from b")
            && b.read("Personal", "x").await.as_deref() == Some("from a")
            && a.head("Personal").await == b.head("Personal").await
    })
    .await;

    // The same secret edited on both keeps both versions.
    tokio::join!(
        a.write("Personal", "github", "edited on a"),
        b.write("Personal", "github", "edited on b")
    );
    eventually(
        "the conflict is merged the same on both",
        &[&a, &b],
        || async {
            a.secrets("Personal").await.len() == 5
                && a.head("Personal").await == b.head("Personal").await
        },
    )
    .await;
    let names = a.secrets("Personal").await;
    let kept = names
        .iter()
        .find(|n| n.starts_with("github.conflict-"))
        .unwrap_or_else(|| panic!("no conflict copy in {names:?}"));
    let mut versions = vec![
        a.read("Personal", "github").await.unwrap(),
        a.read("Personal", kept).await.unwrap(),
    ];
    versions.sort();
    assert_eq!(versions, ["edited on a", "edited on b"], "nothing is lost");
    assert_eq!(b.secrets("Personal").await, names);

    // Converged: syncing again adds no commit on either side.
    let commits = a
        .node
        .vault_log("Personal".into(), None)
        .await
        .unwrap()
        .len();
    assert!(!a.node.sync_now(b.id()).await.unwrap());
    assert!(!b.node.sync_now(a.id()).await.unwrap());
    assert_eq!(
        a.node
            .vault_log("Personal".into(), None)
            .await
            .unwrap()
            .len(),
        commits
    );
    assert_eq!(a.head("Personal").await, b.head("Personal").await);

    // New vaults, renames and deletions propagate.
    b.node.create_vault("Work".into()).await.unwrap();
    a.node
        .rename_vault("Personal".into(), "Home".into())
        .await
        .unwrap();
    eventually(
        "the rename and the new vault propagate",
        &[&a, &b],
        || async {
            a.vault_names().await == ["Home", "Work"] && b.vault_names().await == ["Home", "Work"]
        },
    )
    .await;
    a.node.delete_vault("Work".into()).await.unwrap();
    eventually("the deletion propagates", &[&a, &b], || async {
        b.vault_names().await == ["Home"]
    })
    .await;
    // The deleted vault does not come back on a later sync.
    b.node.sync_now(a.id()).await.unwrap();
    a.node.sync_now(b.id()).await.unwrap();
    assert_eq!(a.vault_names().await, ["Home"]);
}

/// A device that pulled an edit does not tell the sender of it: the sender
/// would only pull back what it sent (a whole round of requests, store
/// reads and a sync, for every edit).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_device_that_pulled_an_edit_does_not_echo_it_to_its_sender() {
    let (a, b) = paired_with_vault("Personal").await;
    for round in 0..4 {
        // Quiet: no sync running on either side for a while.
        eventually("both idle", &[&a, &b], || async {
            // (A failed sync is tried again a few seconds later.)
            let quiet = |s: polykey_node::SyncStatus| !s.syncing && s.last_error.is_none();
            if !quiet(a.node.sync_status()) || !quiet(b.node.sync_status()) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            quiet(a.node.sync_status()) && quiet(b.node.sync_status())
        })
        .await;
        let synced = a.node.sync_status().last_sync;
        let head = a.write("Personal", "note", &format!("edit {round}")).await;
        eventually("B has the edit", &[&a, &b], || async {
            b.head("Personal").await.as_deref() == Some(head.as_str())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            a.node.sync_status().last_sync,
            synced,
            "round {round}: A pulled from B the edit it had sent ({:?})",
            a.node.sync_status()
        );
    }
    // B's own edit still reaches A.
    b.write("Personal", "reply", "from b").await;
    eventually("B's edit reaches A", &[&a, &b], || async {
        a.read("Personal", "reply").await.as_deref() == Some("from b")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_history_larger_than_a_page_arrives_whole_in_several_pages() {
    // 9 MiB of secrets in 3 commits: a transfer of two pages (8 MiB
    // each), the later one served from the plan worked out for the first.
    let (a, b) = (device().await, device().await);
    a.node.create_vault("Archive".into()).await.unwrap();
    let value = |i: usize| format!("{i}").repeat(3 * 1024 * 1024);
    for i in 0..3 {
        a.write("Archive", &format!("part-{i}"), &value(i + 1))
            .await;
    }
    let head = a.head("Archive").await;
    pair(&a, &b).await;
    eventually("B has the whole history", &[&a, &b], || async {
        b.head("Archive").await == head
    })
    .await;
    // The head's version is complete, its history too (each commit's
    // tree was checked on the way in).
    assert_eq!(b.read("Archive", "part-0").await, Some(value(1)));
    let (theirs, ours) = (
        a.node.vault_log("Archive".into(), None).await.unwrap(),
        b.node.vault_log("Archive".into(), None).await.unwrap(),
    );
    let ids =
        |log: &[polykey_node::CommitInfo]| log.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&ours), ids(&theirs));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_third_device_pairs_with_the_second_and_receives_everything() {
    let (a, b, c) = (device().await, device().await, device().await);
    a.node.create_vault("Personal".into()).await.unwrap();
    a.write("Personal", "github", "pw").await;
    pair(&a, &b).await;
    eventually("B has the vault", &[&a, &b], || async {
        b.read("Personal", "github").await.is_some()
    })
    .await;

    pair(&b, &c).await;
    eventually("C has everything", &[&b, &c], || async {
        c.read("Personal", "github").await.as_deref() == Some("pw")
    })
    .await;

    // C's edit reaches A through B: A learned of C from B's links and
    // accepts C's signed commits.
    c.write("Personal", "from-c", "hello").await;
    eventually("C's edit reaches A", &[&a, &b, &c], || async {
        a.read("Personal", "from-c").await.as_deref() == Some("hello")
    })
    .await;
    let devices = a.node.devices().await.unwrap();
    assert_eq!(devices.len(), 3, "{devices:?}");
    assert!(devices.iter().any(|d| d.node_id == c.id()));
    // A is told that B added C; B, which paired C itself, is not.
    let on_a = a.node.device_notices().await.unwrap();
    assert_eq!(on_a.len(), 1, "{on_a:?}");
    assert_eq!((on_a[0].device, on_a[0].added_by), (c.id(), b.id()));
    assert!(b.node.device_notices().await.unwrap().is_empty());
    // C joined through B, whose person knows A: no notice for A on C.
    assert!(c.node.device_notices().await.unwrap().is_empty());

    // A fourth device joins through A, whose person has not yet answered
    // for C: D knows B (listed by A) but is told of C too.
    let d = device().await;
    pair(&a, &d).await;
    eventually("D learns of C", &[&a, &d], || async {
        d.node.devices().await.unwrap().len() == 4
    })
    .await;
    let on_d = d.node.device_notices().await.unwrap();
    assert_eq!(on_d.len(), 1, "{on_d:?}");
    assert_eq!((on_d[0].device, on_d[0].added_by), (c.id(), b.id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn typed_words_pair_with_a_device_this_one_sees() {
    let (a, b, bystander) = (device().await, device().await, device().await);
    a.node.create_vault("Personal".into()).await.unwrap();
    a.write("Personal", "github", "pw").await;
    // B sees two devices (as mDNS would show them); only A shows a code.
    for other in [&bystander, &a] {
        let address = other.node.addresses().await.unwrap().remove(0);
        b.node.connect(other.id(), address).await.unwrap();
    }
    let words = a.node.invite().await.unwrap().words().to_owned();

    // Wrong words: refused, nothing joined, the code stays usable.
    let err = b.node.join("abandon ability able about").await.unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    assert_eq!(b.node.devices().await.unwrap().len(), 1);

    // Typed loosely: upper case, dashes.
    let typed = words.to_uppercase().replace(' ', "-");
    let (inviter, fingerprint) = b.node.join(&typed).await.unwrap();
    assert_eq!(inviter, a.id());
    crate::confirm_both(&a, &b, &fingerprint).await;
    eventually("B has A's vault", &[&a, &b], || async {
        b.read("Personal", "github").await.as_deref() == Some("pw")
    })
    .await;
    assert_eq!(bystander.node.devices().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_devices_earlier_edits_still_reach_a_device_that_was_away() {
    let (a, b, c) = (device().await, device().await, device().await);
    pair(&a, &b).await;
    pair(&a, &c).await;
    a.node.create_vault("Personal".into()).await.unwrap();
    eventually("every device has the vault", &[&a, &b, &c], || async {
        b.vault_names().await == ["Personal"] && c.vault_names().await == ["Personal"]
    })
    .await;
    // B is away (locked: no network) while C edits and A takes the edit.
    b.node.lock().await.unwrap();
    c.write("Personal", "wifi", "from-c").await;
    eventually("A has C's edit", &[&a, &c], || async {
        a.read("Personal", "wifi").await.is_some()
    })
    .await;
    // Then C is removed; its edit made before stays in history.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    a.node.revoke_device(c.id()).await.unwrap();
    c.node.lock().await.unwrap();
    // B comes back: it learns of the removal and still takes the history
    // holding C's earlier edit.
    b.node
        .unlock(polykey_node::Password::new(crate::PASSWORD.into()))
        .await
        .unwrap();
    let address = a.node.addresses().await.unwrap().remove(0);
    b.node.connect(a.id(), address).await.unwrap();
    eventually("B has C's earlier edit", &[&a, &b], || async {
        b.read("Personal", "wifi").await.as_deref() == Some("from-c")
    })
    .await;
    assert!(!b
        .node
        .devices()
        .await
        .unwrap()
        .iter()
        .any(|d| d.node_id == c.id()));
}

/// Three devices, 25 secrets, 300 writes and removals sent to one device
/// after another faster than they sync (the clutter once seen: 200 copies
/// beside 24 secrets): all converge, every acknowledged change is in
/// history, and no secret has more than one copy to review.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_devices_editing_faster_than_they_sync_keep_one_copy_per_secret() {
    let (a, b, c) = (device().await, device().await, device().await);
    a.node.create_vault("Personal".into()).await.unwrap();
    pair(&a, &b).await;
    pair(&a, &c).await;
    let devices = [&a, &b, &c];
    eventually("all three have the vault", &devices, || async {
        b.vault_names().await == ["Personal"] && c.vault_names().await == ["Personal"]
    })
    .await;

    // A fixed pseudo-random sequence (xorshift), so a failure repeats.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let mut acknowledged = Vec::new();
    for step in 0..300 {
        let on = devices[next(3) as usize];
        let name = format!("site-{:02}", next(25));
        let version = if next(5) == 0 {
            on.node
                .remove_secret("Personal".into(), name, false)
                .await
                .ok()
        } else {
            Some(on.write("Personal", &name, &format!("value {step}")).await)
        };
        acknowledged.extend(version);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Converged: one head everywhere, and it stays.
    let heads = || async {
        let mut heads = Vec::new();
        for d in devices {
            heads.push(d.head("Personal").await);
        }
        heads
    };
    let mut settled = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while settled < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no convergence: {:?}",
            heads().await
        );
        let now = heads().await;
        if now.iter().all(|h| *h == now[0]) {
            settled += 1;
        } else {
            settled = 0;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let names = a.secrets("Personal").await;
    for d in [&b, &c] {
        assert_eq!(d.secrets("Personal").await, names);
    }
    let history: std::collections::HashSet<String> = a
        .node
        .vault_log("Personal".into(), None)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    for version in &acknowledged {
        assert!(history.contains(version), "version {version} was lost");
    }
    let copies: Vec<&String> = names.iter().filter(|n| n.contains(".conflict-")).collect();
    assert!(
        copies.iter().all(|n| n.matches(".conflict-").count() == 1),
        "a copy of a copy: {names:?}"
    );
    let mut originals: Vec<&str> = copies
        .iter()
        .filter_map(|n| polykey_vaults::conflict_original(n))
        .collect();
    assert_eq!(originals.len(), copies.len(), "{copies:?}");
    originals.sort_unstable();
    originals.dedup();
    assert_eq!(
        originals.len(),
        copies.len(),
        "one copy per secret: {names:?}"
    );
    let conflicts = a.node.conflicts().await.unwrap();
    assert!(conflicts.len() <= 25, "{} to review", conflicts.len());
}

/// Reset every TCP connection to or from `ports` on loopback (as a network
/// blip or a peer's crash does); how many sockets the kernel aborted.
fn cut_connections_of(ports: &[String]) -> usize {
    let filter = ports
        .iter()
        .map(|port| format!("sport = :{port} or dport = :{port}"))
        .collect::<Vec<_>>()
        .join(" or ");
    let output = std::process::Command::new("ss")
        .args([
            "-K",
            "-H",
            "-t",
            "state",
            "established",
            &format!("( {filter} )"),
        ])
        .output()
        .expect("ss runs");
    assert!(output.status.success(), "ss -K failed: {output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// The TCP port a device listens on (loopback).
async fn tcp_port(device: &Device) -> String {
    let address = device.loopback_address().await;
    address
        .split("/tcp/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the device listens on TCP on loopback")
        .to_owned()
}

/// A cut connection between two devices mends in about a second: each
/// dials the other again soon after losing it, instead of at the next
/// periodic redial (every 20 s). Cut three times; each time an edit made
/// just after reaches the other device within a few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_connection_between_devices_mends_within_seconds() {
    let (a, b) = paired_with_vault("Team").await;
    // Every connection between them has one end at a listening port: A
    // dials from a passing port to B's, B from one to A's. Cutting only
    // A's missed a connection A had dialled (when A redialled first).
    let ports = [tcp_port(&a).await, tcp_port(&b).await];
    for round in 0..3 {
        let value = format!("after cut {round}");
        // Connected (B holds A's last edit) before the cut.
        a.write("Team", "before", &value).await;
        eventually("B has the edit before the cut", &[&a, &b], || async {
            b.read("Team", "before").await.as_deref() == Some(value.as_str())
        })
        .await;
        assert!(cut_connections_of(&ports) > 0, "a connection was cut");
        // The edit is made once A has seen the connection go (or mended).
        tokio::time::sleep(Duration::from_millis(200)).await;
        a.write("Team", "after", &value).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
        loop {
            if b.read("Team", "after").await.as_deref() == Some(value.as_str()) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: the edit did not arrive within 4 s of a cut"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_device_name_reaches_the_other_devices_and_names_its_edits_in_history() {
    // A names itself before pairing, C after: each name reaches the other
    // devices with the chains, and B's history says where each edit was made.
    let (a, b) = paired_with_vault("Home").await;
    a.node.set_device_name("Laptop".into()).await.unwrap();
    a.write("Home", "wifi", "one").await;
    let names_on = |device: &Device, of: polykey_node::NodeId| {
        let node = device.node.clone();
        async move {
            node.devices()
                .await
                .unwrap()
                .into_iter()
                .find(|d| d.node_id == of)
                .and_then(|d| d.name)
        }
    };
    eventually("B knows A as Laptop", &[&a, &b], || async {
        names_on(&b, a.id()).await.as_deref() == Some("Laptop")
            && b.read("Home", "wifi").await.as_deref() == Some("one")
    })
    .await;
    let history = b
        .node
        .secret_history_dto("Home".into(), "wifi".into())
        .await
        .unwrap();
    assert_eq!(history[0].author, a.id().to_string());
    assert_eq!(history[0].author_name.as_deref(), Some("Laptop"));

    // Renamed: the latest name counts, on both.
    a.node.set_device_name("Old laptop".into()).await.unwrap();
    eventually("B follows the rename", &[&a, &b], || async {
        names_on(&b, a.id()).await.as_deref() == Some("Old laptop")
    })
    .await;
    assert_eq!(
        a.node.device_name().await.unwrap().as_deref(),
        Some("Old laptop")
    );
    // B, unnamed, is listed by NodeId alone on A.
    assert_eq!(names_on(&a, b.id()).await, None);
}
