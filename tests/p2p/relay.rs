//! Two devices that nobody can dial pair and sync through a relay.
//!
//! R is a node with `relay_server`, listening on 127.0.0.1. A and B listen
//! on nothing at all (no address of theirs can be dialled) and have R as
//! their seed: each listens through R, so its addresses, and so its
//! invitation, are R's relayed addresses only. A invites, B joins with the
//! code, and a secret written on either side reaches the other, every byte
//! through R.

use polykey_node::NetworkOptions;

use crate::{device_with, eventually, pair, Device};

/// A device that listens only through `relay`.
async fn behind(relay: &Device) -> Device {
    let address = relay.node.addresses().await.unwrap()[0].clone();
    let device = device_with(NetworkOptions {
        listen: Vec::new(),
        seeds: vec![format!("{}@{address}", relay.id())],
        ..NetworkOptions::loopback()
    })
    .await
    .0;
    eventually(
        "the device listens through the relay",
        &[&device],
        || async {
            let addresses = device.node.addresses().await.unwrap_or_default();
            !addresses.is_empty() && addresses.iter().all(|a| a.contains("/p2p-circuit"))
        },
    )
    .await;
    device
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_devices_nobody_can_dial_pair_and_sync_through_a_relay() {
    let relay = device_with(NetworkOptions {
        relay_server: true,
        ..NetworkOptions::loopback()
    })
    .await
    .0;
    let (a, b) = (behind(&relay).await, behind(&relay).await);
    let invitation = a.node.invite().await.unwrap();
    assert!(
        invitation
            .addresses
            .iter()
            .all(|address| address.contains(&format!("/p2p/{}/p2p-circuit", relay_peer(&relay)))),
        "the invitation names only relayed addresses: {:?}",
        invitation.addresses
    );
    a.node.cancel_invitation();

    pair(&a, &b).await;
    a.node.create_vault("Personal".into()).await.unwrap();
    a.write("Personal", "github", "hunter2").await;
    eventually("B has A's secret", &[&a, &b], || async {
        b.read("Personal", "github").await.as_deref() == Some("hunter2")
    })
    .await;
    b.write("Personal", "email", "correct staple").await;
    eventually("A has B's secret", &[&a, &b], || async {
        a.read("Personal", "email").await.as_deref() == Some("correct staple")
    })
    .await;
}

/// The relay's libp2p PeerId, as its addresses spell it.
fn relay_peer(relay: &Device) -> String {
    polykey_network::identity::peer_id(&relay.id())
        .unwrap()
        .to_string()
}
