//! Attacks on the trust code by a stolen paired device and by a stranger,
//! each played by a bare network peer ("rogue") against real nodes on
//! 127.0.0.1. A test marked `ignore = "ATTACK: ..."` shows a weakness of
//! today's code (it fails until the product is fixed); the others show an
//! attack defeated, from the start or by a fix since (c9a6564, dacbace,
//! 9519784: their doc says what the attack did before), and stay as
//! regression tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use polykey_gestalts::{ClaimType, SignedClaim};
use polykey_keys::{NodeId, RootKeypair};
use polykey_network::{ChainUpdate, Config, Event, Request, Response, VaultSummary, WireObject};
use polykey_vaults::kind_tag;

use crate::rogue::{ask_removed, dial, now_secs, rogue, rogue_pairs, rogue_with, Rogue};
use crate::{device, eventually, pair, Device};

/// The chain the rogue serves, changed by the test as the attack goes on.
type Served = Arc<Mutex<Vec<SignedClaim>>>;

impl Rogue {
    /// The rogue's own chain.
    pub(crate) fn chains(&self) -> Vec<SignedClaim> {
        self.chain().claims().unwrap()
    }

    /// Append a link to `other` (which countersigns) dated `at_ms`.
    pub(crate) fn link(&self, other: &RootKeypair, at_ms: u64) {
        let payload = self
            .chain()
            .next_payload(ClaimType::ClaimLinkNode, other.node_id(), at_ms)
            .unwrap();
        let mut claim = SignedClaim::issue(&payload, &self.keys).unwrap();
        claim.countersign(other).unwrap();
        self.chain().append(&claim).unwrap();
    }

    /// Append a revocation of `node`, dated `at_ms`.
    pub(crate) fn revoke(&self, node: NodeId, at_ms: u64) {
        let payload = self
            .chain()
            .next_payload(ClaimType::ClaimRevokeNode, node, at_ms)
            .unwrap();
        let claim = SignedClaim::issue(&payload, &self.keys).unwrap();
        self.chain().append(&claim).unwrap();
    }

    /// Answer as a quiet member would, with whatever chain `served` holds
    /// when asked.
    pub(crate) fn serve_chain(&mut self) -> Served {
        self.serve(|_| None)
    }

    /// [`Rogue::serve`] for other modules' tests.
    pub(crate) fn serve_chain_and(
        &mut self,
        extra: impl Fn(&Request) -> Option<Response> + Send + Sync + 'static,
    ) -> Served {
        self.serve(extra)
    }

    /// As [`Rogue::serve_chain`], but `extra` answers first where it will.
    fn serve(
        &mut self,
        extra: impl Fn(&Request) -> Option<Response> + Send + Sync + 'static,
    ) -> Served {
        let served: Served = Arc::new(Mutex::new(self.chains()));
        let chains = Arc::clone(&served);
        let mut events = self.events.take().unwrap();
        let client = self.client.clone();
        let me = self.id();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let Event::InboundRequest {
                    request, responder, ..
                } = event
                else {
                    continue;
                };
                if let Some(answer) = extra(&request) {
                    let _ = client.respond(responder, answer).await;
                    continue;
                }
                let answer = match request {
                    // The claims after what the asker holds, as a member
                    // answers.
                    Request::Chains { known } => {
                        let after = known.iter().find(|p| p.node == me).map_or(0, |p| p.seq);
                        let claims: Vec<SignedClaim> = chains
                            .lock()
                            .unwrap()
                            .iter()
                            .skip(after as usize)
                            .cloned()
                            .collect();
                        let updates = if claims.is_empty() {
                            Vec::new()
                        } else {
                            vec![ChainUpdate { node: me, claims }]
                        };
                        Response::Chains(updates)
                    }
                    Request::Vaults => Response::Vaults { vaults: Vec::new() },
                    Request::Deletions { .. } => Response::Deletions {
                        deletions: Vec::new(),
                        more: false,
                    },
                    _ => Response::Ok,
                };
                let _ = client.respond(responder, answer).await;
            }
        });
        served
    }
}

fn now_ms() -> u64 {
    now_secs() * 1000
}

/// A vault the rogue offers (summary and objects), once the test sets it.
type VaultSlot = Arc<Mutex<Option<(VaultSummary, Vec<WireObject>)>>>;

/// A, B paired; the rogue paired with A, and known to B through A; the
/// rogue serves its chain and whatever vault the test puts in the slot.
async fn gestalt_with_rogue(seed: u8) -> (Device, Device, Rogue, Served, VaultSlot) {
    let (a, b) = (device().await, device().await);
    pair(&a, &b).await;
    let mut rogue = rogue(seed).await;
    rogue_pairs(&rogue, &a).await;
    let slot: VaultSlot = Arc::new(Mutex::new(None));
    let offered = Arc::clone(&slot);
    let served = rogue.serve(move |request| {
        let offered = offered.lock().unwrap();
        let (summary, objects) = offered.as_ref()?;
        match request {
            Request::Vaults => Some(Response::Vaults {
                vaults: vec![summary.clone()],
            }),
            Request::Fetch { .. } => Some(Response::Objects {
                total: objects.len() as u32,
                objects: objects.clone(),
            }),
            _ => None,
        }
    });
    eventually("B learns the rogue through A", &[&a, &b], || async {
        let _ = b.node.sync_now(a.id()).await;
        b.device_ids().await.contains(&rogue.id())
    })
    .await;
    (a, b, rogue, served, slot)
}

/// A, B and a thief (see [`gestalt_with_rogue`]); the thief links a new
/// key X dated five minutes ahead (within the allowed clock skew), which A
/// takes from it and B from A.
async fn rogue_links_ahead(seed: u8) -> (Device, Device, Rogue, RootKeypair) {
    let (a, b, rogue, served, _) = gestalt_with_rogue(seed).await;
    let x = RootKeypair::from_seed(&[seed.wrapping_add(1); 32]);
    rogue.link(&x, now_ms() + 300_000);
    *served.lock().unwrap() = rogue.chains();
    a.node.sync_now(rogue.id()).await.unwrap();
    eventually("B adopts the rogue's new device", &[&a, &b], || async {
        let _ = b.node.sync_now(a.id()).await;
        b.device_ids().await.contains(&x.node_id())
    })
    .await;
    (a, b, rogue, x)
}

/// A stolen device dates a link to a fresh key a few minutes ahead (within
/// the allowed clock skew). A revocation of the thief made before that
/// date is skipped by every other device (`adopt`: "a newer link wins"),
/// and never looked at again: the thief stays a device of B for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thief_dating_a_link_ahead_is_not_revoked_on_other_devices() {
    let (a, b, rogue, x) = rogue_links_ahead(101).await;

    // The user sees the notice and removes the thief (and its device) on A.
    a.node.revoke_device(rogue.id()).await.unwrap();
    a.node.revoke_device(x.node_id()).await.unwrap();
    assert!(!a.device_ids().await.contains(&rogue.id()));
    b.node.sync_now(a.id()).await.unwrap();
    let on_b = b.device_ids().await;
    assert!(
        !on_b.contains(&rogue.id()) && !on_b.contains(&x.node_id()),
        "B keeps the revoked thief"
    );
    let answer = ask_removed(&rogue, &b, Request::Vaults).await;
    assert!(matches!(answer, Response::Refused(_)), "{answer:?}");
}

/// The thief links X dated five minutes ahead; the user removes X alone on
/// A (as its notice says). Dated now, the removal was older than the link,
/// and B, where the thief still stands, dropped it as undone by a newer
/// pairing: X stayed B's device. The removal is dated after every link of
/// X that A holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_device_linked_ahead_and_removed_by_the_user_is_out_everywhere() {
    let (a, b, _rogue, x) = rogue_links_ahead(119).await;
    a.node.revoke_device(x.node_id()).await.unwrap();
    eventually("B drops X", &[&a, &b], || async {
        let _ = b.node.sync_now(a.id()).await;
        !b.device_ids().await.contains(&x.node_id())
    })
    .await;
}

