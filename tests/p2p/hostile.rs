//! Peers that must be refused: an unpaired node asking for vaults, a used
//! or expired code, and a paired device sending tampered objects or commits
//! a stranger signed.

use std::time::Duration;

use data_encoding::BASE64URL_NOPAD;

use polykey_db::Db;
use polykey_gestalts::pairing::{Invitation, Joiner, PairingMessage};
use polykey_gestalts::{GestaltGraph, Sigchain};
use polykey_keys::{NodeId, RootKeypair};
use polykey_network::{
    Client, Config, Event, Request, Response, SignedNotification, VaultSummary, WireObject,
};
use polykey_node::NodeError;
use polykey_vaults::{kind_tag, Vaults};
use tempfile::TempDir;

use crate::{device, pair, Device};

/// A bare network peer driven by the test, not a Polykey node.
struct Rogue {
    keys: RootKeypair,
    client: Client,
    events: Option<tokio::sync::mpsc::Receiver<Event>>,
    db: Db,
    _dir: TempDir,
}

async fn rogue(seed: u8) -> Rogue {
    let keys = RootKeypair::from_seed(&[seed; 32]);
    let config = Config {
        mdns: false,
        request_timeout: Duration::from_secs(10),
        ..Config::default()
    };
    let (client, events, event_loop) = polykey_network::new(&keys, config).unwrap();
    tokio::spawn(event_loop.run());
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(&dir.path().join("db.redb"), &keys).unwrap();
    Rogue {
        keys,
        client,
        events: Some(events),
        db,
        _dir: dir,
    }
}

async fn dial(rogue: &Rogue, target: &Device) {
    let address = target.node.addresses().await.unwrap()[0].parse().unwrap();
    rogue.client.dial(target.id(), address).await.unwrap();
}

