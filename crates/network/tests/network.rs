//! Real libp2p swarms on 127.0.0.1: they connect as the NodeIds they claim,
//! carry Polykey's requests both ways over TCP and QUIC, refuse an address
//! that answers as another node and a request over the size bound, and find
//! each other through a seed node's DHT.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use polykey_gestalts::pairing::PairingMessage;
use polykey_keys::{NodeId, RootKeypair};
use polykey_network::{Client, Config, Event, Multiaddr, Request, Response};
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

struct Peer {
    id: NodeId,
    client: Client,
    events: mpsc::Receiver<Event>,
}

fn config() -> Config {
    Config {
        mdns: false,
        request_timeout: Duration::from_secs(10),
        ..Config::default()
    }
}

fn peer(seed: u8, config: Config) -> Peer {
    let keys = RootKeypair::from_seed(&[seed; 32]);
    let (client, events, event_loop) = polykey_network::new(&keys, config).unwrap();
    tokio::spawn(event_loop.run());
    Peer {
        id: keys.node_id(),
        client,
        events,
    }
}

async fn listen(peer: &Peer, address: &str) -> Multiaddr {
    timeout(WAIT, peer.client.listen(address.parse().unwrap()))
        .await
        .unwrap()
        .unwrap()
}

/// Answer every sigchain request with an empty chain; report who asked.
fn serve(mut peer: Peer) -> (Client, mpsc::Receiver<NodeId>) {
    let (asked_tx, asked) = mpsc::channel(16);
    let client = peer.client.clone();
    tokio::spawn(async move {
        while let Some(event) = peer.events.recv().await {
            if let Event::InboundRequest {
                peer: from,
                request,
                responder,
            } = event
            {
                let response = match request {
                    Request::Sigchain => Response::Sigchain(Vec::new()),
                    _ => Response::Refused("not here".into()),
                };
                let _ = asked_tx.send(from).await;
                let _ = peer.client.respond(responder, response).await;
            }
        }
    });
    (client, asked)
}

async fn round_trip(transport: &str) {
    let a = peer(1, config());
    let b = peer(2, config());
    let address = listen(&a, transport).await;
    let (a_id, b_id) = (a.id, b.id);
    let (_a_client, mut asked) = serve(a);

    timeout(WAIT, b.client.dial(a_id, address))
        .await
        .unwrap()
        .unwrap();
    let answer = timeout(WAIT, b.client.request(a_id, Request::Sigchain))
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(answer, Response::Sigchain(ref c) if c.is_empty()),
        "{answer:?}"
    );
    // The responder saw the requester as its NodeId, authenticated by noise.
    assert_eq!(asked.recv().await.unwrap(), b_id);
    assert_eq!(b.client.connected().await.unwrap(), vec![a_id]);
}

#[tokio::test]
async fn two_nodes_talk_over_tcp_as_their_node_ids() {
    round_trip("/ip4/127.0.0.1/tcp/0").await;
}

#[tokio::test]
async fn two_nodes_talk_over_quic() {
    round_trip("/ip4/127.0.0.1/udp/0/quic-v1").await;
}

#[tokio::test]
async fn an_address_answering_as_another_node_is_refused() {
    let a = peer(1, config());
    let b = peer(2, config());
    let impostor = RootKeypair::from_seed(&[9; 32]).node_id();
    let address = listen(&a, "/ip4/127.0.0.1/tcp/0").await;
    let err = timeout(WAIT, b.client.dial(impostor, address))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("cannot reach"), "{err}");
    assert!(b.client.connected().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_oversized_request_never_reaches_the_node() {
    let a = peer(1, config());
    let b = peer(2, config());
    let address = listen(&a, "/ip4/127.0.0.1/tcp/0").await;
    let a_id = a.id;
    let (_a_client, mut asked) = serve(a);
    timeout(WAIT, b.client.dial(a_id, address))
        .await
        .unwrap()
        .unwrap();
    let huge = Request::Pairing(PairingMessage::Hello {
        joiner: b.id,
        pake: vec![7; 2 * 1024 * 1024],
        secret: None,
    });
    let err = timeout(WAIT, b.client.request(a_id, huge))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("request"), "{err}");
    assert!(asked.try_recv().is_err(), "the node never saw it");
    // The connection still serves well-formed requests.
    let answer = timeout(WAIT, b.client.request(a_id, Request::Sigchain))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(answer, Response::Sigchain(_)));
}

