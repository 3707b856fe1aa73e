//! A bare network peer driven by a test, not a Polykey node ("rogue"): a
//! stranger, or a paired device gone bad, that says exactly what the test
//! makes it say. `hostile` and `attacks` give it their own ways to answer.

use std::time::Duration;

use polykey_db::Db;
use polykey_gestalts::pairing::{Joiner, PairingMessage};
use polykey_gestalts::{GestaltGraph, Sigchain};
use polykey_keys::{NodeId, RootKeypair};
use polykey_network::{Client, Config, Event, Request, Response};
use tempfile::TempDir;

use crate::Device;

pub struct Rogue {
    pub keys: RootKeypair,
    pub client: Client,
    pub events: Option<tokio::sync::mpsc::Receiver<Event>>,
    pub db: Db,
    /// Where it listens (loopback).
    pub address: polykey_network::Multiaddr,
    _dir: TempDir,
}

/// A rogue with the key of `seed`, listening on loopback.
pub async fn rogue(seed: u8) -> Rogue {
    rogue_with(seed, |config| config).await
}

/// A rogue as [`rogue`] makes it, its network configured by `configure`.
pub async fn rogue_with(seed: u8, configure: impl FnOnce(Config) -> Config) -> Rogue {
    let keys = RootKeypair::from_seed(&[seed; 32]);
    let config = configure(Config {
        mdns: false,
        request_timeout: Duration::from_secs(40),
        ..Config::default()
    });
    let (client, events, event_loop) = polykey_network::new(&keys, config).unwrap();
    tokio::spawn(event_loop.run());
    let address = client
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(&dir.path().join("db.redb"), &keys).unwrap();
    Rogue {
        keys,
        client,
        events: Some(events),
        db,
        address,
        _dir: dir,
    }
}

impl Rogue {
    pub fn id(&self) -> NodeId {
        self.keys.node_id()
    }

    /// The rogue's own sigchain.
    pub fn chain(&self) -> Sigchain<'_> {
        Sigchain::new(&self.db, self.id())
    }
}

/// Connect the rogue to `target`.
pub async fn dial(rogue: &Rogue, target: &Device) {
    let address = target.node.addresses().await.unwrap()[0].parse().unwrap();
    rogue.client.dial(target.id(), address).await.unwrap();
}

/// `target`'s answer to `rogue`'s `request`, connecting again first: a
/// device removed has its connections closed, and one may still be
/// closing as it asks.
pub async fn ask_removed(rogue: &Rogue, target: &Device, request: Request) -> Response {
    let address: polykey_network::Multiaddr =
        target.node.addresses().await.unwrap()[0].parse().unwrap();
    for _ in 0..50 {
        let _ = rogue.client.dial(target.id(), address.clone()).await;
        if let Ok(answer) = rogue.client.request(target.id(), request.clone()).await {
            return answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no answer in 5 s");
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Pair the rogue into `a`'s gestalt with a real invitation, by hand; the
/// test confirms the digits on A.
pub async fn rogue_pairs(rogue: &Rogue, a: &Device) {
    let invitation = a.node.invite().await.unwrap();
    dial(rogue, a).await;
    let ask = |message| async {
        match rogue
            .client
            .request(a.id(), Request::Pairing(message))
            .await
            .unwrap()
        {
            Response::Pairing(answer) => answer,
            other => panic!("{other:?}"),
        }
    };
    let me = rogue.id();
    let chain = rogue.chain();
    let (mut joiner, hello) = Joiner::start(a.id(), me, invitation.words(), invitation.secret());
    let challenge = ask(hello).await;
    let proof = joiner
        .on_challenge(challenge, &rogue.keys, &chain, now_secs())
        .unwrap();
    assert!(matches!(ask(proof.clone()).await, PairingMessage::Waiting));
    a.node.confirm_pairing(true).unwrap();
    let claims = ask(proof).await;
    let done = joiner
        .on_claims(claims, &rogue.keys, &chain, &GestaltGraph::new(&rogue.db))
        .unwrap();
    let answer = rogue
        .client
        .request(a.id(), Request::Pairing(done))
        .await
        .unwrap();
    assert!(matches!(answer, Response::Ok), "{answer:?}");
}