/// A device the thief added, removed by the user, comes back when the
/// thief links it again: the new link deletes the revocation, and since the
/// old link is still stored no notice is raised and no notification sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_device_does_not_come_back_unseen() {
    let a = device().await;
    let mut rogue = rogue(103).await;
    rogue_pairs(&rogue, &a).await;
    let served = rogue.serve_chain();
    let x = RootKeypair::from_seed(&[104; 32]);
    rogue.link(&x, now_ms());
    *served.lock().unwrap() = rogue.chains();
    a.node.sync_now(rogue.id()).await.unwrap();
    assert!(a.device_ids().await.contains(&x.node_id()));
    assert_eq!(a.node.device_notices().await.unwrap().len(), 1);

    a.node.revoke_device(x.node_id()).await.unwrap();
    assert!(!a.device_ids().await.contains(&x.node_id()));
    let told_before = a.node.read_notifications(false).await.unwrap().len();

    // The thief links X again, a few seconds later.
    rogue.link(&x, now_ms() + 5_000);
    *served.lock().unwrap() = rogue.chains();
    a.node.sync_now(rogue.id()).await.unwrap();
    let back = a.device_ids().await.contains(&x.node_id());
    let noticed = a
        .node
        .device_notices()
        .await
        .unwrap()
        .iter()
        .any(|n| n.device == x.node_id());
    let told = a.node.read_notifications(false).await.unwrap().len() > told_before;
    assert!(
        !back || (noticed && told),
        "X is a device again (back: {back}) with no notice ({noticed}) or notification ({told})"
    );
}

/// A thief revokes an honest device B. A must tell the user, and once the
/// user revokes the thief on A, that revocation must reach B (before the
/// fix A refused B for good, so the thief stayed B's device).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thief_cannot_cut_a_device_off_from_its_revocation() {
    let (a, b, rogue, served, _) = gestalt_with_rogue(105).await;
    rogue.revoke(b.id(), now_ms());
    *served.lock().unwrap() = rogue.chains();
    a.node.sync_now(rogue.id()).await.unwrap();
    let revoked_b = !a.device_ids().await.contains(&b.id());
    let b_text = b.id().to_string();
    let told = a
        .node
        .read_notifications(false)
        .await
        .unwrap()
        .iter()
        .any(|n| n.text.contains(&b_text));
    // The user notices and removes the thief on A.
    a.node.revoke_device(rogue.id()).await.unwrap();
    eventually("B drops the thief", &[&a, &b], || async {
        let _ = b.node.sync_now(a.id()).await;
        !b.device_ids().await.contains(&rogue.id())
    })
    .await;
    assert!(!revoked_b || told, "A removed B without telling the user");
}

/// A stranger that dialled A asks A's DHT for peers near any key: A
/// answers with its devices, which the stranger's lookup then dials, so
/// it learns every device's NodeId and address.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stranger_learns_no_device_from_the_dht() {
    let (a, b) = (device().await, device().await);
    pair(&a, &b).await;
    eventually("A and B are connected", &[&a, &b], || async {
        a.node
            .devices()
            .await
            .unwrap()
            .iter()
            .any(|d| d.node_id == b.id() && d.online)
    })
    .await;
    let stranger = rogue(106).await;
    dial(&stranger, &a).await;
    // Identify tells the stranger's DHT about A.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let anyone = RootKeypair::from_seed(&[107; 32]).node_id();
    let _ = tokio::time::timeout(Duration::from_secs(10), stranger.client.find(anyone)).await;
    // Without knowing B's NodeId, the stranger is now connected to B.
    let connected = stranger.client.connected().await.unwrap();
    assert!(
        !connected.contains(&b.id()),
        "the lookup reached A's device B: {connected:?}"
    );
}

/// The empty tree: its id and its bytes.
fn empty_tree() -> (gix::ObjectId, Vec<u8>) {
    use gix::objs::WriteTo;
    let mut tree = Vec::new();
    gix::objs::Tree::empty().write_to(&mut tree).unwrap();
    let id = gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Tree, &tree).unwrap();
    (id, tree)
}

/// A commit by `author` on top of `parent` whose tree is empty (every
/// secret removed), dated `seconds`: (its id, the objects to send).
fn emptying_commit(author: &RootKeypair, parent: &str, seconds: i64) -> (String, Vec<WireObject>) {
    let (tree_id, tree) = empty_tree();
    let (id, commit) = emptying_commit_saying(author, parent, seconds, "Tidy up");
    let objects = vec![
        WireObject {
            base: None,
            part: None,
            id: tree_id.to_string(),
            kind: kind_tag(gix::objs::Kind::Tree),
            data: tree,
        },
        commit,
    ];
    (id, objects)
}

/// A thief removes every secret of a vault in a commit dated 40 days ago.
/// The secrets leave every device, and "Recently deleted" (which walks the
/// history newest first by commit time and stops at the first version
/// older than 30 days) shows none of them: the user never learns what to
/// restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_removed_in_a_backdated_commit_show_in_recently_deleted() {
    let a = device().await;
    let vault = a.node.create_vault("Personal".into()).await.unwrap();
    a.write("Personal", "github", "pw").await;
    let head = a.head("Personal").await.unwrap();
    let mut rogue = rogue(109).await;
    rogue_pairs(&rogue, &a).await;
    let forty_days_ago = now_secs() as i64 - 40 * 24 * 3600;
    let (new_head, objects) = emptying_commit(&rogue.keys, &head, forty_days_ago);
    let summary = VaultSummary {
        id: vault.id.to_string(),
        name: "Personal".into(),
        renamed_at: 0,
        head: new_head.clone(),
        access: None,
    };
    rogue.serve(move |request| match request {
        Request::Vaults => Some(Response::Vaults {
            vaults: vec![summary.clone()],
        }),
        Request::Fetch { .. } => Some(Response::Objects {
            total: objects.len() as u32,
            objects: objects.clone(),
        }),
        _ => None,
    });
    a.node.sync_now(rogue.id()).await.unwrap();
    assert_eq!(
        a.head("Personal").await.unwrap(),
        new_head,
        "A took the commit"
    );
    assert!(a.secrets("Personal").await.is_empty());
    let deleted = a.node.deleted_secrets_dto().await.unwrap();
    assert!(
        deleted.iter().any(|d| d.path == "github"),
        "the removed secret is not in Recently deleted: {deleted:?}"
    );
}

/// Revoking a device must keep its earlier work ("its earlier commits kept
/// in history"), but a device that did not hold those commits yet refuses
/// any history containing them: a device paired after the revocation can
/// never receive a vault the removed device ever edited, and a device that
/// was offline can never sync it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_vault_the_revoked_device_edited_still_reaches_a_new_device() {
    let (a, c) = (device().await, device().await);
    pair(&a, &c).await;
    a.node.create_vault("Personal".into()).await.unwrap();
    eventually("C has the vault", &[&a, &c], || async {
        c.vault_names().await == ["Personal"]
    })
    .await;
    c.write("Personal", "from-c", "1").await;
    eventually("A has C's edit", &[&a, &c], || async {
        a.read("Personal", "from-c").await.is_some()
    })
    .await;
    a.node.revoke_device(c.id()).await.unwrap();
    a.write("Personal", "from-a", "2").await;

    let d = device().await;
    pair(&a, &d).await;
    eventually("D receives the vault", &[&a, &d], || async {
        d.read("Personal", "from-a").await.is_some()
    })
    .await;
    assert_eq!(d.read("Personal", "from-c").await.as_deref(), Some("1"));
}

/// `rogue` asks `target` for its vaults 200 at a time, for `lasting`.
fn flood(rogue: &Rogue, target: NodeId, lasting: Duration) -> tokio::task::JoinHandle<()> {
    let client = rogue.client.clone();
    let until = std::time::Instant::now() + lasting;
    tokio::spawn(async move {
        while std::time::Instant::now() < until {
            let asks = (0..200).map(|_| client.request(target, Request::Vaults));
            futures::future::join_all(asks).await;
        }
    })
}