#[tokio::test]
async fn nodes_find_each_other_through_a_seed() {
    let seed = peer(10, config());
    let seed_address = listen(&seed, "/ip4/127.0.0.1/tcp/0").await;
    let seeds = vec![(seed.id, seed_address)];
    let with_seed = || Config {
        seeds: seeds.clone(),
        ..config()
    };
    let b = peer(11, with_seed());
    let b_address = listen(&b, "/ip4/127.0.0.1/tcp/0").await;
    let c = peer(12, with_seed());
    listen(&c, "/ip4/127.0.0.1/tcp/0").await;

    // b announces itself to the seed by connecting; c then looks b up.
    timeout(WAIT, b.client.dial(seed.id, seeds[0].1.clone()))
        .await
        .unwrap()
        .unwrap();
    let mut found = Vec::new();
    for _ in 0..40 {
        found = timeout(WAIT, c.client.find(b.id)).await.unwrap().unwrap();
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(found.contains(&b_address), "{found:?} lacks {b_address}");
    timeout(WAIT, c.client.dial(b.id, b_address))
        .await
        .unwrap()
        .unwrap();
    let _keep = seed;
}

#[tokio::test]
async fn a_stranger_learns_no_hidden_peer_from_the_dht() {
    let a = peer(1, config());
    let a_address = listen(&a, "/ip4/127.0.0.1/tcp/0").await;
    let b = peer(2, config());
    listen(&b, "/ip4/127.0.0.1/tcp/0").await;
    // B is one of A's devices, and connected to it; A hides it.
    a.client.hide(vec![b.id]).await.unwrap();
    timeout(WAIT, b.client.dial(a.id, a_address.clone()))
        .await
        .unwrap()
        .unwrap();
    let stranger = peer(3, config());
    timeout(WAIT, stranger.client.dial(a.id, a_address))
        .await
        .unwrap()
        .unwrap();
    // Identify tells each side's DHT about the other.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Asking A for peers near any key, or near B itself, names no device.
    let anyone = RootKeypair::from_seed(&[7; 32]).node_id();
    let _ = timeout(WAIT, stranger.client.find(anyone)).await;
    let found = timeout(WAIT, stranger.client.find(b.id))
        .await
        .unwrap()
        .unwrap();
    assert!(found.is_empty(), "A told a stranger where B is: {found:?}");
    let connected = stranger.client.connected().await.unwrap();
    assert!(
        !connected.contains(&b.id),
        "the lookup reached B: {connected:?}"
    );
}

/// Two nodes that dial each other at the same moment (as two devices do a
/// second after losing their connection) both connect. Dialled from their
/// listening ports, the two dials made one TCP connection that both took
/// as their own (a simultaneous open), and both handshakes failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_dialling_each_other_at_once_both_connect() {
    let mut failed = 0;
    // The window is a few microseconds: 14 to 40 rounds in 400 failed.
    for round in 0..400u16 {
        let seed = u8::try_from(round % 120).unwrap() * 2;
        let a = peer(seed, config());
        let b = peer(seed + 1, config());
        let a_address = listen(&a, "/ip4/127.0.0.1/tcp/0").await;
        let b_address = listen(&b, "/ip4/127.0.0.1/tcp/0").await;
        let (from_a, from_b) = tokio::join!(
            timeout(WAIT, a.client.dial(b.id, b_address)),
            timeout(WAIT, b.client.dial(a.id, a_address)),
        );
        if !matches!((&from_a, &from_b), (Ok(Ok(())), Ok(Ok(())))) {
            failed += 1;
            eprintln!("round {round}: A's dial {from_a:?}, B's dial {from_b:?}");
        }
    }
    assert_eq!(failed, 0, "dials at once failed in {failed} of 400 rounds");
}

/// A TCP relay on 127.0.0.1 that delivers what it carries `delay` late (a
/// slow link's queue), and whose connections can be cut off without a
/// word: from then on what they carry is swallowed, and they stay open
/// (a peer asleep, or its network gone). Connections made later flow.
struct Relay {
    port: u16,
    made: Arc<AtomicU64>,
    cut_below: Arc<AtomicU64>,
}

