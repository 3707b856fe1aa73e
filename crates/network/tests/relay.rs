//! A node nobody can dial is reachable through a relay.
//!
//! Three network namespaces, A, R and B, joined by two veth links, A–R
//! and R–B, with private 10.197.x.0/24 and 10.196.x.0/24 addresses that
//! exist only inside them. A and B have no route to each other; R relays
//! and both use it as their seed. B listens through R (its addresses gain
//! `/p2p-circuit`), A fails to dial B directly, then dials B's relayed
//! address and receives a 24 MiB answer through R. Each node is a helper
//! process of this same test binary run under `ip netns exec`; they meet
//! through files in a temporary directory. Needs root and `ip`.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use polykey_keys::{NodeId, RootKeypair};
use polykey_network::{Client, Config, Event, Multiaddr, Request, Response, WireObject};

const ROLE: &str = "POLYKEY_RELAY_HELPER";
const DIR: &str = "POLYKEY_RELAY_DIR";
const TAG: &str = "POLYKEY_RELAY_TAG";
/// The size of B's answer: a large sync page.
const ANSWER_BYTES: usize = 24 * 1024 * 1024;
/// The relay's port on both of its links.
const RELAY_PORT: u16 = 4001;
/// A's and B's own port.
const NODE_PORT: u16 = 4002;
/// How long any helper waits for a connection or an address.
const PATIENCE: Duration = Duration::from_secs(45);
/// How long the 24 MiB answer may take: a few seconds in a debug build on
/// an idle machine, several times that on a busy one.
const TRANSFER: Duration = Duration::from_secs(120);

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

/// A's link to R and B's link to R, as `(own address, relay address)`.
fn a_link(tag: u32) -> (String, String) {
    let net = tag % 250;
    (format!("10.197.{net}.1"), format!("10.197.{net}.2"))
}

fn b_link(tag: u32) -> (String, String) {
    let net = tag % 250;
    (format!("10.196.{net}.1"), format!("10.196.{net}.2"))
}

fn keys(role: &str) -> RootKeypair {
    let seed = match role {
        "a" => 1,
        "b" => 2,
        _ => 3,
    };
    RootKeypair::from_seed(&[seed; 32])
}

struct Namespaces {
    names: Vec<String>,
}

impl Namespaces {
    fn name(role: &str, tag: u32) -> String {
        format!("pkrelay-{role}-{tag}")
    }