/// Defeated: a thief still paired floods A with requests (200 at a time,
/// for 8 s, within its budget as a device); B's edit still reaches A
/// within 5 s (A pulls from B on its own connection, slots or not).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_members_flood_does_not_stop_another_device_syncing() {
    let (a, b) = (device().await, device().await);
    pair(&a, &b).await;
    a.node.create_vault("Personal".into()).await.unwrap();
    eventually("B has the vault", &[&a, &b], || async {
        b.vault_names().await == ["Personal"]
    })
    .await;
    let mut rogue = rogue(108).await;
    rogue_pairs(&rogue, &a).await;
    rogue.serve_chain();
    let flood = flood(&rogue, a.id(), Duration::from_secs(8));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    b.write("Personal", "github", "pw").await;
    let mut arrived = None;
    while started.elapsed() < Duration::from_secs(6) {
        if a.read("Personal", "github").await.is_some() {
            arrived = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    flood.await.unwrap();
    let arrived = arrived.expect("B's edit did not reach A within 6 s while a member flooded A");
    assert!(arrived < Duration::from_secs(5), "took {arrived:?}");
}

/// A device flooding A (a thief not yet removed, 200 requests at a time)
/// took all of A's sixteen slots for devices, so another device's requests,
/// its change notices among them, were answered "busy" (and a lost notice
/// left A behind until the next resync). Now one device holds at most half
/// the slots and a change notice takes none.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_members_flood_leaves_slots_for_another_device() {
    let a = device().await;
    let flooder = rogue(130).await;
    rogue_pairs(&flooder, &a).await;
    let other = rogue(131).await;
    rogue_pairs(&other, &a).await;
    let flood = flood(&flooder, a.id(), Duration::from_secs(4));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut busy = 0;
    for _ in 0..40 {
        for request in [Request::Vaults, Request::Changed] {
            match other.client.request(a.id(), request).await {
                Ok(Response::Refused(why)) if why.starts_with("busy") => busy += 1,
                _ => {}
            }
        }
    }
    flood.await.unwrap();
    assert_eq!(busy, 0, "another device was told busy {busy} times of 80");
}

/// A bare network peer that takes every request of `asker`'s and never
/// answers it.
async fn silent_peer(seed: u8, asker: NodeId) -> Rogue {
    // Its own network would answer "busy" past a stranger's budget, and
    // reset a stranger's streams past its few.
    let mut silent = rogue_with(seed, |config| Config {
        request_burst: 100_000,
        request_refill_per_sec: 100_000,
        ..config
    })
    .await;
    silent.client.trust(vec![asker]).await.unwrap();
    let mut events = silent.events.take().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(event) = events.recv().await {
            if let Event::InboundRequest { responder, .. } = event {
                held.push(responder);
            }
        }
    });
    silent
}

/// Defeated: peers that take requests and never answer them (thieves told
/// of every commit, their answers held back) held up to 100 of a node's
/// requests each (libp2p's streams a connection) until each timed out, so
/// eleven of them filled all 1,024 a node may have waiting and it could ask
/// no one else anything meanwhile. Now past
/// [`MAX_PENDING_REQUESTS_PER_PEER`] waiting on one peer a request to it
/// is refused at once, and the node asks others as ever. (The asker is a
/// bare network peer: the bound is its network's, as a node's.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn peers_that_never_answer_hold_up_only_what_is_asked_of_them() {
    use polykey_network::limits::MAX_PENDING_REQUESTS_PER_PEER;
    let a = device().await;
    let asker = rogue(132).await;
    dial(&asker, &a).await;
    let mut silent = Vec::new();
    for seed in 133..144 {
        let peer = silent_peer(seed, asker.id()).await;
        asker
            .client
            .dial(peer.id(), peer.address.clone())
            .await
            .unwrap();
        silent.push(peer);
    }
    let asks: Vec<_> = silent
        .iter()
        .flat_map(|peer| (0..100).map(move |_| peer.id()))
        .map(|peer| {
            let client = asker.client.clone();
            tokio::spawn(async move { client.request(peer, Request::Ping).await })
        })
        .collect();
    // Those past each peer's bound are refused at once; the rest wait.
    let (mut refused, mut waiting) = (0, 0);
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    for ask in asks {
        match tokio::time::timeout_at(until, ask).await {
            Err(_) => waiting += 1,
            Ok(answer) => match answer.unwrap() {
                Err(e) if e.to_string().contains("too many requests to this peer") => refused += 1,
                other => panic!("{other:?}"),
            },
        }
    }
    let bound = MAX_PENDING_REQUESTS_PER_PEER;
    assert_eq!((waiting, refused), (11 * bound, 11 * (100 - bound)));
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        asker.client.request(a.id(), Request::Ping).await
    })
    .await
    .expect("a request to another peer waited");
    assert!(matches!(answer, Ok(Response::Ok)), "{answer:?}");
}

/// Defeated: a thief passes off a revocation it signed as a claim of B's
/// chain (or A's own); A takes claims only from their issuer's chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thief_cannot_pass_its_claims_off_as_another_devices_chain() {
    let (a, b) = (device().await, device().await);
    pair(&a, &b).await;
    let mut rogue = rogue(110).await;
    rogue_pairs(&rogue, &a).await;
    let mut forged = rogue
        .chain()
        .next_payload(ClaimType::ClaimRevokeNode, b.id(), now_ms())
        .unwrap();
    forged.seq = 2;
    let claim = SignedClaim::issue(&forged, &rogue.keys).unwrap();
    let (a_id, b_id) = (a.id(), b.id());
    rogue.serve(move |request| match request {
        Request::Chains { .. } => Some(Response::Chains(vec![
            ChainUpdate {
                node: b_id,
                claims: vec![claim.clone()],
            },
            ChainUpdate {
                node: a_id,
                claims: vec![claim.clone()],
            },
        ])),
        _ => None,
    });
    a.node.sync_now(rogue.id()).await.unwrap();
    assert!(a.device_ids().await.contains(&b.id()), "A keeps B");
    b.node.sync_now(a.id()).await.unwrap();
    a.node.sync_now(b.id()).await.unwrap();
}

/// Defeated: once A revoked the thief, a link the thief makes afterwards
/// (dated ahead, within the clock skew) does not bring it back on A, and A
/// serves it nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_thief_cannot_come_back_on_the_revoker() {
    let a = device().await;
    a.node.create_vault("Personal".into()).await.unwrap();
    let mut rogue = rogue(111).await;
    rogue_pairs(&rogue, &a).await;
    let served = rogue.serve_chain();
    a.node.revoke_device(rogue.id()).await.unwrap();
    let x = RootKeypair::from_seed(&[112; 32]);
    rogue.link(&x, now_ms() + 300_000);
    *served.lock().unwrap() = rogue.chains();
    assert!(a.node.sync_now(rogue.id()).await.is_err());
    let on_a = a.device_ids().await;
    assert!(!on_a.contains(&rogue.id()) && !on_a.contains(&x.node_id()));
    for request in [Request::Chains { known: Vec::new() }, Request::Vaults] {
        let answer = ask_removed(&rogue, &a, request).await;
        assert!(matches!(answer, Response::Refused(_)), "{answer:?}");
    }
}

