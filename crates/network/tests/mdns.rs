//! Local discovery: two nodes find each other by mDNS with no address given.
//!
//! libp2p's mDNS ignores loopback interfaces, so the test builds a pair of
//! network namespaces joined by a veth link (private 10.199.x.0/24 addresses
//! that exist only inside them) and runs one node in each, as helper
//! processes of this same test binary. Needs root and `ip` (as CI has).
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use polykey_keys::RootKeypair;
use polykey_network::{Config, Event};

const ROLE: &str = "POLYKEY_MDNS_HELPER";

struct Namespaces {
    names: [String; 2],
}

fn ip(args: &[&str]) {
    let status = Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("`ip` is needed for the namespace test: {e}"));
    assert!(
        status.success(),
        "ip {} failed (root is needed)",
        args.join(" ")
    );
}

impl Namespaces {
    fn create(tag: u32) -> Self {
        let names = [format!("pkmdns-a-{tag}"), format!("pkmdns-b-{tag}")];
        let veth = [format!("pkva{tag}"), format!("pkvb{tag}")];
        let ns = Self { names };
        for name in &ns.names {
            ip(&["netns", "add", name]);
        }
        ip(&[
            "link", "add", &veth[0], "type", "veth", "peer", "name", &veth[1],
        ]);
        for (i, (name, dev)) in ns.names.iter().zip(&veth).enumerate() {
            let address = format!("10.199.{}.{}/24", tag % 250, i + 1);
            ip(&["link", "set", dev, "netns", name]);
            ip(&["-n", name, "addr", "add", &address, "dev", dev]);
            ip(&["-n", name, "link", "set", dev, "up"]);
            ip(&["-n", name, "link", "set", "lo", "up"]);
        }
        ns
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Deleting a namespace removes its end of the veth pair, and with it
        // the other end.
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

#[test]
fn two_nodes_find_each_other_by_mdns_in_a_pair_of_network_namespaces() {
    let tag = std::process::id() % 10_000;
    let namespaces = Namespaces::create(tag);
    let exe = std::env::current_exe().unwrap();
    let ids = [1u8, 2].map(|seed| RootKeypair::from_seed(&[seed; 32]).node_id().to_string());
    let mut children = Vec::new();
    for (i, name) in namespaces.names.iter().enumerate() {
        let child = Command::new("ip")
            .args(["netns", "exec", name])
            .arg(&exe)
            .args(["--exact", "mdns_helper", "--ignored", "--nocapture"])
            .env(ROLE, format!("{}", i + 1))
            .env(
                "POLYKEY_MDNS_LISTEN",
                format!("/ip4/10.199.{}.{}/tcp/0", tag % 250, i + 1),
            )
            .env("POLYKEY_MDNS_EXPECT", &ids[1 - i])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        children.push(child);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut outputs = Vec::new();
    for mut child in children {
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let output = child.wait_with_output().unwrap();
        outputs.push(
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        );
    }
    for (i, output) in outputs.iter().enumerate() {
        assert!(
            output.contains(&format!("discovered and connected {}", ids[1 - i])),
            "node {} did not find the other by mDNS:\n{output}",
            i + 1
        );
    }
}

/// One node of the namespace test (run by it, never on its own).
#[tokio::test]
#[ignore = "a helper process of the namespace test"]
async fn mdns_helper() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let seed: u8 = role.parse().unwrap();
    let expect = std::env::var("POLYKEY_MDNS_EXPECT").unwrap();
    let listen = std::env::var("POLYKEY_MDNS_LISTEN").unwrap();
    let keys = RootKeypair::from_seed(&[seed; 32]);
    let config = Config {
        mdns: true,
        ..Config::default()
    };
    let (client, mut events, event_loop) = polykey_network::new(&keys, config).unwrap();
    tokio::spawn(event_loop.run());
    client.listen(listen.parse().unwrap()).await.unwrap();
    let found = tokio::time::timeout(Duration::from_secs(40), async {
        while let Some(event) = events.recv().await {
            if let Event::PeerDiscovered { peer, address } = event {
                if peer.to_string() == expect {
                    // No address was given: mDNS supplied it. Both sides
                    // dial at once; a handshake that loses that race (its
                    // connection closed for the other one) is tried again.
                    for _ in 0..5 {
                        match client.dial(peer, address.clone()).await {
                            Ok(()) => return true,
                            Err(e) => eprintln!("dial failed, trying again: {e:?}"),
                        }
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    return false;
                }
            }
        }
        false
    })
    .await;
    if found == Ok(true) {
        println!("discovered and connected {expect}");
    }
    // Stay a moment so the other side can finish too.
    tokio::time::sleep(Duration::from_secs(3)).await;
}