    fn create(tag: u32) -> Self {
        let ns = Self {
            names: ["a", "r", "b"].map(|r| Self::name(r, tag)).to_vec(),
        };
        for name in &ns.names {
            ip(&["netns", "add", name]);
            ip(&["-n", name, "link", "set", "lo", "up"]);
        }
        let (a, r) = (Self::name("a", tag), Self::name("r", tag));
        let b = Self::name("b", tag);
        let (a_addr, ra_addr) = a_link(tag);
        let (b_addr, rb_addr) = b_link(tag);
        for (left, left_addr, left_dev, right_dev, right_addr) in [
            (
                &a,
                a_addr,
                format!("pkrA{tag}"),
                format!("pkrRa{tag}"),
                ra_addr,
            ),
            (
                &b,
                b_addr,
                format!("pkrB{tag}"),
                format!("pkrRb{tag}"),
                rb_addr,
            ),
        ] {
            ip(&[
                "link", "add", &left_dev, "type", "veth", "peer", "name", &right_dev,
            ]);
            for (name, dev, address) in [(left, &left_dev, left_addr), (&r, &right_dev, right_addr)]
            {
                ip(&["link", "set", dev, "netns", name]);
                ip(&[
                    "-n",
                    name,
                    "addr",
                    "add",
                    &format!("{address}/24"),
                    "dev",
                    dev,
                ]);
                ip(&["-n", name, "link", "set", dev, "up"]);
            }
        }
        // R does not route between its links (a new namespace starts with
        // forwarding off; say so anyway), so A and B meet only through the
        // relay protocol.
        let _ = Command::new("ip")
            .args([
                "netns",
                "exec",
                &r,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=0",
            ])
            .status();
        ns
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Deleting a namespace removes its ends of the veth pairs, and with
        // them the other ends.
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// The helper processes, killed if the test ends early.
struct Helpers(Vec<(String, Child)>);

impl Drop for Helpers {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(role: &str, tag: u32, dir: &Path) -> Child {
    let exe = std::env::current_exe().unwrap();
    Command::new("ip")
        .args(["netns", "exec", &Namespaces::name(role, tag)])
        .arg(&exe)
        .args(["--exact", "relay_helper", "--ignored", "--nocapture"])
        .env(ROLE, role)
        .env(TAG, tag.to_string())
        .env(DIR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_file(path: &Path, deadline: Instant) -> Option<String> {
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(path) {
            if !text.is_empty() {
                return Some(text);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn a_node_nobody_can_dial_is_reached_through_a_relay_in_three_namespaces() {
    let started = Instant::now();
    let tag = std::process::id() % 10_000;
    let _namespaces = Namespaces::create(tag);
    let dir = tempfile::tempdir().unwrap();
    let mut helpers = Helpers(Vec::new());
    helpers.0.push(("r".into(), spawn("r", tag, dir.path())));
    let deadline = Instant::now() + PATIENCE * 2 + TRANSFER;
    assert!(
        wait_for_file(&dir.path().join("r.ready"), deadline).is_some(),
        "the relay did not start"
    );
    for role in ["b", "a"] {
        helpers.0.push((role.into(), spawn(role, tag, dir.path())));
    }
    // A ends the run by writing `done`; then everyone stops.
    let finished = wait_for_file(&dir.path().join("done"), deadline).is_some();
    let mut outputs = String::new();
    for (role, mut child) in std::mem::take(&mut helpers.0) {
        let stop = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() && Instant::now() < stop {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        outputs += &format!(
            "--- {role}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(finished, "A did not finish:\n{outputs}");
    for line in [
        "b listens through the relay",
        "a cannot dial b directly",
        "a got 25165824 bytes from b through the relay",
    ] {
        assert!(outputs.contains(line), "missing `{line}`:\n{outputs}");
    }
    println!("{outputs}\nwhole test: {:?}", started.elapsed());
}

fn seed_config(tag: u32, role: &str) -> Config {
    let relay = keys("r").node_id();
    let (_, relay_ip) = if role == "a" {
        a_link(tag)
    } else {
        b_link(tag)
    };
    let address: Multiaddr = format!("/ip4/{relay_ip}/tcp/{RELAY_PORT}").parse().unwrap();
    Config {
        mdns: false,
        seeds: vec![(relay, address)],
        request_timeout: TRANSFER,
        ..Config::default()
    }
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn circuit_address(client: &Client) -> Option<Multiaddr> {
    let addresses = client.addresses().await.ok()?;
    addresses
        .into_iter()
        .find(|a| a.to_string().contains("/p2p-circuit"))
}

/// Answer every request with one object of [`ANSWER_BYTES`].
fn serve_large(client: Client, mut events: tokio::sync::mpsc::Receiver<Event>) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let Event::InboundRequest { responder, .. } = event {
                let object = WireObject {
                    base: None,
                    part: None,
                    id: "large".into(),
                    kind: 1,
                    data: vec![0x5a; ANSWER_BYTES],
                };
                let answer = Response::Objects {
                    objects: vec![object],
                    total: 1,
                };
                let _ = client.respond(responder, answer).await;
            }
        }
    });
}

async fn run_relay(tag: u32, dir: PathBuf) {
    let config = Config {
        mdns: false,
        relay_server: true,
        ..Config::default()
    };
    let (client, mut events, event_loop) = polykey_network::new(&keys("r"), config).unwrap();
    tokio::spawn(event_loop.run());
    for (_, own) in [a_link(tag), b_link(tag)] {
        let address = format!("/ip4/{own}/tcp/{RELAY_PORT}").parse().unwrap();
        client.listen(address).await.unwrap();
    }
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    std::fs::write(dir.join("r.ready"), "ready").unwrap();
    println!("r relays at {:?}", client.addresses().await.unwrap());
    wait_for_done(&dir).await;
}

async fn wait_for_done(dir: &Path) {
    let deadline = tokio::time::Instant::now() + PATIENCE * 2 + TRANSFER;
    while !dir.join("done").exists() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run_b(tag: u32, dir: PathBuf) {
    let (client, events, event_loop) =
        polykey_network::new(&keys("b"), seed_config(tag, "b")).unwrap();
    tokio::spawn(event_loop.run());
    let (own, _) = b_link(tag);
    let address = format!("/ip4/{own}/tcp/{NODE_PORT}").parse().unwrap();
    client.listen(address).await.unwrap();
    serve_large(client.clone(), events);
    wait_until("b listens through the relay", || async {
        circuit_address(&client).await.is_some()
    })
    .await;
    let circuit = circuit_address(&client).await.unwrap();
    println!("b listens through the relay: {circuit}");
    std::fs::write(dir.join("b.circuit"), circuit.to_string()).unwrap();
    wait_for_done(&dir).await;
}

async fn run_a(tag: u32, dir: PathBuf) {
    let relay = keys("r").node_id();
    let b: NodeId = keys("b").node_id();
    let (client, events, event_loop) =
        polykey_network::new(&keys("a"), seed_config(tag, "a")).unwrap();
    tokio::spawn(event_loop.run());
    let (own, _) = a_link(tag);
    let address = format!("/ip4/{own}/tcp/{NODE_PORT}").parse().unwrap();
    client.listen(address).await.unwrap();
    serve_large(client.clone(), events);
    let done = || std::fs::write(dir.join("done"), "done").unwrap();

    // B's own address is no use from here: there is no route.
    let (b_ip, _) = b_link(tag);
    let direct: Multiaddr = format!("/ip4/{b_ip}/tcp/{NODE_PORT}").parse().unwrap();
    match tokio::time::timeout(Duration::from_secs(10), client.dial(b, direct)).await {
        Ok(Ok(())) => {
            done();
            panic!("a dialled b directly: the namespaces leak");
        }
        _ => println!("a cannot dial b directly"),
    }

    wait_until("a is connected to the relay", || async {
        client.connected().await.unwrap().contains(&relay)
    })
    .await;
    let deadline = Instant::now() + PATIENCE;
    let Some(circuit) = wait_for_file(&dir.join("b.circuit"), deadline) else {
        done();
        panic!("b never listened through the relay");
    };
    let circuit: Multiaddr = circuit.parse().unwrap();
    let start = Instant::now();
    let dialled = tokio::time::timeout(PATIENCE, client.dial(b, circuit.clone())).await;
    if !matches!(dialled, Ok(Ok(()))) {
        done();
        panic!("a could not dial b at {circuit}: {dialled:?}");
    }
    println!("a dialled b through the relay in {:?}", start.elapsed());
    let start = Instant::now();
    let answer = tokio::time::timeout(TRANSFER, client.request(b, Request::Sigchain)).await;
    let took = start.elapsed();
    done();
    match answer {
        Ok(Ok(Response::Objects { objects, .. })) => {
            let bytes: usize = objects.iter().map(|o| o.data.len()).sum();
            assert!(objects.iter().all(|o| o.data.iter().all(|b| *b == 0x5a)));
            println!("a got {bytes} bytes from b through the relay in {took:?}");
        }
        other => panic!("a got no answer from b: {other:?}"),
    }
}

/// One node of the namespace test (run by it, never on its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a helper process of the namespace test"]
async fn relay_helper() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let tag: u32 = std::env::var(TAG).unwrap().parse().unwrap();
    let dir = PathBuf::from(std::env::var(DIR).unwrap());
    match role.as_str() {
        "r" => run_relay(tag, dir).await,
        "b" => run_b(tag, dir).await,
        _ => run_a(tag, dir).await,
    }
}