/// Strangers open more connections than A takes (300 keys, A takes 256, a
/// ping every second so none is idle); a person pairing a new device must
/// still get through: each newcomer makes room by closing a random
/// stranger's connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strangers_holding_every_connection_do_not_stop_a_pairing() {
    let (a, b) = (device().await, device().await);
    let address: polykey_network::Multiaddr = a.node.addresses().await.unwrap()[0].parse().unwrap();
    let mut strangers = Vec::new();
    for i in 0..300u32 {
        let mut seed = [200u8; 32];
        seed[..4].copy_from_slice(&i.to_be_bytes());
        let keys = RootKeypair::from_seed(&seed);
        let config = Config {
            mdns: false,
            ..Config::default()
        };
        let (client, events, event_loop) = polykey_network::new(&keys, config).unwrap();
        tokio::spawn(event_loop.run());
        let _ = client.dial(a.id(), address.clone()).await;
        strangers.push((client, events));
    }
    let (target, clients) = (
        a.id(),
        strangers.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>(),
    );
    let keep_busy = tokio::spawn(async move {
        loop {
            for client in &clients {
                let _ = client.request(target, Request::Ping).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let mut connected = 0;
    for (client, _) in &strangers {
        if client.connected().await.is_ok_and(|p| p.contains(&target)) {
            connected += 1;
        }
    }
    let invitation = a.node.invite().await.unwrap();
    let joined =
        tokio::time::timeout(Duration::from_secs(20), b.node.join(&invitation.to_code())).await;
    keep_busy.abort();
    assert!(
        matches!(joined, Ok(Ok(_))),
        "with {connected} strangers connected, the new device could not pair: {joined:?}"
    );
}

/// A removed device's commits are taken if dated before its removal, but
/// the date is the thief's to write. Right after A revoked it, the thief
/// empties a vault in a commit dated an hour earlier and hands it to B
/// (mid-sync, or not yet told); A then takes it from B. The revocation
/// names the version A had, so the thief's commit outside it is undone on
/// A, and from A on B.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_thiefs_backdated_commit_is_undone_everywhere() {
    let (a, b, rogue, _, slot) = gestalt_with_rogue(113).await;
    let vault = a.node.create_vault("Personal".into()).await.unwrap();
    a.write("Personal", "github", "pw").await;
    eventually("B has the secret", &[&a, &b], || async {
        b.read("Personal", "github").await.is_some()
    })
    .await;
    let head = a.head("Personal").await.unwrap();

    // B and the thief are connected before the removal, so B can pull
    // from it before A's next sync tells B.
    dial(&rogue, &b).await;
    let _ = b.node.sync_now(rogue.id()).await;
    let an_hour_ago = now_secs() as i64 - 3600;
    let (new_head, objects) = emptying_commit(&rogue.keys, &head, an_hour_ago);
    let summary = VaultSummary {
        id: vault.id.to_string(),
        name: "Personal".into(),
        renamed_at: 0,
        head: new_head.clone(),
        access: None,
    };
    a.node.revoke_device(rogue.id()).await.unwrap();
    *slot.lock().unwrap() = Some((summary, objects));
    // B may hear of the removal meanwhile; today it takes the commit even
    // then (dated before the removal), and refuses one dated after it.
    let _ = b.node.sync_now(rogue.id()).await;
    let _ = a.node.sync_now(b.id()).await;
    assert_eq!(
        a.read("Personal", "github").await.as_deref(),
        Some("pw"),
        "the revoked thief emptied the vault on A"
    );
    assert_ne!(a.head("Personal").await.unwrap(), new_head);
    eventually("B has the secret back", &[&a, &b], || async {
        let _ = b.node.sync_now(a.id()).await;
        b.read("Personal", "github").await.as_deref() == Some("pw")
    })
    .await;
}

/// A, B and a thief paired (see [`gestalt_with_rogue`]); A writes a secret
/// B receives; the thief removes A, dated `at_ms` (naming no vault
/// version, so undoing nothing), and B hears of it and drops A.
async fn thief_removes_a_on_b(seed: u8, at_ms: u64) -> (Device, Device, Rogue, Served) {
    let (a, b, rogue, served, _) = gestalt_with_rogue(seed).await;
    a.node.create_vault("Personal".into()).await.unwrap();
    a.write("Personal", "github", "pw").await;
    eventually("B has A's secret", &[&a, &b], || async {
        b.read("Personal", "github").await.is_some()
    })
    .await;
    rogue.revoke(a.id(), at_ms);
    *served.lock().unwrap() = rogue.chains();
    dial(&rogue, &b).await;
    eventually("B hears the thief", &[&b], || async {
        let _ = b.node.sync_now(rogue.id()).await;
        !b.device_ids().await.contains(&a.id())
    })
    .await;
    (a, b, rogue, served)
}

/// Since c9a6564 a thief's revocations end with the thief, but only where
/// the thief's removal arrives. The thief revokes A; B obeys, and as B
/// knew the thief only through A, B is left with no device at all: it
/// neither pulls from A nor answers it, so when the user removes the thief
/// on A, B never hears of it and stays cut off from A for good.
///
/// With the user's removal a second after the thief's (as on a loaded
/// machine, and always for a real person), B used to list A again but
/// refuse it: the revocation of the thief, then outside B's gestalt,
/// counted as no change, so B never recomputed who stands. (Passed before
/// only when both removals fell in one second, and checked the device
/// list, which shows contested devices too.)
///
/// Since the removals are judged by who stands, not by time, B cannot tell
/// the user's answer from the thief's (the chains show the same shape
/// either way): A and the thief are both out on B, shown there as a
/// dispute, until the user removes the thief on B too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thief_revoking_the_remover_does_not_cut_another_device_off() {
    // The thief's revocation names no vault version: it undoes nothing.
    let (a, b, rogue, _served) = thief_removes_a_on_b(114, now_ms()).await;
    assert_eq!(b.read("Personal", "github").await.as_deref(), Some("pw"));
    // The user removes the thief on A.
    a.node.revoke_device(rogue.id()).await.unwrap();
    b_shows_the_dispute_and_the_user_decides(&a, &b, &rogue).await;
    eventually(
        "A's secret is back on B, and still on A",
        &[&a, &b],
        || async {
            let _ = b.node.sync_now(a.id()).await;
            let _ = a.node.sync_now(b.id()).await;
            b.read("Personal", "github").await.as_deref() == Some("pw")
                && a.read("Personal", "github").await.as_deref() == Some("pw")
        },
    )
    .await;
}

/// As above, with the thief's removal of A dated nine minutes ahead (clocks
/// may differ by ten): when the latest removal stood, the thief's won
/// against the user's answer until the user removed it once more, ten
/// minutes later. A has heard of the thief's removal, and dates its answer
/// after it; dates play no part now.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thiefs_removal_of_the_remover_dated_ahead_does_not_outlast_the_answer() {
    let (a, b, rogue, _served) = thief_removes_a_on_b(116, now_ms() + 9 * 60 * 1000).await;
    dial(&rogue, &a).await;
    a.node.sync_now(rogue.id()).await.unwrap();
    a.node.revoke_device(rogue.id()).await.unwrap();
    b_shows_the_dispute_and_the_user_decides(&a, &b, &rogue).await;
    let answer = ask_removed(&rogue, &b, Request::Vaults).await;
    assert!(matches!(answer, Response::Refused(_)), "{answer:?}");
}

/// The user removes the thief on A first, and B obeys; the thief answers by
/// removing A, dated a minute later, and B reads it (it still reads the
/// chain of a device another device removed, for its removals). Judged by
/// time, the latest removal stood: the thief was B's device again, A was
/// out, and as the thief can always answer again, it had the last word.
/// Now neither stands on B: the thief stays refused until the user decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thiefs_answer_to_its_removal_does_not_make_it_a_device_again() {
    let (a, b, rogue, served, _) = gestalt_with_rogue(117).await;
    a.node.revoke_device(rogue.id()).await.unwrap();
    eventually("B drops the thief", &[&a, &b], || async {
        let _ = b.node.sync_now(a.id()).await;
        !b.device_ids().await.contains(&rogue.id())
    })
    .await;
    rogue.revoke(a.id(), now_ms() + 60_000);
    *served.lock().unwrap() = rogue.chains();
    dial(&rogue, &b).await;
    b_shows_the_dispute_and_the_user_decides(&a, &b, &rogue).await;
    let answer = ask_removed(&rogue, &b, Request::Vaults).await;
    assert!(matches!(answer, Response::Refused(_)), "{answer:?}");
}

/// As above, B asking nothing: B, which the thief had cut off from A, still
/// hears of the user's answer on A by itself and shows the dispute (a
/// review feared B read A's chain only when it happened to dial A).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_device_cut_off_by_the_thief_hears_the_users_answer_unasked() {
    let (a, b, rogue, _served) = thief_removes_a_on_b(121, now_ms()).await;
    a.node.revoke_device(rogue.id()).await.unwrap();
    eventually("B shows the dispute by itself", &[&a, &b], || async {
        b.node.device_disputes().await.unwrap().len() == 2
    })
    .await;
}

/// After the thief removed A and the user removed the thief on A: B takes
/// A's removal (A's chain is still read), and shows A and the thief as
/// devices that removed each other, trusting neither, with a notification;
/// the user removes the thief on B, and A is B's device again.
async fn b_shows_the_dispute_and_the_user_decides(a: &Device, b: &Device, rogue: &Rogue) {
    eventually("B shows the dispute", &[a, b], || async {
        let _ = b.node.sync_now(a.id()).await;
        let _ = b.node.sync_now(rogue.id()).await;
        let shown: Vec<NodeId> = b
            .node
            .device_disputes()
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.device)
            .collect();
        shown.contains(&a.id()) && shown.contains(&rogue.id())
    })
    .await;
    let on_b = b.device_ids().await;
    assert!(!on_b.contains(&a.id()) && !on_b.contains(&rogue.id()));
    let told = b.node.read_notifications(false).await.unwrap();
    assert!(
        told.iter().any(|n| n.text.contains("removed each other")),
        "{told:?}"
    );
    b.node.revoke_device(rogue.id()).await.unwrap();
    assert!(b.node.device_disputes().await.unwrap().is_empty());
    eventually("B has A back and not the thief", &[a, b], || async {
        let _ = b.node.sync_now(a.id()).await;
        let _ = a.node.sync_now(b.id()).await;
        let on_b = b.device_ids().await;
        on_b.contains(&a.id()) && !on_b.contains(&rogue.id())
    })
    .await;
    // A, connected all along, counts as online on B again (and so is
    // pulled from every 30 s), without a new connection.
    eventually("B counts A online", &[a, b], || async {
        b.node
            .devices()
            .await
            .unwrap()
            .iter()
            .any(|d| d.node_id == a.id() && d.online)
    })
    .await;
}