impl Relay {
    async fn to(port: u16, delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay {
            port: listener.local_addr().unwrap().port(),
            made: Arc::new(AtomicU64::new(0)),
            cut_below: Arc::new(AtomicU64::new(0)),
        };
        let (made, cut_below) = (relay.made.clone(), relay.cut_below.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                    continue;
                };
                let id = made.fetch_add(1, Ordering::SeqCst);
                let (from_in, to_in) = inbound.into_split();
                let (from_out, to_out) = outbound.into_split();
                tokio::spawn(pipe(from_in, to_out, id, cut_below.clone(), delay));
                tokio::spawn(pipe(from_out, to_in, id, cut_below.clone(), delay));
            }
        });
        relay
    }

    fn cut_all(&self) {
        self.cut_below
            .store(self.made.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

async fn pipe(
    from: tokio::net::tcp::OwnedReadHalf,
    to: tokio::net::tcp::OwnedWriteHalf,
    id: u64,
    cut_below: Arc<AtomicU64>,
    delay: Duration,
) {
    use std::io::ErrorKind::WouldBlock;
    let (late_tx, mut late) = mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    tokio::spawn(async move {
        while let Some((due, bytes)) = late.recv().await {
            tokio::time::sleep_until(due).await;
            let mut sent = 0;
            while sent < bytes.len() {
                if to.writable().await.is_err() {
                    return;
                }
                match to.try_write(&bytes[sent..]) {
                    Ok(k) => sent += k,
                    Err(e) if e.kind() == WouldBlock => continue,
                    Err(_) => return,
                }
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if from.readable().await.is_err() {
            return;
        }
        let n = match from.try_read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == WouldBlock => continue,
            Err(_) => return,
        };
        if id < cut_below.load(Ordering::SeqCst) {
            continue;
        }
        let due = tokio::time::Instant::now() + delay;
        if late_tx.send((due, buf[..n].to_vec())).is_err() {
            return;
        }
    }
}

/// A serving node A and a node B connected to it through a [`Relay`]
/// that delivers `delay` late, both pinging every `ping_interval`: B, A's
/// id, the relay and the address through it.
async fn through_a_relay(
    ping_interval: Duration,
    delay: Duration,
) -> (Peer, NodeId, Relay, Multiaddr) {
    let quick = Config {
        ping_interval,
        ..config()
    };
    let a = peer(1, quick.clone());
    let b = peer(2, quick);
    let address = listen(&a, "/ip4/127.0.0.1/tcp/0").await;
    let port = address
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap();
    let a_id = a.id;
    // Devices of one gestalt: a stranger holds only a few streams at once,
    // fewer than a slow link keeps under way.
    a.client.trust(vec![b.id]).await.unwrap();
    let (_a_client, mut asked) = serve(a);
    tokio::spawn(async move { while asked.recv().await.is_some() {} });
    let relay = Relay::to(port, delay).await;
    let through: Multiaddr = format!("/ip4/127.0.0.1/tcp/{}", relay.port)
        .parse()
        .unwrap();
    timeout(WAIT, b.client.dial(a_id, through.clone()))
        .await
        .unwrap()
        .unwrap();
    (b, a_id, relay, through)
}

/// A peer gone without a word leaves no connection that looks alive: the
/// connection is closed once pings go unanswered, the peer is reported
/// gone, and the next request dials afresh and is answered at once. Before,
/// the connection stayed open until TCP gave up (a quarter of an hour),
/// the device showed online, and requests on it waited their whole timeout.
#[tokio::test]
async fn a_connection_to_a_peer_gone_without_a_word_is_closed() {
    let (mut b, a_id, relay, through) =
        through_a_relay(Duration::from_millis(500), Duration::ZERO).await;
    timeout(WAIT, b.client.request(a_id, Request::Sigchain))
        .await
        .unwrap()
        .unwrap();

    relay.cut_all();
    // An unanswered ping, then 10 s for a new stream to open.
    let gone = timeout(Duration::from_secs(20), async {
        while let Some(event) = b.events.recv().await {
            if matches!(event, Event::Disconnected { peer } if peer == a_id) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(gone, Ok(true), "the silent connection was closed");
    assert!(b.client.connected().await.unwrap().is_empty());
    timeout(Duration::from_secs(5), async {
        b.client.dial(a_id, through).await.unwrap();
        b.client.request(a_id, Request::Sigchain).await.unwrap()
    })
    .await
    .expect("answered at once over a new connection");
}

/// A connection carrying answers is not closed for pings that go
/// unanswered in time behind them (a slow link's queue): here every ping
/// times out (in a second, on a link a second and a half late each way),
/// yet answers arrive all the while, and the connection stays.
/// Closed, every request on it failed and the sync started over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_busy_on_a_slow_link_is_not_closed_for_late_pings() {
    let (mut b, a_id, _relay, _) =
        through_a_relay(Duration::from_secs(1), Duration::from_millis(1500)).await;
    // Requests all the while, one setting out every 200 ms: answers come
    // back every 200 ms, each 3 s after it set out.
    let asking = b.client.clone();
    let answered = tokio::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..60 {
            let client = asking.clone();
            tasks.push(tokio::spawn(async move {
                client.request(a_id, Request::Sigchain).await.is_ok()
            }));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut answered = 0;
        for task in tasks {
            answered += usize::from(task.await.unwrap());
        }
        answered
    });
    let closed = timeout(Duration::from_secs(15), async {
        while let Some(event) = b.events.recv().await {
            if matches!(event, Event::Disconnected { peer } if peer == a_id) {
                return;
            }
        }
    })
    .await;
    assert!(closed.is_err(), "the busy connection was closed");
    assert_eq!(answered.await.unwrap(), 60, "every request was answered");
}