fn refused(response: Response) -> String {
    match response {
        Response::Refused(reason) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unpaired_node_can_list_or_fetch_nothing() {
    let a = device().await;
    let vault = a.node.create_vault("Personal".into()).await.unwrap();
    let head = a.write("Personal", "github", "hunter2").await;
    let stranger = rogue(66).await;
    dial(&stranger, &a).await;
    let ask = |request| stranger.client.request(a.id(), request);

    for request in [
        Request::Vaults,
        Request::Links,
        Request::Fetch {
            vault: vault.id.to_string(),
            want: head.clone(),
            haves: Vec::new(),
            skip: 0,
        },
    ] {
        let reason = refused(ask(request).await.unwrap());
        assert!(reason.contains("not one of yours"), "{reason}");
        assert!(!reason.contains("hunter2") && !reason.contains("github"));
    }
    // A pairing step out of order is refused too, and changes nothing.
    let reason = refused(
        ask(Request::Pairing(PairingMessage::Done {
            inviter_claim: Sigchain::new(&stranger.db, stranger.keys.node_id())
                .next_payload(polykey_gestalts::ClaimType::ClaimLinkNode, a.id(), 0)
                .map(|p| polykey_gestalts::SignedClaim::issue(&p, &stranger.keys).unwrap())
                .unwrap(),
        }))
        .await
        .unwrap(),
    );
    assert!(reason.contains("out of order"), "{reason}");
    assert_eq!(a.node.devices().await.unwrap().len(), 1);

    // A correctly signed notification from a stranger is dropped.
    let payload = serde_json::to_vec(&serde_json::json!({
        "from": stranger.keys.node_id(), "to": a.id(), "sent_at": 0, "text": "click this link"
    }))
    .unwrap();
    let signature = stranger.keys.sign(&payload).0.to_vec();
    let answer = ask(Request::Notify(SignedNotification { payload, signature }))
        .await
        .unwrap();
    assert!(matches!(answer, Response::Refused(_)), "{answer:?}");
    assert!(a.node.read_notifications(false).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_used_or_expired_code_is_refused() {
    let (a, b, c) = (device().await, device().await, device().await);
    let code = a.node.invite().await.unwrap().to_code();
    b.node.join(&code).await.unwrap();

    let err = c.node.join(&code).await.unwrap_err();
    assert!(matches!(err, NodeError::PeerRefused(_)), "{err:?}");
    assert!(err.to_string().contains("already used"), "{err}");

    // A code past its time is refused before anything is sent.
    let mut invitation: serde_json::Value = {
        let fresh = a.node.invite().await.unwrap().to_code();
        let body = fresh.trim_start_matches("polykey-pair:");
        serde_json::from_slice(&BASE64URL_NOPAD.decode(body.as_bytes()).unwrap()).unwrap()
    };
    invitation["e"] = 1_000.into();
    let expired = format!(
        "polykey-pair:{}",
        BASE64URL_NOPAD.encode(&serde_json::to_vec(&invitation).unwrap())
    );
    assert!(Invitation::from_code(&expired).is_ok());
    let err = c.node.join(&expired).await.unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    assert_eq!(c.node.devices().await.unwrap().len(), 1, "C joined nothing");
    assert_eq!(a.node.devices().await.unwrap().len(), 2, "only B joined A");
}

/// Pair the rogue into `a`'s gestalt with a real invitation, by hand.
async fn rogue_pairs(rogue: &Rogue, a: &Device) {
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
    let me = rogue.keys.node_id();
    let chain = Sigchain::new(&rogue.db, me);
    let graph = GestaltGraph::new(&rogue.db);
    let (mut joiner, hello) = Joiner::start(a.id(), me, invitation.words());
    let challenge = ask(hello).await;
    let proof = joiner
        .on_challenge(challenge, &rogue.keys, &chain, now())
        .unwrap();
    let claims = ask(proof).await;
    let done = joiner
        .on_claims(claims, &rogue.keys, &chain, &graph)
        .unwrap();
    let answer = rogue
        .client
        .request(a.id(), Request::Pairing(done))
        .await
        .unwrap();
    assert!(matches!(answer, Response::Ok), "{answer:?}");
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A vault made in a scratch store, signed by `author`, as the rogue will
/// offer it: (summary, objects with their ids).
fn forged_vault(author: &RootKeypair) -> (VaultSummary, Vec<WireObject>, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(&dir.path().join("scratch.redb"), author).unwrap();
    let vaults = Vaults::new(&db);
    let vault = vaults.create("Forged", author).unwrap();
    vault
        .write_secret(&db, author, "github", b"planted")
        .unwrap();
    let head = vault.head(&db).unwrap();
    let objects = vault
        .objects_between(&db, &head, &[])
        .unwrap()
        .into_iter()
        .map(|(id, object)| WireObject {
            id,
            kind: kind_tag(object.kind),
            data: object.data.clone(),
        })
        .collect();
    let summary = VaultSummary {
        id: vault.id().to_string(),
        name: "Forged".into(),
        renamed_at: 0,
        head,
    };
    (summary, objects, dir)
}

/// Serve `summary` and `objects` to whoever asks.
fn serve(rogue: &mut Rogue, summary: VaultSummary, objects: Vec<WireObject>) {
    let mut events = rogue.events.take().unwrap();
    let client = rogue.client.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let Event::InboundRequest {
                request, responder, ..
            } = event
            else {
                continue;
            };
            let response = match request {
                Request::Vaults => Response::Vaults {
                    vaults: vec![summary.clone()],
                    deleted: Vec::new(),
                },
                Request::Links => Response::Links(Vec::new()),
                Request::Fetch { .. } => Response::Objects {
                    total: objects.len() as u32,
                    objects: objects.clone(),
                },
                _ => Response::Ok,
            };
            let _ = client.respond(responder, response).await;
        }
    });
}

async fn refused_and_unchanged(a: &Device, rogue: NodeId, expect: &str) {
    let before = a.vault_names().await;
    let head = a.head("Personal").await;
    let err = a.node.sync_now(rogue).await.unwrap_err();
    assert!(
        matches!(err, NodeError::Vault(_) | NodeError::PeerRefused(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains(expect), "{err}");
    assert!(!err.to_string().contains("planted"));
    assert_eq!(a.vault_names().await, before, "no vault was added");
    assert_eq!(a.head("Personal").await, head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_signed_by_a_stranger_is_refused() {
    let a = device().await;
    a.node.create_vault("Personal".into()).await.unwrap();
    let mut rogue = rogue(77).await;
    rogue_pairs(&rogue, &a).await;
    // Signed by a node outside the gestalt, otherwise perfectly formed.
    let stranger = RootKeypair::from_seed(&[78; 32]);
    let (summary, objects, _scratch) = forged_vault(&stranger);
    serve(&mut rogue, summary, objects);
    refused_and_unchanged(&a, rogue.keys.node_id(), "outside the gestalt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tampered_object_is_refused() {
    let a = device().await;
    a.node.create_vault("Personal".into()).await.unwrap();
    let mut rogue = rogue(79).await;
    rogue_pairs(&rogue, &a).await;
    // Signed by the (paired) rogue itself, but a blob changed in transit.
    let (summary, mut objects, _scratch) = forged_vault(&rogue.keys);
    let blob = objects.iter_mut().find(|o| o.kind == 1).unwrap();
    blob.data = b"swapped".to_vec();
    serve(&mut rogue, summary, objects);
    refused_and_unchanged(&a, rogue.keys.node_id(), "does not match its id").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_incomplete_history_is_refused() {
    let (a, b) = (device().await, device().await);
    pair(&a, &b).await;
    a.node.create_vault("Personal".into()).await.unwrap();
    let mut rogue = rogue(80).await;
    rogue_pairs(&rogue, &a).await;
    let (summary, mut objects, _scratch) = forged_vault(&rogue.keys);
    objects.retain(|o| o.kind != 2);
    serve(&mut rogue, summary, objects);
    refused_and_unchanged(&a, rogue.keys.node_id(), "incomplete").await;
}

/// A deletion is a change: a pull that only deletes a vault reports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pull_that_only_deletes_a_vault_reports_a_change() {
    let a = device().await;
    let doomed = a.node.create_vault("Doomed".into()).await.unwrap();
    let mut peer = rogue(81).await;
    rogue_pairs(&peer, &a).await;
    // The paired device first lists nothing; later it says Doomed is gone.
    let deleted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut events = peer.events.take().unwrap();
    let client = peer.client.clone();
    let shared = std::sync::Arc::clone(&deleted);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let Event::InboundRequest {
                request, responder, ..
            } = event
            else {
                continue;
            };
            let response = match request {
                Request::Vaults => Response::Vaults {
                    vaults: Vec::new(),
                    deleted: shared.lock().unwrap().clone(),
                },
                Request::Links => Response::Links(Vec::new()),
                _ => Response::Ok,
            };
            let _ = client.respond(responder, response).await;
        }
    });
    // Let the sync that pairing starts finish first.
    crate::eventually("the first sync ends", &[&a], || async {
        let status = a.node.sync_status();
        status.last_sync > 0 && !status.syncing
    })
    .await;
    assert!(!a.node.sync_now(peer.keys.node_id()).await.unwrap());
    deleted.lock().unwrap().push(polykey_network::Deleted {
        id: doomed.id.to_string(),
        deleted_at: 1,
    });
    assert!(a.node.sync_now(peer.keys.node_id()).await.unwrap());
    assert!(a.vault_names().await.is_empty());
}