/// As above, with the thief paired with B too: B drops A and keeps the
/// thief; when the user removes the thief on A, B never hears of it (B
/// refuses A, and takes no chain of A's any more), so the thief stays B's
/// only device and keeps syncing with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thief_revoking_the_remover_first_is_removed_from_b_too() {
    let (a, b, rogue, served, _) = gestalt_with_rogue(115).await;
    rogue_pairs(&rogue, &b).await;
    *served.lock().unwrap() = rogue.chains();
    eventually("A and B know the thief's link to B", &[&a, &b], || async {
        let _ = a.node.sync_now(rogue.id()).await;
        let _ = b.node.sync_now(rogue.id()).await;
        b.device_ids().await.contains(&rogue.id())
    })
    .await;
    rogue.revoke(a.id(), now_ms());
    *served.lock().unwrap() = rogue.chains();
    let _ = b.node.sync_now(rogue.id()).await;
    // The user removes the thief on A.
    a.node.revoke_device(rogue.id()).await.unwrap();
    eventually("B drops the thief", &[&a, &b], || async {
        let _ = b.node.sync_now(a.id()).await;
        let _ = a.node.sync_now(b.id()).await;
        !b.device_ids().await.contains(&rogue.id())
    })
    .await;
    let answer = ask_removed(&rogue, &b, Request::Vaults).await;
    assert!(matches!(answer, Response::Refused(_)), "{answer:?}");
}

/// A key the thief made, with its own chain (its own database).
struct Puppet {
    keys: RootKeypair,
    db: polykey_db::Db,
    _dir: tempfile::TempDir,
}

impl Puppet {
    fn new(seed: u8) -> Self {
        let keys = RootKeypair::from_seed(&[seed; 32]);
        let dir = tempfile::tempdir().unwrap();
        let db = polykey_db::Db::create(&dir.path().join("db.redb"), &keys).unwrap();
        Self {
            keys,
            db,
            _dir: dir,
        }
    }

    fn id(&self) -> NodeId {
        self.keys.node_id()
    }

    fn chain(&self) -> polykey_gestalts::Sigchain<'_> {
        polykey_gestalts::Sigchain::new(&self.db, self.id())
    }

    /// Append a link to `other` (which countersigns) dated `at_ms`.
    fn link(&self, other: &RootKeypair, at_ms: u64) {
        let payload = self
            .chain()
            .next_payload(ClaimType::ClaimLinkNode, other.node_id(), at_ms)
            .unwrap();
        let mut claim = SignedClaim::issue(&payload, &self.keys).unwrap();
        claim.countersign(other).unwrap();
        self.chain().append(&claim).unwrap();
    }
}

/// Every chain the rogue serves (its own and its puppets'), by owner.
type ServedChains = Arc<Mutex<Vec<(NodeId, Vec<SignedClaim>)>>>;

/// The thief (T, paired with A) makes two puppets: T links X, X links Y,
/// and Y links T, Y's link dated a few minutes ahead (within the clock
/// skew). The one-puppet version (above) is defeated because X's half of
/// T–X is the same link as T's; Y's link to T is a new pair, issued by Y,
/// not by T, so B counts it as "a fresh pairing newer than the
/// revocation". The user removes T, X and Y on A; B drops A's revocation of
/// T and keeps serving the thief.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thiefs_second_puppet_linking_back_does_not_void_its_revocation() {
    let (a, b) = (device().await, device().await);
    pair(&a, &b).await;
    let mut rogue = rogue(116).await;
    rogue_pairs(&rogue, &a).await;
    let (x, y) = (Puppet::new(117), Puppet::new(118));
    let served: ServedChains = Arc::new(Mutex::new(Vec::new()));
    let chains = Arc::clone(&served);
    rogue.serve(move |request| {
        let Request::Chains { known } = request else {
            return None;
        };
        let updates = chains
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(node, claims)| {
                let after = known.iter().find(|p| p.node == *node).map_or(0, |p| p.seq);
                let claims: Vec<SignedClaim> =
                    claims.iter().skip(after as usize).cloned().collect();
                (!claims.is_empty()).then_some(ChainUpdate {
                    node: *node,
                    claims,
                })
            })
            .collect();
        Some(Response::Chains(updates))
    });
    rogue.link(&x.keys, now_ms());
    x.link(&y.keys, now_ms());
    y.link(&rogue.keys, now_ms() + 300_000);
    *served.lock().unwrap() = vec![
        (rogue.id(), rogue.chains()),
        (x.id(), x.chain().claims().unwrap()),
        (y.id(), y.chain().claims().unwrap()),
    ];
    a.node.sync_now(rogue.id()).await.unwrap();
    eventually("B learns the thief and both puppets", &[&a, &b], || async {
        let _ = b.node.sync_now(a.id()).await;
        let on_b = b.device_ids().await;
        [rogue.id(), x.id(), y.id()]
            .iter()
            .all(|d| on_b.contains(d))
    })
    .await;

    // The user answers the notices on A: the thief and its puppets go.
    for device in [rogue.id(), x.id(), y.id()] {
        a.node.revoke_device(device).await.unwrap();
    }
    assert!(!a.device_ids().await.contains(&rogue.id()));
    b.node.sync_now(a.id()).await.unwrap();
    let on_b = b.device_ids().await;
    assert!(
        !on_b.contains(&rogue.id()),
        "B keeps the thief A removed: {on_b:?}"
    );
    let answer = ask_removed(&rogue, &b, Request::Vaults).await;
    assert!(matches!(answer, Response::Refused(_)), "{answer:?}");
}

/// Of 300 requests `rogue` sends A at once for what only devices may ask,
/// how many A's network passes on to the node (answered "not yours"
/// rather than "busy").
async fn passed_on(rogue: &Rogue, a: &Device) -> usize {
    let asks = (0..300).map(|_| rogue.client.request(a.id(), Request::Vaults));
    futures::future::join_all(asks)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(Response::Refused(why)) if !why.starts_with("busy")))
        .count()
}

/// A device paired by its invitation's secret is A's `pairing_with`, and
/// nothing ever clears it: `refresh_trust` keeps exempting it from the
/// limits for strangers after the pairing, and after its removal (a
/// removed device "loses that at once"). The thief, removed, keeps a
/// device's request budget (512 then 256/s, a stranger's is 64 then 32/s)
/// and the connection limits' bypass, until A locks. (Anyone holding a
/// leaked invitation code gets the same by saying hello, and keeps it
/// after the invitation is cancelled or expires.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_device_loses_its_exemption_from_strangers_limits() {
    let a = device().await;
    // A stranger's budget, for comparison.
    let stranger = rogue(120).await;
    dial(&stranger, &a).await;
    let strangers = passed_on(&stranger, &a).await;
    assert!(
        strangers <= 128,
        "a stranger had {strangers} of 300 passed on"
    );

    let mut thief = rogue(121).await;
    rogue_pairs(&thief, &a).await;
    thief.serve_chain();
    a.node.revoke_device(thief.id()).await.unwrap();
    assert!(!a.device_ids().await.contains(&thief.id()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    dial(&thief, &a).await;
    let thiefs = passed_on(&thief, &a).await;
    assert!(
        thiefs <= 128,
        "the removed thief had {thiefs} of 300 passed on (a stranger {strangers})"
    );
}

/// A removed device must not keep what it opened while trusted: its
/// connections carried a device's bounds (streams in use, windows grown),
/// and once a stranger it kept them (pinging, so never idle) with
/// everything held on them. A's removal closes them; it may connect again,
/// as a stranger.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_devices_connections_are_closed() {
    let a = device().await;
    let mut thief = rogue(122).await;
    rogue_pairs(&thief, &a).await;
    let mut events = thief.events.take().unwrap();
    assert!(thief.client.connected().await.unwrap().contains(&a.id()));
    a.node.revoke_device(thief.id()).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(event) = events.recv().await {
            if matches!(event, Event::Disconnected { peer } if peer == a.id()) {
                return;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the removed thief's connection stayed open");
    // It may come back, as a stranger.
    let answer = ask_removed(&thief, &a, Request::Vaults).await;
    assert!(matches!(answer, Response::Refused(_)), "{answer:?}");
}

/// As [`emptying_commit`], with any message: (its id, its commit object;
/// the empty tree is not sent).
fn emptying_commit_saying(
    author: &RootKeypair,
    parent: &str,
    seconds: i64,
    message: &str,
) -> (String, WireObject) {
    use gix::objs::WriteTo;
    let (tree_id, _) = empty_tree();
    let node = author.node_id().to_string();
    let actor = gix::actor::Signature {
        name: node.clone().into(),
        email: format!("{node}@polykey").into(),
        time: gix::date::Time { seconds, offset: 0 },
    };
    let mut commit = gix::objs::Commit {
        tree: tree_id,
        parents: vec![gix::ObjectId::from_hex(parent.as_bytes()).unwrap()].into(),
        author: actor.clone(),
        committer: actor,
        encoding: None,
        message: format!("{message}\n").into(),
        extra_headers: Vec::new(),
    };
    let mut unsigned = Vec::new();
    commit.write_to(&mut unsigned).unwrap();
    let signature = polykey_keys::sshsig::sign(author, "git", &unsigned);
    commit
        .extra_headers
        .push(("gpgsig".into(), signature.into()));
    let mut data = Vec::new();
    commit.write_to(&mut data).unwrap();
    let id =
        gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Commit, &data).unwrap();
    let object = WireObject {
        base: None,
        part: None,
        id: id.to_string(),
        kind: kind_tag(gix::objs::Kind::Commit),
        data,
    };
    (id.to_string(), object)
}

/// The attack of [`a_revoked_thiefs_backdated_commit_is_undone_everywhere`]
/// with one more commit: after the emptying commit, the thief adds an
/// empty one (also backdated) whose message is an undo's, naming itself as
/// the device and the emptying commit as undone. `undo_removed` believes
/// undo trailers in the removed device's own commits, so it counts the
/// emptying commit as undone already and undoes only the empty one: the
/// vault stays empty on every device.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_thiefs_backdated_commit_behind_a_forged_undo_is_undone() {
    use polykey_vaults::{UNDOES, UNDOES_DEVICE};
    let (a, b, rogue, _, slot) = gestalt_with_rogue(122).await;
    let vault = a.node.create_vault("Personal".into()).await.unwrap();
    a.write("Personal", "github", "pw").await;
    eventually("B has the secret", &[&a, &b], || async {
        b.read("Personal", "github").await.is_some()
    })
    .await;
    let head = a.head("Personal").await.unwrap();
    dial(&rogue, &b).await;
    let _ = b.node.sync_now(rogue.id()).await;
    let an_hour_ago = now_secs() as i64 - 3600;
    let (emptied, mut objects) = emptying_commit(&rogue.keys, &head, an_hour_ago);
    let shield = format!(
        "Tidy up\n\n{UNDOES_DEVICE}{}\n{UNDOES}{emptied}",
        rogue.id()
    );
    let (new_head, commit) =
        emptying_commit_saying(&rogue.keys, &emptied, an_hour_ago + 1, &shield);
    objects.push(commit);
    let summary = VaultSummary {
        id: vault.id.to_string(),
        name: "Personal".into(),
        renamed_at: 0,
        head: new_head.clone(),
        access: None,
    };
    a.node.revoke_device(rogue.id()).await.unwrap();
    *slot.lock().unwrap() = Some((summary, objects));
    let _ = b.node.sync_now(rogue.id()).await;
    let _ = a.node.sync_now(b.id()).await;
    eventually("A has the secret back", &[&a, &b], || async {
        let _ = a.node.sync_now(b.id()).await;
        a.read("Personal", "github").await.as_deref() == Some("pw")
    })
    .await;
}

/// A stolen device, still paired, lists its owner's own vault with an
/// access record it signed: shared, to write, with a stranger. The record
/// is taken while the device is one of the gestalt (as its commits are),
/// and ends with its removal: the stranger is refused again. A record
/// making the vault another person's (read only to its owner, taking a
/// stranger's commits) is never taken, nor one signed by no device.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stolen_devices_share_of_a_vault_ends_with_its_removal() {
    use polykey_network::{Access, Grant, Remote};
    use polykey_node::sign_access;

    let a = device().await;
    let vault = a.node.create_vault("Personal".into()).await.unwrap();
    a.write("Personal", "github", "pw").await;
    let head = a.head("Personal").await.unwrap();
    let mut thief = rogue(151).await;
    rogue_pairs(&thief, &a).await;
    let stranger = rogue(152).await;
    let id = vault.id.to_string();
    let offered = Arc::new(Mutex::new(Access::default()));
    let shown = Arc::clone(&offered);
    let listed = id.clone();
    thief.serve(move |request| match request {
        Request::Vaults => Some(Response::Vaults {
            vaults: vec![VaultSummary {
                id: listed.clone(),
                name: "Personal".into(),
                renamed_at: 0,
                head: head.clone(),
                access: Some(shown.lock().unwrap().clone()),
            }],
        }),
        _ => None,
    });
    let now_ms = now_secs() as i64 * 1000;
    let to_stranger = Grant::unsigned("mallory".into(), vec![stranger.id()], true);
    let offer = |access: Access| *offered.lock().unwrap() = access;
    let access_here = || async { a.node.vault_access("Personal").await.unwrap().access };

    // The vault made a stranger's, read only here: not taken.
    let mut remote = Access {
        at: now_ms + 1,
        remote: Some(Remote {
            owner: "mallory".into(),
            nodes: vec![stranger.id()],
            removed: Vec::new(),
            write: false,
            ended: false,
            served: vec![a.id()],
            writers: Vec::new(),
            taken: None,
            statement: None,
        }),
        ..Access::default()
    };
    sign_access(&id, &mut remote, &thief.keys).unwrap();
    offer(remote);
    a.node.sync_now(thief.id()).await.unwrap();
    assert!(access_here().await.remote.is_none());
    a.write("Personal", "github", "still mine").await;

    // Signed by the stranger itself: not taken.
    let mut forged = Access {
        at: now_ms + 2,
        grants: vec![to_stranger.clone()],
        ..Access::default()
    };
    sign_access(&id, &mut forged, &stranger.keys).unwrap();
    offer(forged);
    a.node.sync_now(thief.id()).await.unwrap();
    assert!(access_here().await.grants.is_empty());

    // Signed by the thief, a device still: taken, and the stranger served.
    let mut shared = Access {
        at: now_ms + 3,
        grants: vec![to_stranger],
        ..Access::default()
    };
    sign_access(&id, &mut shared, &thief.keys).unwrap();
    offer(shared);
    a.node.sync_now(thief.id()).await.unwrap();
    assert_eq!(access_here().await.grants.len(), 1);
    dial(&stranger, &a).await;
    let ask = || Request::Shared {
        vault: Some(id.clone()),
        revocations: Vec::new(),
    };
    let answer = stranger.client.request(a.id(), ask()).await.unwrap();
    assert!(matches!(answer, Response::Shared { .. }), "{answer:?}");

    // Removed: its share ends at once, and is not taken again.
    a.node.revoke_device(thief.id()).await.unwrap();
    assert!(access_here().await.grants.is_empty());
    let answer = stranger.client.request(a.id(), ask()).await.unwrap();
    assert!(
        matches!(&answer, Response::Refused(r) if r == polykey_node::NOT_SHARED),
        "{answer:?}"
    );
    let _ = a.node.sync_now(thief.id()).await;
    assert!(access_here().await.grants.is_empty());
}

/// The thief lists vault `id` ("Personal", at `head`) with whatever access
/// record the test puts in the returned slot.
fn list_with_access(
    thief: &mut Rogue,
    id: &str,
    head: String,
) -> Arc<Mutex<polykey_network::Access>> {
    let offered = Arc::new(Mutex::new(polykey_network::Access::default()));
    let shown = Arc::clone(&offered);
    let listed = id.to_owned();
    thief.serve(move |request| match request {
        Request::Vaults => Some(Response::Vaults {
            vaults: vec![VaultSummary {
                id: listed.clone(),
                name: "Personal".into(),
                renamed_at: 0,
                head: head.clone(),
                access: Some(shown.lock().unwrap().clone()),
            }],
        }),
        _ => None,
    });
    offered
}

/// Whether `asker` is served vault `id` by `a`.
async fn served(asker: &Rogue, a: &Device, id: &str) -> bool {
    let ask = Request::Shared {
        vault: Some(id.to_owned()),
        revocations: Vec::new(),
    };
    match asker.client.request(a.id(), ask).await.unwrap() {
        Response::Shared { .. } => true,
        Response::Refused(r) if r == polykey_node::NOT_SHARED => false,
        other => panic!("{other:?}"),
    }
}

/// A stolen device shares its owner's vault with a stranger; then the
/// owner's honest device shares it with Carol, signing the record again.
/// Before grants were signed one by one, that later signature vouched for
/// the thief's grant, which outlived the thief's removal (the stranger
/// kept being served). Now the thief's grant ends with it, and Carol's
/// stays. Nor can the thief bring back a grant the owner withdrew, by
/// copying it, signature and all, into a newer record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stolen_devices_grant_is_not_laundered_nor_an_old_grant_replayed() {
    use polykey_network::{Access, Grant};
    use polykey_node::sign_access;

    let a = device().await;
    let vault = a.node.create_vault("Personal".into()).await.unwrap();
    a.write("Personal", "github", "pw").await;
    let head = a.head("Personal").await.unwrap();
    let mut thief = rogue(161).await;
    rogue_pairs(&thief, &a).await;
    let (stranger, mut carol) = (rogue(162).await, rogue(163).await);
    carol.serve_chain();
    dial(&stranger, &a).await;
    dial(&carol, &a).await;
    let id = vault.id.to_string();
    let offered = list_with_access(&mut thief, &id, head);
    let offer = |access: Access| *offered.lock().unwrap() = access;
    let now_ms = now_secs() as i64 * 1000;

    // Carol's grant, made by A, then withdrawn.
    let carol_id = carol.id().to_string();
    a.node
        .share_vault("Personal", &carol_id, false)
        .await
        .unwrap();
    let carols = a.node.vault_access("Personal").await.unwrap().access.grants;
    assert!(served(&carol, &a, &id).await);
    a.node.unshare_vault("Personal", &carol_id).await.unwrap();
    assert!(!served(&carol, &a, &id).await);

    // The thief's newer record carries Carol's old grant: not taken.
    let mut replayed = Access {
        at: now_ms + 60_000,
        grants: carols,
        ..Access::default()
    };
    sign_access(&id, &mut replayed, &thief.keys).unwrap();
    offer(replayed);
    a.node.sync_now(thief.id()).await.unwrap();
    assert!(
        !served(&carol, &a, &id).await,
        "a withdrawn grant came back"
    );

    // The thief's own grant to the stranger: taken while it is a device.
    let mut shared = Access {
        at: now_ms + 120_000,
        grants: vec![Grant::unsigned("mallory".into(), vec![stranger.id()], true)],
        ..Access::default()
    };
    sign_access(&id, &mut shared, &thief.keys).unwrap();
    offer(shared);
    a.node.sync_now(thief.id()).await.unwrap();
    assert!(served(&stranger, &a, &id).await);

    // A shares with Carol again: A signs the record, the thief's grant in it.
    a.node
        .share_vault("Personal", &carol_id, false)
        .await
        .unwrap();
    let access = a.node.vault_access("Personal").await.unwrap().access;
    assert_eq!(access.by, Some(a.id()));
    assert_eq!(access.grants.len(), 2);

    // The thief removed: its grant ends; Carol's, made by A, stays.
    a.node.revoke_device(thief.id()).await.unwrap();
    assert!(
        !served(&stranger, &a, &id).await,
        "the thief's grant stayed"
    );
    assert!(served(&carol, &a, &id).await);
}

/// Bob shares a vault with A; a stolen device of A's then lists it with
/// Bob's nodes swapped for a stranger's: unsigned by Bob, or signed by the
/// stranger. Before the owner's answers were signed, A took such a record
/// and pulled from (and took commits of) the stranger, re-signing the
/// record itself. Now neither is taken. Taking the vault again (as a
/// device may), from the stranger, is taken while the thief is a device,
/// and ends with its removal.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stolen_device_cannot_point_another_persons_vault_at_a_stranger() {
    use polykey_network::{Access, SharedVault};
    use polykey_node::{sign_access, sign_shared};

    let (a, bob) = (device().await, device().await);
    a.connect_to(&bob).await;
    a.node.trust(&bob.id().to_string()).await.unwrap();
    let id = bob
        .share_new_vault("Team", "pw", &a.id().to_string(), false)
        .await;
    a.node
        .clone_shared(&bob.id().to_string(), &id)
        .await
        .unwrap();
    let mine = a.node.vault_access(&id).await.unwrap().access;
    let remote = mine.remote.clone().unwrap();
    assert_eq!(remote.nodes, vec![bob.id()]);
    assert!(remote.taken.is_some() && remote.statement.is_some());

    let mut thief = rogue(164).await;
    rogue_pairs(&thief, &a).await;
    let mut stranger = rogue(165).await;
    stranger.serve_chain();
    let head = a.head("Team").await.unwrap();
    let offered = list_with_access(&mut thief, &id, head);
    let offer = |access: Access| *offered.lock().unwrap() = access;
    let nodes_here = || async {
        a.node
            .vault_access(&id)
            .await
            .unwrap()
            .access
            .remote
            .unwrap()
    };
    let now_ms = now_secs() as i64 * 1000;

    // Bob's nodes swapped, Bob's signature kept: not taken.
    let mut swapped = Access {
        at: now_ms + 60_000,
        remote: Some(polykey_network::Remote {
            nodes: vec![stranger.id()],
            ..remote.clone()
        }),
        ..Access::default()
    };
    sign_access(&id, &mut swapped, &thief.keys).unwrap();
    offer(swapped);
    a.node.sync_now(thief.id()).await.unwrap();
    assert_eq!(nodes_here().await.nodes, vec![bob.id()]);

    // Signed by the stranger, as if it were Bob's: not taken.
    let mut said = SharedVault {
        id: id.clone(),
        name: "Team".into(),
        head: String::new(),
        write: true,
        nodes: vec![stranger.id()],
        removed: Vec::new(),
        served: vec![a.id()],
        writers: Vec::new(),
        at: now_ms + 60_000,
        signature: Vec::new(),
    };
    sign_shared(&mut said, &a.id(), &stranger.keys);
    let statement = polykey_network::Statement {
        signer: stranger.id(),
        at: said.at,
        to: a.id(),
        signature: said.signature.clone(),
    };
    let posing = polykey_network::Remote {
        nodes: vec![stranger.id()],
        write: true,
        served: vec![a.id()],
        writers: Vec::new(),
        statement: Some(statement),
        ..remote.clone()
    };
    let mut forged = Access {
        at: now_ms + 120_000,
        remote: Some(posing.clone()),
        ..Access::default()
    };
    sign_access(&id, &mut forged, &thief.keys).unwrap();
    offer(forged);
    a.node.sync_now(thief.id()).await.unwrap();
    let here = nodes_here().await;
    assert_eq!(here.nodes, vec![bob.id()]);
    assert!(!here.write);

    // Taken again by the thief, from the stranger: taken while it is a
    // device, ended with its removal.
    let mut retaken = Access {
        at: now_ms + 180_000,
        remote: Some(polykey_network::Remote {
            taken: None,
            ..posing
        }),
        ..Access::default()
    };
    sign_access(&id, &mut retaken, &thief.keys).unwrap();
    offer(retaken);
    a.node.sync_now(thief.id()).await.unwrap();
    assert_eq!(nodes_here().await.nodes, vec![stranger.id()]);
    // A sync with Bob (who still shares it) running while the thief is
    // removed: a pull that listed the vault before the removal ended it
    // must not take Bob's word as a new taking once it has (it did, now
    // and then: the share came back, taken by no one's choice).
    let syncing = {
        let (node, bob) = (a.node.clone(), bob.id());
        tokio::spawn(async move {
            for _ in 0..30 {
                let _ = node.sync_now(bob).await;
            }
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    a.node.revoke_device(thief.id()).await.unwrap();
    syncing.await.unwrap();
    let here = nodes_here().await;
    assert!(here.ended, "the thief's taking stayed: {here:?}");
}

/// Sharing changed on two devices before they met: A shares with Carol
/// while its other device (played by a rogue member) shared with Dave in
/// a record older than A's. Both grants hold (before each person's entry
/// was merged, the newer record won and Dave's grant was lost), and the
/// merge reaches the other device. Later that device sends Carol's grant
/// again after A withdrew it: the withdrawal, being later, wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sharing_changed_on_two_devices_both_holds() {
    use polykey_network::{Access, Grant};
    use polykey_node::sign_access;

    let a = device().await;
    let vault = a.node.create_vault("Personal".into()).await.unwrap();
    let head = a.head("Personal").await.unwrap();
    let mut other = rogue(166).await;
    rogue_pairs(&other, &a).await;
    let (mut carol, mut dave) = (rogue(167).await, rogue(168).await);
    carol.serve_chain();
    dave.serve_chain();
    dial(&carol, &a).await;
    dial(&dave, &a).await;
    let id = vault.id.to_string();
    let offered = list_with_access(&mut other, &id, head);
    let offer = |access: Access| *offered.lock().unwrap() = access;

    let older = now_secs() as i64 * 1000 - 60_000;
    let carol_id = carol.id().to_string();
    a.node
        .share_vault("Personal", &carol_id, false)
        .await
        .unwrap();
    let carols = a.node.vault_access("Personal").await.unwrap().access.grants;
    let mut daves = Access {
        at: older,
        grants: vec![Grant::unsigned(
            dave.id().to_string(),
            vec![dave.id()],
            true,
        )],
        ..Access::default()
    };
    sign_access(&id, &mut daves, &other.keys).unwrap();
    offer(daves.clone());
    a.node.sync_now(other.id()).await.unwrap();
    assert!(served(&carol, &a, &id).await);
    assert!(
        served(&dave, &a, &id).await,
        "the other device's grant was lost"
    );
    let merged = a.node.vault_access("Personal").await.unwrap().access;
    assert_eq!(merged.grants.len(), 2);
    assert_eq!(merged.by, Some(a.id()), "the merge is signed here");

    // Carol's grant withdrawn here; the other device still has it.
    a.node.unshare_vault("Personal", &carol_id).await.unwrap();
    let mut stale = Access {
        at: merged.at + 60_000,
        grants: carols.into_iter().chain(daves.grants).collect(),
        ..Access::default()
    };
    sign_access(&id, &mut stale, &other.keys).unwrap();
    offer(stale);
    a.node.sync_now(other.id()).await.unwrap();
    assert!(
        !served(&carol, &a, &id).await,
        "a withdrawn grant came back"
    );
    assert!(served(&dave, &a, &id).await);
}

/// Alice's stolen device, still hers, answers Bob's pull of her shared
/// vault naming itself and a stranger her only nodes, Alice's own device
/// removed, dated ahead. Bob takes it (it was Alice's device). Once Alice
/// removes it, Bob's next pull from Alice as he trusts her (not among the
/// nodes the thief named) takes her answer, which names the thief
/// removed: Bob follows Alice again and has her later edit. (Before,
/// Bob pulled only from the nodes last named, so the thief's answer
/// stayed for good.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owners_stolen_device_does_not_keep_a_shared_vault_after_its_removal() {
    use polykey_network::{Removed, SharedVault};
    use polykey_node::sign_shared;

    let (alice, bob) = (device().await, device().await);
    let mut thief = rogue(169).await;
    rogue_pairs(&thief, &alice).await;
    let stranger = RootKeypair::from_seed(&[170; 32]);
    bob.connect_to(&alice).await;
    bob.node.trust(&alice.id().to_string()).await.unwrap();
    let id = alice
        .share_new_vault("Team", "pw", &bob.id().to_string(), false)
        .await;
    bob.node
        .clone_shared(&alice.id().to_string(), &id)
        .await
        .unwrap();
    let nodes = bob
        .node
        .vault_access(&id)
        .await
        .unwrap()
        .access
        .remote
        .unwrap()
        .nodes;
    assert!(nodes.contains(&thief.id()), "{nodes:?}");

    let mut forged = SharedVault {
        id: id.clone(),
        name: "Team".into(),
        head: alice.head("Team").await.unwrap(),
        write: false,
        nodes: vec![thief.id(), stranger.node_id()],
        removed: vec![Removed {
            node: alice.id(),
            at: now_secs(),
        }],
        served: vec![bob.id()],
        writers: Vec::new(),
        at: now_secs() as i64 * 1000 + 300_000,
        signature: Vec::new(),
    };
    sign_shared(&mut forged, &bob.id(), &thief.keys);
    thief.serve(move |request| match request {
        Request::Shared { .. } => Some(Response::Shared {
            vaults: vec![forged.clone()],
        }),
        _ => None,
    });
    // Taken once Bob reaches it (its inbound connection may be closed
    // before Bob asks: dialled again).
    let thief_named = vec![thief.id(), stranger.node_id()];
    eventually("Bob takes the thief's answer", &[&alice, &bob], || async {
        dial(&thief, &bob).await;
        let _ = bob.node.sync_now(thief.id()).await;
        let access = bob.node.vault_access(&id).await.unwrap().access;
        access.remote.is_some_and(|r| r.nodes == thief_named)
    })
    .await;

    alice.node.revoke_device(thief.id()).await.unwrap();
    alice.write("Team", "wifi", "after the theft").await;
    eventually("Bob follows Alice again", &[&alice, &bob], || async {
        let _ = bob.node.sync_now(alice.id()).await;
        bob.read("Team", "wifi").await.as_deref() == Some("after the theft")
    })
    .await;
    let remote = bob
        .node
        .vault_access(&id)
        .await
        .unwrap()
        .access
        .remote
        .unwrap();
    assert!(!remote.nodes.contains(&thief.id()), "{remote:?}");
    assert!(remote.removed.iter().any(|r| r.node == thief.id()));
}

/// Alice's stolen device, one of the nodes her answer names, tells Bob
/// her shared vault is not shared with him any more. Alice's own device
/// still shares it, so Bob's copy keeps syncing (before, one node's "not
/// shared" ended the share on Bob's side for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owners_stolen_device_cannot_end_a_share_alone() {
    let (alice, bob) = (device().await, device().await);
    let mut thief = rogue(174).await;
    rogue_pairs(&thief, &alice).await;
    bob.connect_to(&alice).await;
    bob.node.trust(&alice.id().to_string()).await.unwrap();
    let id = alice
        .share_new_vault("Team", "pw", &bob.id().to_string(), false)
        .await;
    bob.node
        .clone_shared(&alice.id().to_string(), &id)
        .await
        .unwrap();
    thief.serve(|request| match request {
        Request::Shared { .. } => Some(Response::Refused(polykey_node::NOT_SHARED.into())),
        _ => None,
    });
    dial(&thief, &bob).await;
    let _ = bob.node.sync_now(thief.id()).await;
    let remote = bob
        .node
        .vault_access(&id)
        .await
        .unwrap()
        .access
        .remote
        .unwrap();
    assert!(!remote.ended, "one node of Alice's ended her share");
    alice.write("Team", "wifi", "still shared").await;
    eventually("Bob still follows Alice", &[&alice, &bob], || async {
        let _ = bob.node.sync_now(alice.id()).await;
        bob.read("Team", "wifi").await.as_deref() == Some("still shared")
    })
    .await;
}

/// A stolen device floods a vault's record with withdrawals from people
/// nobody shared with (the record keeps the newest 256), pushing out the
/// withdrawal of Carol's share, and sends Carol's old grant again. Before
/// the floor of forgotten withdrawals, the grant came back at the next
/// sync and stayed after the thief's removal (an honest device had
/// signed it). Now it never comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stolen_device_cannot_bring_back_a_withdrawn_share_by_flooding() {
    use polykey_network::{Access, Withdrawn};
    use polykey_node::sign_access;

    let a = device().await;
    let vault = a.node.create_vault("Personal".into()).await.unwrap();
    let head = a.head("Personal").await.unwrap();
    let mut thief = rogue(175).await;
    rogue_pairs(&thief, &a).await;
    let mut carol = rogue(176).await;
    carol.serve_chain();
    dial(&carol, &a).await;
    let id = vault.id.to_string();
    let offered = list_with_access(&mut thief, &id, head);
    let carol_id = carol.id().to_string();
    a.node
        .share_vault("Personal", &carol_id, false)
        .await
        .unwrap();
    let carols = a.node.vault_access("Personal").await.unwrap().access.grants;
    a.node.unshare_vault("Personal", &carol_id).await.unwrap();

    let mut flood = Access {
        at: now_secs() as i64 * 1000 + 60_000,
        grants: carols,
        withdrawn: (0..256)
            .map(|i| Withdrawn::unsigned(format!("nobody {i}")))
            .collect(),
        ..Access::default()
    };
    sign_access(&id, &mut flood, &thief.keys).unwrap();
    *offered.lock().unwrap() = flood;
    for _ in 0..2 {
        a.node.sync_now(thief.id()).await.unwrap();
        assert!(
            !served(&carol, &a, &id).await,
            "a withdrawn grant came back"
        );
    }
    a.node.revoke_device(thief.id()).await.unwrap();
    assert!(!served(&carol, &a, &id).await);
    assert!(a
        .node
        .vault_access("Personal")
        .await
        .unwrap()
        .access
        .grants
        .is_empty());
}
