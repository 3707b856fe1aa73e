//! Peers that must be refused or survived: strangers asking for what only
//! devices may see, burning invitations or flooding; and a paired device
//! gone bad — deleting every vault, adding devices unseen, sending tampered,
//! oversized or slow answers — against real nodes on 127.0.0.1. Each attack
//! is played by a bare network peer driven by the test ("rogue").

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use data_encoding::BASE64URL_NOPAD;

use polykey_db::Db;
use polykey_gestalts::pairing::{Invitation, Joiner, PairingMessage};
use polykey_gestalts::{ClaimType, Sigchain, SignedClaim};
use polykey_keys::{NodeId, RootKeypair};
use polykey_network::limits::BUSY;
use polykey_network::protocol::{page_budget, MIN_PAGE_BYTES};
use polykey_network::{
    ChainUpdate, Event, Request, Response, SignedNotification, VaultSummary, WireDeletion,
    WireObject, WirePart,
};
use polykey_node::NodeError;
use polykey_vaults::{kind_tag, Deletion, Page, Part, SendPlan, Vault, VaultId, Vaults};
use tempfile::TempDir;
use tokio::sync::Notify;

use crate::rogue::{dial, now_secs, rogue, rogue_pairs, Rogue};
use crate::{
    device, device_and_keys, device_with, eventually, pair, paired_with_vault, Device, PASSWORD,
};
use polykey_node::backup::Restored;
use polykey_node::{NetworkOptions, Password};

impl Rogue {
    /// The rogue's own chain, as a Chains answer.
    fn chain_answer(&self) -> Response {
        let claims = self.chain().claims().unwrap();
        Response::Chains(vec![ChainUpdate {
            node: self.id(),
            claims,
        }])
    }

    /// Answer every request with `answer` after `delay`.
    fn answer_with(
        &mut self,
        delay: Duration,
        answer: impl Fn(Request) -> Response + Send + Sync + 'static,
    ) {
        self.answer_each(move |request| (delay, answer(request)));
    }

    /// Answer each request as `answer` says when it arrives: after how
    /// long, and what.
    fn answer_each(
        &mut self,
        answer: impl Fn(Request) -> (Duration, Response) + Send + Sync + 'static,
    ) {
        self.answer_when(move |request| {
            let (delay, response) = answer(request);
            (Box::pin(tokio::time::sleep(delay)), response)
        });
    }

    /// Answer each request as `answer` says when it arrives: what, once
    /// the future it gives has ended.
    fn answer_when(
        &mut self,
        answer: impl Fn(Request) -> (futures::future::BoxFuture<'static, ()>, Response)
            + Send
            + Sync
            + 'static,
    ) {
        let mut events = self.events.take().unwrap();
        let client = self.client.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let Event::InboundRequest {
                    request, responder, ..
                } = event
                else {
                    continue;
                };
                let (wait, response) = answer(request);
                let client = client.clone();
                tokio::spawn(async move {
                    wait.await;
                    let _ = client.respond(responder, response).await;
                });
            }
        });
    }
}

fn refused(response: Response) -> String {
    match response {
        Response::Refused(reason) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn now_ms() -> i64 {
    (now_secs() * 1000) as i64
}

/// Wait until the sync pairing started on `d` has ended.
async fn first_sync_ended(d: &Device) {
    eventually("the first sync ends", &[d], || async {
        let status = d.node.sync_status();
        status.last_sync > 0 && !status.syncing
    })
    .await;
}

/// What a member answers when it has nothing to say.
fn quiet(chains: Response) -> impl Fn(Request) -> Response + Send + Sync + 'static {
    move |request| match request {
        Request::Chains { .. } => chains.clone(),
        Request::Vaults => Response::Vaults { vaults: Vec::new() },
        Request::Deletions { .. } => Response::Deletions {
            deletions: Vec::new(),
            more: false,
        },
        _ => Response::Ok,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stranger_learns_nothing_and_can_list_or_fetch_nothing() {
    let a = device().await;
    let vault = a.node.create_vault("Personal".into()).await.unwrap();
    let head = a.write("Personal", "github", "hunter2").await;
    let stranger = rogue(66).await;
    dial(&stranger, &a).await;
    let ask = |request| stranger.client.request(a.id(), request);

    for request in [
        Request::Sigchain,
        Request::Chains { known: Vec::new() },
        Request::Vaults,
        Request::Deletions { after: None },
        Request::Fetch {
            vault: vault.id.to_string(),
            want: head.clone(),
            haves: Vec::new(),
            skip: 0,
            from: 0,
            page: 0,
        },
    ] {
        let reason = refused(ask(request).await.unwrap());
        assert!(reason.contains("not one of yours"), "{reason}");
        assert!(!reason.contains("hunter2") && !reason.contains("github"));
    }
    // A ping is answered, and says nothing.
    assert!(matches!(ask(Request::Ping).await.unwrap(), Response::Ok));
    // A pairing step out of order is refused too, and changes nothing.
    let reason = refused(
        ask(Request::Pairing(PairingMessage::Done {
            inviter_claim: Sigchain::new(&stranger.db, stranger.id())
                .next_payload(ClaimType::ClaimLinkNode, a.id(), 0)
                .map(|p| SignedClaim::issue(&p, &stranger.keys).unwrap())
                .unwrap(),
        }))
        .await
        .unwrap(),
    );
    assert!(reason.contains("out of order"), "{reason}");
    assert_eq!(a.node.devices().await.unwrap().len(), 1);

    // A correctly signed notification from a stranger is dropped.
    let payload = serde_json::to_vec(&serde_json::json!({
        "from": stranger.id(), "to": a.id(), "sent_at": 0, "text": "click this link"
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
    let (_, fingerprint) = b.node.join(&code).await.unwrap();
    crate::confirm_both(&a, &b, &fingerprint).await;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_strangers_wrong_guesses_do_not_end_a_valid_invitation() {
    let (a, b) = (device().await, device().await);
    let invitation = a.node.invite().await.unwrap();
    let stranger = rogue(65).await;
    dial(&stranger, &a).await;
    let chain = Sigchain::new(&stranger.db, stranger.id());
    // Three guesses (and a fourth) with words only: each is refused.
    for _ in 0..4 {
        let (mut joiner, hello) = Joiner::start(a.id(), stranger.id(), "zoo zoo zoo zoo", None);
        let answer = stranger
            .client
            .request(a.id(), Request::Pairing(hello))
            .await
            .unwrap();
        let Response::Pairing(challenge) = answer else {
            continue;
        };
        // The stranger cannot check the inviter's key confirmation; it
        // sends a proof anyway.
        let _ = joiner.on_challenge(challenge, &stranger.keys, &chain, now_secs());
    }
    assert!(
        matches!(
            a.node.pairing_state(),
            polykey_node::PairingState::Waiting { .. }
        ),
        "the strangers' guesses did not end what A shows: {:?}",
        a.node.pairing_state()
    );
    // The device holding the code still pairs.
    let (who, fingerprint) = b.node.join(&invitation.to_code()).await.unwrap();
    assert_eq!(who, a.id());
    crate::confirm_both(&a, &b, &fingerprint).await;
    assert_eq!(a.node.devices().await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pairing_cancelled_on_either_side_records_nothing() {
    let (a, b) = (device().await, device().await);
    // The joiner sees different digits and cancels.
    let code = a.node.invite().await.unwrap().to_code();
    b.node.join(&code).await.unwrap();
    b.node.confirm_join(false).await.unwrap();
    // The inviter cancels after seeing the digits.
    let code = a.node.invite().await.unwrap().to_code();
    b.node.join(&code).await.unwrap();
    let joining = {
        let node = b.node.clone();
        tokio::spawn(async move { node.confirm_join(true).await })
    };
    eventually("A shows the digits", &[&a], || async {
        matches!(
            a.node.pairing_state(),
            polykey_node::PairingState::Confirming { .. }
        )
    })
    .await;
    a.node.confirm_pairing(false).unwrap();
    let err = joining.await.unwrap().unwrap_err();
    assert!(matches!(err, NodeError::PeerRefused(_)), "{err:?}");
    assert_eq!(a.node.devices().await.unwrap().len(), 1);
    assert_eq!(b.node.devices().await.unwrap().len(), 1);
    // The joiner confirmed, then cancels while waiting for the other device.
    let code = a.node.invite().await.unwrap().to_code();
    b.node.join(&code).await.unwrap();
    let joining = {
        let node = b.node.clone();
        tokio::spawn(async move { node.confirm_join(true).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.node.confirm_join(false).await.unwrap();
    assert!(joining.await.unwrap().is_err());
    eventually("A hears of the cancel", &[&a], || async {
        matches!(
            a.node.pairing_state(),
            polykey_node::PairingState::Failed(_)
        )
    })
    .await;
    assert!(a.node.confirm_pairing(true).is_err());
    assert_eq!(a.node.devices().await.unwrap().len(), 1);
    assert_eq!(b.node.devices().await.unwrap().len(), 1);
}

/// A vault made in a scratch store, signed by `author`, as the rogue will
/// offer it: (summary, objects with their ids).
fn forged_vault(author: &RootKeypair) -> (VaultSummary, Vec<WireObject>, TempDir) {
    forged_vault_of(author, &[("github", b"planted")])
}

/// Vault "Forged" by `author`, one commit for each of `secrets`: its
/// summary and its objects in the order a device sends them (each after
/// what it names), beside the scratch store that made them.
fn forged_vault_of(
    author: &RootKeypair,
    secrets: &[(&str, &[u8])],
) -> (VaultSummary, Vec<WireObject>, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(&dir.path().join("scratch.redb"), author).unwrap();
    let vaults = Vaults::new(&db);
    let vault = vaults.create("Forged", author).unwrap();
    for (name, value) in secrets {
        vault.write_secret(&db, author, name, value).unwrap();
    }
    let head = vault.head(&db).unwrap();
    let objects = vault
        .objects_between(&db, &head, &[])
        .unwrap()
        .into_iter()
        .map(|(id, object)| WireObject {
            base: None,
            part: None,
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
        access: None,
    };
    (summary, objects, dir)
}

/// Serve `summary` and `objects` to whoever asks.
fn serve_vault(rogue: &mut Rogue, summary: VaultSummary, objects: Vec<WireObject>) {
    let chains = rogue.chain_answer();
    rogue.answer_with(Duration::ZERO, move |request| match request {
        Request::Vaults => Response::Vaults {
            vaults: vec![summary.clone()],
        },
        Request::Fetch { .. } => Response::Objects {
            total: objects.len() as u32,
            objects: objects.clone(),
        },
        other => quiet(chains.clone())(other),
    });
}

/// Once `armed`, list `summary` and answer a fetch of it with `objects`
/// after `delay`, telling `asked` the fetch came; before, list nothing.
fn offer_vault_once_armed(
    rogue: &mut Rogue,
    armed: &Arc<AtomicBool>,
    (summary, objects): (VaultSummary, Vec<WireObject>),
    delay: Duration,
    asked: Option<Arc<Notify>>,
) {
    list_vault_once_armed(rogue, armed, summary, move |_| {
        if let Some(asked) = &asked {
            asked.notify_one();
        }
        let answer = Response::Objects {
            total: objects.len() as u32,
            objects: objects.clone(),
        };
        (delay, answer)
    });
}

/// A fetch as asked: objects taken in whole, bytes of the next (a blob
/// sent in parts), and the page asked for.
#[derive(Clone, Copy)]
struct Asked {
    skip: u32,
    from: u64,
    page: u32,
}

/// The pages a device asked for, each by its `skip`, in order.
type AskedLog = Arc<Mutex<Vec<u32>>>;

/// A log of the pages asked for, and `fetch` logging each there before it
/// answers, told how many times that page was asked for before.
fn logging_asked(
    fetch: impl Fn(Asked, usize) -> (Duration, Response) + Send + Sync + 'static,
) -> (
    AskedLog,
    impl Fn(Asked) -> (Duration, Response) + Send + Sync + 'static,
) {
    let asked = AskedLog::default();
    let log = Arc::clone(&asked);
    let logged = move |request: Asked| {
        let times = {
            let mut asked = log.lock().unwrap();
            let times = asked.iter().filter(|s| **s == request.skip).count();
            asked.push(request.skip);
            times
        };
        fetch(request, times)
    };
    (asked, logged)
}

/// Once `armed`, list `summary` and answer each fetch as `fetch` says
/// (after how long, and what); before, and to all else, be a quiet member.
fn list_vault_once_armed(
    rogue: &mut Rogue,
    armed: &Arc<AtomicBool>,
    summary: VaultSummary,
    fetch: impl Fn(Asked) -> (Duration, Response) + Send + Sync + 'static,
) {
    let chains = rogue.chain_answer();
    let armed = Arc::clone(armed);
    rogue.answer_each(move |request| match request {
        _ if !armed.load(Ordering::SeqCst) => (Duration::ZERO, quiet(chains.clone())(request)),
        Request::Vaults => (
            Duration::ZERO,
            Response::Vaults {
                vaults: vec![summary.clone()],
            },
        ),
        Request::Fetch {
            skip, from, page, ..
        } => fetch(Asked { skip, from, page }),
        other => (Duration::ZERO, quiet(chains.clone())(other)),
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_devices_sending_one_new_vault_at_once_neither_undo_nor_hold_up_each_other() {
    let a = device().await;
    let (mut first, mut second) = (rogue(92).await, rogue(93).await);
    rogue_pairs(&first, &a).await;
    rogue_pairs(&second, &a).await;
    let (summary, objects, _scratch) = forged_vault(&first.keys);
    let mut tampered = objects.clone();
    tampered.iter_mut().find(|o| o.kind == 1).unwrap().data = b"swapped".to_vec();
    // The first device sends the vault broken, after 1.5 s; the second
    // sends it whole, after 1.2 s.
    let armed = Arc::new(AtomicBool::new(false));
    let (asked_first, asked_second) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let offer = (summary.clone(), tampered);
    let slow = Duration::from_millis(1500);
    offer_vault_once_armed(&mut first, &armed, offer, slow, Some(asked_first.clone()));
    let offer = (summary, objects);
    let slower = Duration::from_millis(1200);
    offer_vault_once_armed(
        &mut second,
        &armed,
        offer,
        slower,
        Some(asked_second.clone()),
    );
    first_sync_ended(&a).await;
    armed.store(true, Ordering::SeqCst);
    let node = a.node.clone();
    let first_id = first.id();
    let from_first = tokio::spawn(async move { node.sync_now(first_id).await });
    asked_first.notified().await;
    // While the first transfer is under way, a pull from the second device
    // neither joins it nor waits for it: it goes on without that vault.
    assert!(!a.node.sync_now(second.id()).await.unwrap());
    assert!(a.vault_names().await.is_empty());
    // The first one failing leaves nothing behind ...
    let refusal = from_first.await.unwrap().unwrap_err().to_string();
    assert!(refusal.contains("does not match its id"), "{refusal}");
    // ... and the next pull from the second device brings the vault, nor
    // does the sweep of unfinished copies take its copy meanwhile.
    let (from_second, ()) = tokio::join!(a.node.sync_now(second.id()), async {
        asked_second.notified().await;
        a.node.purge_deleted().await.unwrap();
    });
    assert!(
        from_second.unwrap(),
        "the second device's transfer added it"
    );
    assert_eq!(a.vault_names().await, ["Forged"]);
    assert_eq!(a.read("Forged", "github").await.as_deref(), Some("planted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_cut_off_leaves_no_copy_holding_a_name_after_the_next_purge() {
    let a = device().await;
    let mut rogue = rogue(95).await;
    rogue_pairs(&rogue, &a).await;
    let (summary, objects, _scratch) = forged_vault(&rogue.keys);
    let armed = Arc::new(AtomicBool::new(false));
    let asked = Arc::new(Notify::new());
    let offer = (summary, objects);
    let never = Duration::from_secs(25);
    offer_vault_once_armed(&mut rogue, &armed, offer, never, Some(Arc::clone(&asked)));
    first_sync_ended(&a).await;
    // The transfer is begun, then cut off (as a sync past its deadline is).
    armed.store(true, Ordering::SeqCst);
    tokio::select! {
        done = a.node.sync_now(rogue.id()) => panic!("the sync ended: {done:?}"),
        () = asked.notified() => {}
    }
    armed.store(false, Ordering::SeqCst);
    // Its copy is seen nowhere, but holds the name.
    assert!(a.vault_names().await.is_empty());
    let taken = a.node.create_vault("Forged".into()).await.unwrap_err();
    assert!(taken.to_string().contains("exists"), "{taken}");
    a.node.purge_deleted().await.unwrap();
    a.node.create_vault("Forged".into()).await.unwrap();
    assert_eq!(a.vault_names().await, ["Forged"]);
    assert!(a.read("Forged", "github").await.is_none());
}

/// A transfer cut off part way (by a device too busy to answer, or at the
/// sync's deadline) goes on where it stopped at the next pull, and its copy
/// outlasts the sweep of unfinished copies meanwhile: a vault larger than
/// one sync's worth of a slow link still arrives, instead of beginning
/// again at every try.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_cut_off_part_way_goes_on_where_it_stopped_at_the_next_pull() {
    let a = device().await;
    let mut rogue = rogue(96).await;
    rogue_pairs(&rogue, &a).await;
    let secrets: [(&str, &[u8]); 3] = [("one", b"first"), ("two", b"second"), ("three", b"third")];
    let (summary, objects, _scratch) = forged_vault_of(&rogue.keys, &secrets);
    let total = objects.len() as u32;
    assert!(total >= 7, "{total} objects");
    // One object a page. The third page is refused "busy" the first time
    // it is asked for, and never comes the second time.
    let armed = Arc::new(AtomicBool::new(false));
    let stalled = Arc::new(Notify::new());
    let stall = Arc::clone(&stalled);
    let (asked, fetch) =
        logging_asked(
            move |Asked { skip, from, .. }, times| match (skip, from, times) {
                (2, 0, 0) => (Duration::ZERO, Response::Refused(BUSY.into())),
                (2, 0, 1) => {
                    stall.notify_one();
                    (Duration::from_secs(25), Response::Refused("late".into()))
                }
                (skip, 0, _) => (Duration::ZERO, one_object(&objects, skip, total)),
                _ => (Duration::ZERO, Response::Refused("no parts here".into())),
            },
        );
    list_vault_once_armed(&mut rogue, &armed, summary, fetch);
    first_sync_ended(&a).await;
    armed.store(true, Ordering::SeqCst);
    let busy = a.node.sync_now(rogue.id()).await.unwrap_err().to_string();
    assert!(busy.contains("busy"), "{busy}");
    assert!(a.vault_names().await.is_empty());
    // The next pull is cut off while it waits for its first page (as a
    // sync past its deadline is); the sweep of unfinished copies runs.
    tokio::select! {
        done = a.node.sync_now(rogue.id()) => panic!("the sync ended: {done:?}"),
        () = stalled.notified() => {}
    }
    a.node.purge_deleted().await.unwrap();
    assert!(a.node.sync_now(rogue.id()).await.unwrap());
    holds_forged(&a, &secrets).await;
    // Each try went on from the last page stored: no page came twice.
    let mut expected = vec![0, 1, 2, 2];
    expected.extend(2..total);
    assert_eq!(*asked.lock().unwrap(), expected);
}

/// A backup restored while a device brings one of its vaults here for the
/// first time waits for that transfer and then finds the vault here. Before,
/// the restore took up the transfer's unfinished copy: finished under it,
/// the transfer failed the whole sync ("already exists"); and a restore
/// that failed later (a damaged file) dropped the copy, failing the
/// transfer ("no vault with that name").
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restore_during_a_transfer_of_the_same_new_vault_waits_for_it() {
    const SEED: u8 = 180;
    let backup = forged_backup(SEED).await;
    let (summary, objects, secrets) = (&backup.summary, &backup.objects, FORGED_SECRETS);
    for (file, restores) in [(&backup.whole, true), (&backup.damaged, false)] {
        let a = device().await;
        let mut rogue = rogue(SEED).await;
        rogue_pairs(&rogue, &a).await;
        // One object a page; the third waits for `go` the first time.
        let armed = Arc::new(AtomicBool::new(false));
        let (stalled, go) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (stall, release, listed) = (Arc::clone(&stalled), Arc::clone(&go), Arc::clone(&armed));
        let (summary, objects) = (summary.clone(), objects.clone());
        let total = objects.len() as u32;
        let chains = rogue.chain_answer();
        let waited = AtomicBool::new(false);
        rogue.answer_when(move |request| {
            let now: futures::future::BoxFuture<'static, ()> = Box::pin(async {});
            match request {
                _ if !listed.load(Ordering::SeqCst) => (now, quiet(chains.clone())(request)),
                Request::Vaults => (
                    now,
                    Response::Vaults {
                        vaults: vec![summary.clone()],
                    },
                ),
                Request::Fetch { skip, .. } => {
                    let page = one_object(&objects, skip, total);
                    if skip == 2 && !waited.swap(true, Ordering::SeqCst) {
                        stall.notify_one();
                        let release = Arc::clone(&release);
                        return (Box::pin(async move { release.notified().await }), page);
                    }
                    (now, page)
                }
                other => (now, quiet(chains.clone())(other)),
            }
        });
        first_sync_ended(&a).await;
        armed.store(true, Ordering::SeqCst);
        let node = a.node.clone();
        let id = rogue.id();
        let pull = tokio::spawn(async move { node.sync_now(id).await });
        stalled.notified().await;
        // The transfer's copy is there, unfinished; the restore begins.
        let node = a.node.clone();
        let file = file.clone();
        let mut restore =
            tokio::spawn(async move { node.restore_backup(file, BACKUP_PASSPHRASE.into()).await });
        // Waiting for the transfer, it does not end; before, it ended
        // here, having taken the copy up.
        let early = tokio::time::timeout(Duration::from_secs(2), &mut restore).await;
        go.notify_one();
        let restored = match early {
            Ok(done) => done,
            Err(_) => restore.await,
        }
        .unwrap();
        let pulled = pull.await.unwrap();
        assert!(matches!(pulled, Ok(true)), "the transfer: {pulled:?}");
        if restores {
            let mut restored = restored.unwrap();
            restored.sort_by_key(|r| format!("{r:?}"));
            assert_eq!(
                restored,
                [
                    Restored::Restored("Other".into()),
                    Restored::Unchanged("Forged".into())
                ]
            );
        } else {
            let err = restored.unwrap_err().to_string();
            assert!(err.contains("nothing was restored"), "{err}");
        }
        let mut names = a.vault_names().await;
        names.retain(|name| name != "Other");
        assert_eq!(names, ["Forged"]);
        for (name, value) in secrets {
            let read = a.read("Forged", name).await;
            assert_eq!(read.as_deref().map(str::as_bytes), Some(value));
        }
    }
}

/// A device removed while a pull from it is under way is asked nothing
/// more: the pull ends where it is, with nothing to report. Before, it
/// went on until its connection closed under it (or, between requests,
/// dialled the removed device again for the next), and the sync status
/// showed that failure, of a device no longer there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pull_from_a_device_removed_meanwhile_ends_quietly() {
    let a = device().await;
    let mut rogue = rogue(183).await;
    rogue_pairs(&rogue, &a).await;
    let (summary, objects, _scratch) = forged_vault_of(&rogue.keys, &FORGED_SECRETS);
    let total = objects.len() as u32;
    let (armed, removed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let asked_after = Arc::new(AtomicUsize::new(0));
    let stalled = Arc::new(Notify::new());
    let (listed, gone, counted, stall) = (
        Arc::clone(&armed),
        Arc::clone(&removed),
        Arc::clone(&asked_after),
        Arc::clone(&stalled),
    );
    let chains = rogue.chain_answer();
    rogue.answer_when(move |request| {
        let now: futures::future::BoxFuture<'static, ()> = Box::pin(async {});
        // What a pull asks (a change notice, which asks nothing, may still
        // cross the removal: the revocation is a change A tells devices).
        if gone.load(Ordering::SeqCst) && !matches!(request, Request::Changed) {
            counted.fetch_add(1, Ordering::SeqCst);
        }
        match request {
            _ if !listed.load(Ordering::SeqCst) => (now, quiet(chains.clone())(request)),
            Request::Vaults => (
                now,
                Response::Vaults {
                    vaults: vec![summary.clone()],
                },
            ),
            // The first page comes long after the test has ended.
            Request::Fetch { skip, .. } => {
                stall.notify_one();
                let page = one_object(&objects, skip, total);
                (Box::pin(tokio::time::sleep(Duration::from_secs(60))), page)
            }
            other => (now, quiet(chains.clone())(other)),
        }
    });
    first_sync_ended(&a).await;
    assert_eq!(a.node.sync_status().last_error, None);
    armed.store(true, Ordering::SeqCst);
    let told = rogue
        .client
        .request(a.id(), Request::Changed)
        .await
        .unwrap();
    assert!(matches!(told, Response::Ok), "{told:?}");
    stalled.notified().await;
    assert!(a.node.sync_status().syncing);
    removed.store(true, Ordering::SeqCst);
    a.node.revoke_device(rogue.id()).await.unwrap();
    eventually("the pull ends", &[&a], || async {
        !a.node.sync_status().syncing
    })
    .await;
    assert_eq!(a.node.sync_status().last_error, None);
    assert_eq!(asked_after.load(Ordering::SeqCst), 0);
}

/// What [`forged_backup`]'s vault "Forged" holds.
const FORGED_SECRETS: [(&str, &[u8]); 3] =
    [("one", b"first"), ("two", b"second"), ("three", b"third")];
const BACKUP_PASSPHRASE: &str = "backup passphrase, long enough";

/// A backup of "Forged" (by the rogue of `seed`, as another device of
/// its gestalt got it) and of "Other", a vault of more than one of the
/// file's chunks; whole, and cut short in "Other".
struct ForgedBackup {
    summary: VaultSummary,
    objects: Vec<WireObject>,
    whole: std::path::PathBuf,
    damaged: std::path::PathBuf,
    _dir: TempDir,
    _scratch: TempDir,
}

async fn forged_backup(seed: u8) -> ForgedBackup {
    let dir = tempfile::tempdir().unwrap();
    let (whole, damaged) = (
        dir.path().join("whole.backup"),
        dir.path().join("cut.backup"),
    );
    let mut twin = rogue(seed).await;
    let (summary, objects, scratch) = forged_vault_of(&twin.keys, &FORGED_SECRETS);
    let c = device().await;
    rogue_pairs(&twin, &c).await;
    serve_vault(&mut twin, summary.clone(), objects.clone());
    eventually("the vault arrives", &[&c], || async {
        let _ = c.node.sync_now(twin.id()).await;
        c.vault_names().await == ["Forged"]
    })
    .await;
    c.node.create_vault("Other".into()).await.unwrap();
    let big: String = (0..3_000_000u32)
        .map(|i| char::from(b'a' + (i.wrapping_mul(2_654_435_761) >> 27) as u8 % 26))
        .collect();
    c.write("Other", "big", &big).await;
    c.node
        .create_backup(whole.clone(), BACKUP_PASSPHRASE.into(), None)
        .await
        .unwrap();
    let bytes = std::fs::read(&whole).unwrap();
    std::fs::write(&damaged, &bytes[..bytes.len() - 1000]).unwrap();
    ForgedBackup {
        summary,
        objects,
        whole,
        damaged,
        _dir: dir,
        _scratch: scratch,
    }
}

/// `a` restores `file`, expecting it damaged.
async fn restore_damaged(a: &Device, file: &std::path::Path) {
    let err = a
        .node
        .restore_backup(file.to_owned(), BACKUP_PASSPHRASE.into())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("nothing was restored"), "{err}");
}

/// A backup that fails to restore while a transfer of one of its vaults,
/// new here, waits to go on (cut off part way) takes none of that
/// transfer's progress away: the next pull goes on where it stopped.
/// Before, the restore took up the transfer's copy and dropped it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_restore_takes_no_progress_from_a_transfer_set_aside() {
    let backup = forged_backup(181).await;
    let a = device().await;
    let mut rogue = rogue(181).await;
    rogue_pairs(&rogue, &a).await;
    let (objects, total) = (backup.objects.clone(), backup.objects.len() as u32);
    // One object a page; the third is refused "busy" the first time.
    let (asked, fetch) = logging_asked(move |Asked { skip, .. }, times| match (skip, times) {
        (2, 0) => (Duration::ZERO, Response::Refused(BUSY.into())),
        (skip, _) => (Duration::ZERO, one_object(&objects, skip, total)),
    });
    let armed = Arc::new(AtomicBool::new(false));
    list_vault_once_armed(&mut rogue, &armed, backup.summary.clone(), fetch);
    first_sync_ended(&a).await;
    armed.store(true, Ordering::SeqCst);
    let busy = a.node.sync_now(rogue.id()).await.unwrap_err().to_string();
    assert!(busy.contains("busy"), "{busy}");
    restore_damaged(&a, &backup.damaged).await;
    assert!(a.node.sync_now(rogue.id()).await.unwrap());
    holds_forged(&a, &FORGED_SECRETS).await;
    let mut expected = vec![0, 1, 2];
    expected.extend(2..total);
    assert_eq!(*asked.lock().unwrap(), expected);
}

/// A device that lists a vault whose transfer from another device was cut
/// off, and then fails to send it (busy, or refused), takes none of that
/// transfer's progress away: it still goes on where it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_device_failing_to_send_a_vault_takes_no_other_devices_progress_away() {
    let a = device().await;
    let (mut first, mut second) = (rogue(99).await, rogue(100).await);
    rogue_pairs(&first, &a).await;
    rogue_pairs(&second, &a).await;
    let secrets: [(&str, &[u8]); 2] = [("one", b"first"), ("two", b"second")];
    let (summary, objects, _scratch) = forged_vault_of(&first.keys, &secrets);
    let total = objects.len() as u32;
    // The first device sends it one object a page, "busy" at the third
    // the first time; the second lists it and is busy, then refuses.
    let armed = Arc::new(AtomicBool::new(false));
    let (asked, fetch) = logging_asked(move |Asked { skip, .. }, times| {
        if skip == 2 && times == 0 {
            return (Duration::ZERO, Response::Refused(BUSY.into()));
        }
        (Duration::ZERO, one_object(&objects, skip, total))
    });
    list_vault_once_armed(&mut first, &armed, summary.clone(), fetch);
    let refusals = AtomicUsize::new(0);
    list_vault_once_armed(&mut second, &armed, summary, move |_| {
        let reason = match refusals.fetch_add(1, Ordering::SeqCst) {
            0 => BUSY,
            _ => "not today",
        };
        (Duration::ZERO, Response::Refused(reason.into()))
    });
    first_sync_ended(&a).await;
    armed.store(true, Ordering::SeqCst);
    assert!(a.node.sync_now(first.id()).await.is_err());
    for _ in 0..2 {
        assert!(a.node.sync_now(second.id()).await.is_err());
        a.node.purge_deleted().await.unwrap();
    }
    a.node.sync_now(first.id()).await.unwrap();
    assert_eq!(a.vault_names().await, ["Forged"]);
    let mut expected = vec![0, 1, 2];
    expected.extend(2..total);
    assert_eq!(*asked.lock().unwrap(), expected);
}

/// The objects of `vault` in `db` from `haves` to its head, as a device
/// sends them.
fn wire_objects(db: &Db, vault: &Vault, haves: &[String]) -> Vec<WireObject> {
    let head = vault.head(db).unwrap();
    vault
        .objects_between(db, &head, haves)
        .unwrap()
        .into_iter()
        .map(|(id, object)| WireObject {
            base: object.base.clone(),
            part: None,
            id,
            kind: kind_tag(object.kind),
            data: object.data.clone(),
        })
        .collect()
}

/// A vault "Forged" the rogue made in `_scratch`: its first version, sent
/// whole; then three more edits (the first of them is `middle`), which a
/// fetch from the first gets one object a page from `later`, "busy" at the
/// third until `go_on` is set (so no pull in the background goes on
/// before the test lets it). Each fetch of them is logged in `asked`.
struct CatchUp {
    first: String,
    middle: (VaultSummary, Vec<WireObject>),
    total: u32,
    caught_up: Arc<AtomicBool>,
    go_on: Arc<AtomicBool>,
    asked: Fetches,
    _scratch: TempDir,
}

/// Each fetch a rogue was asked: where from, naming which versions.
type Fetches = Arc<Mutex<Vec<(u32, Vec<String>)>>>;

/// Have `rogue` list and send a [`CatchUp`]: its first version until
/// `caught_up` is set, its last after.
fn serve_catch_up(rogue: &mut Rogue) -> CatchUp {
    let scratch = tempfile::tempdir().unwrap();
    let db = Db::create(&scratch.path().join("scratch.redb"), &rogue.keys).unwrap();
    let vault = Vaults::new(&db).create("Forged", &rogue.keys).unwrap();
    vault
        .write_secret(&db, &rogue.keys, "one", b"first")
        .unwrap();
    let first = vault.head(&db).unwrap();
    let whole = wire_objects(&db, &vault, &[]);
    let summary = |head: &str| VaultSummary {
        id: vault.id().to_string(),
        name: "Forged".into(),
        renamed_at: 0,
        head: head.to_owned(),
        access: None,
    };
    vault
        .write_secret(&db, &rogue.keys, "two", b"second")
        .unwrap();
    let middle = (
        summary(&vault.head(&db).unwrap()),
        wire_objects(&db, &vault, std::slice::from_ref(&first)),
    );
    for (name, value) in [("six", b"sixth!"), ("ten", b"tenth!")] {
        vault.write_secret(&db, &rogue.keys, name, value).unwrap();
    }
    let (before, after) = (summary(&first), summary(&vault.head(&db).unwrap()));
    let later = wire_objects(&db, &vault, std::slice::from_ref(&first));
    let total = later.len() as u32;
    assert!(total >= 6, "{total} objects");
    let caught_up = Arc::new(AtomicBool::new(false));
    let go_on = Arc::new(AtomicBool::new(false));
    let asked = Fetches::default();
    let (listing, going_on, asked_for) = (
        Arc::clone(&caught_up),
        Arc::clone(&go_on),
        Arc::clone(&asked),
    );
    let chains = rogue.chain_answer();
    rogue.answer_each(move |request| {
        let catching_up = listing.load(Ordering::SeqCst);
        let answer = match request {
            Request::Vaults => Response::Vaults {
                vaults: vec![if catching_up { &after } else { &before }.clone()],
            },
            Request::Fetch { .. } if !catching_up => Response::Objects {
                objects: whole.clone(),
                total: whole.len() as u32,
            },
            Request::Fetch { skip, haves, .. } => {
                asked_for.lock().unwrap().push((skip, haves));
                if skip == 2 && !going_on.load(Ordering::SeqCst) {
                    Response::Refused(BUSY.into())
                } else {
                    one_object(&later, skip, total)
                }
            }
            other => quiet(chains.clone())(other),
        };
        (Duration::ZERO, answer)
    });
    CatchUp {
        first,
        middle,
        total,
        caught_up,
        go_on,
        asked,
        _scratch: scratch,
    }
}

/// A has the rogue's first version of its [`CatchUp`], and the catch-up
/// to its last was cut off at the third page ("busy").
async fn catch_up_cut_off(a: &Device, rogue: &Rogue, catch_up: &CatchUp) {
    first_sync_ended(a).await;
    eventually("A has the first version", &[a], || async {
        a.read("Forged", "one").await.is_some()
    })
    .await;
    catch_up.caught_up.store(true, Ordering::SeqCst);
    let busy = a.node.sync_now(rogue.id()).await.unwrap_err().to_string();
    assert!(busy.contains("busy"), "{busy}");
}

/// A catch-up of a vault cut off part way goes on where it stopped after
/// an edit here: the versions it said it had are all still here, so it
/// lacks what it lacked, and it does not begin again (a large catch-up
/// over a slow link would never end while its owner kept editing).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_catch_up_cut_off_goes_on_where_it_stopped_after_an_edit_here() {
    let a = device().await;
    let mut rogue = rogue(103).await;
    rogue_pairs(&rogue, &a).await;
    let catch_up = serve_catch_up(&mut rogue);
    catch_up_cut_off(&a, &rogue, &catch_up).await;
    let CatchUp {
        first,
        total,
        go_on: edited,
        asked,
        ..
    } = &catch_up;
    let (first, total) = (first.clone(), *total);
    // An edit here before the next pull: A's newest version is one the
    // rogue never had.
    a.write("Forged", "mine", "local").await;
    edited.store(true, Ordering::SeqCst);
    let mine = a.head("Forged").await.unwrap();
    assert_ne!(mine, first);
    a.node.sync_now(rogue.id()).await.unwrap();
    // The try after the edit went on from the last page stored, naming
    // the versions the first named (all still here), not the edit; no
    // try began again.
    let log = asked.lock().unwrap().clone();
    let skips: Vec<u32> = log.iter().map(|(skip, _)| *skip).collect();
    let after_edit = skips.iter().rposition(|skip| *skip == 2).unwrap();
    assert_eq!(
        skips[after_edit..],
        (2..total).collect::<Vec<_>>(),
        "{skips:?}"
    );
    assert_eq!(
        skips.iter().filter(|skip| **skip == 0).count(),
        1,
        "{skips:?}"
    );
    for (_, haves) in &log[after_edit..] {
        assert_eq!(haves, std::slice::from_ref(&first));
    }
    // The rogue's version is here whole: the next pull asks for nothing.
    // (Which of the two merges the diverged versions depends on their
    // keys; here nothing is lost either way.)
    a.node.sync_now(rogue.id()).await.unwrap();
    assert_eq!(asked.lock().unwrap().len(), log.len());
    for (name, value) in [("one", "first"), ("mine", "local")] {
        assert_eq!(
            a.read("Forged", name).await.as_deref(),
            Some(value),
            "{name}"
        );
    }
}

/// What a catch-up cut off part way stored (objects no version here
/// reaches yet) is collected at the next lock, with the store to itself;
/// after the unlock the pull fetches the version again, from its first
/// page, and ends with all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_a_catch_up_cut_off_stored_goes_at_a_lock_and_the_next_pull_brings_it_all() {
    let (a, keys) = device_and_keys().await;
    let mut rogue = rogue(106).await;
    rogue_pairs(&rogue, &a).await;
    let catch_up = serve_catch_up(&mut rogue);
    catch_up_cut_off(&a, &rogue, &catch_up).await;
    a.node.lock().await.unwrap();
    {
        // Nothing left to collect: the lock did.
        let mut db = Db::open(&a._dir.path().join("node").join("db.redb"), &keys).unwrap();
        assert_eq!(Vaults::collect_garbage(&mut db).unwrap().records, 0);
    }
    catch_up.go_on.store(true, Ordering::SeqCst);
    let asked_before = catch_up.asked.lock().unwrap().len();
    a.node.unlock(Password::new(PASSWORD.into())).await.unwrap();
    dial(&rogue, &a).await;
    eventually("A has the rogue's last version", &[&a], || async {
        a.read("Forged", "ten").await.is_some()
    })
    .await;
    let log = catch_up.asked.lock().unwrap().clone();
    assert_eq!(log[asked_before].0, 0, "begun again: {log:?}");
    for (name, value) in [
        ("one", "first"),
        ("two", "second"),
        ("six", "sixth!"),
        ("ten", "tenth!"),
    ] {
        assert_eq!(
            a.read("Forged", name).await.as_deref(),
            Some(value),
            "{name}"
        );
    }
}

/// A node that never locks collects what no version needs at a quiet
/// moment, but never what a transfer set aside keeps to go on with: the
/// catch-up goes on where it stopped, not from its first object.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quiet_moments_collection_leaves_a_catch_up_set_aside_to_go_on() {
    let a = device().await;
    let mut rogue = rogue(107).await;
    rogue_pairs(&rogue, &a).await;
    let catch_up = serve_catch_up(&mut rogue);
    catch_up_cut_off(&a, &rogue, &catch_up).await;
    let stored = a.node.store_space().await.unwrap().stored_bytes;
    assert_eq!(a.node.collect_if_quiet(Duration::ZERO).await.unwrap(), None);
    assert_eq!(a.node.store_space().await.unwrap().stored_bytes, stored);
    catch_up.go_on.store(true, Ordering::SeqCst);
    let asked_before = catch_up.asked.lock().unwrap().len();
    a.node.sync_now(rogue.id()).await.unwrap();
    let log = catch_up.asked.lock().unwrap().clone();
    assert!(log[asked_before].0 > 0, "went on: {log:?}");
    assert_eq!(a.read("Forged", "ten").await.as_deref(), Some("tenth!"));
    // It was due all along: once nothing is kept, it runs.
    assert!(collected_when_idle(&a).await.is_some());
}

/// A collection at a quiet moment (`Node::collect_if_quiet`), tried
/// until none of the device's own pulls is under way (within 30 s).
async fn collected_when_idle(a: &Device) -> Option<polykey_vaults::Collected> {
    for _ in 0..600 {
        let collected = a.node.collect_if_quiet(Duration::ZERO).await.unwrap();
        if collected.is_some() {
            return collected;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// A catch-up cut off part way is asked for again naming the versions
/// here when another device brought a version meanwhile (it may hold much
/// of what the catch-up still had to send over a slow link).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_catch_up_cut_off_names_the_versions_another_device_brought_meanwhile() {
    let a = device().await;
    let (mut rogue, mut other) = (rogue(104).await, rogue(105).await);
    rogue_pairs(&rogue, &a).await;
    rogue_pairs(&other, &a).await;
    let catch_up = serve_catch_up(&mut rogue);
    let (middle, objects) = catch_up.middle.clone();
    let armed = Arc::new(AtomicBool::new(false));
    list_vault_once_armed(&mut other, &armed, middle.clone(), move |_| {
        let page = Response::Objects {
            total: objects.len() as u32,
            objects: objects.clone(),
        };
        (Duration::ZERO, page)
    });
    catch_up_cut_off(&a, &rogue, &catch_up).await;
    // The other device brings the middle version: A moves on to it.
    armed.store(true, Ordering::SeqCst);
    a.node.sync_now(other.id()).await.unwrap();
    assert_eq!(
        a.head("Forged").await.as_deref(),
        Some(middle.head.as_str())
    );
    catch_up.go_on.store(true, Ordering::SeqCst);
    a.node.sync_now(rogue.id()).await.unwrap();
    let log = catch_up.asked.lock().unwrap().clone();
    let restart = log.iter().rposition(|(skip, _)| *skip == 0).unwrap();
    assert!(restart > 0, "{log:?}");
    assert!(log[restart].1.contains(&middle.head), "{log:?}");
    assert_eq!(a.read("Forged", "ten").await.as_deref(), Some("tenth!"));
}

/// A transfer that says another size when it goes on after being cut off
/// is refused (the same version from the same copy is planned the same
/// way every time), and the next pull begins it again from the first
/// object instead of mixing two plans in one copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_that_changes_its_size_when_resumed_is_refused_and_begun_again() {
    let a = device().await;
    let mut rogue = rogue(101).await;
    rogue_pairs(&rogue, &a).await;
    let secrets: [(&str, &[u8]); 2] = [("one", b"first"), ("two", b"second")];
    let (summary, objects, _scratch) = forged_vault_of(&rogue.keys, &secrets);
    let total = objects.len() as u32;
    // One object a page; "busy" at the third the first time, and a size
    // one larger the second.
    let armed = Arc::new(AtomicBool::new(false));
    let (asked, fetch) = logging_asked(move |Asked { skip, .. }, times| match (skip, times) {
        (2, 0) => (Duration::ZERO, Response::Refused(BUSY.into())),
        (2, 1) => (Duration::ZERO, one_object(&objects, skip, total + 1)),
        _ => (Duration::ZERO, one_object(&objects, skip, total)),
    });
    list_vault_once_armed(&mut rogue, &armed, summary, fetch);
    first_sync_ended(&a).await;
    armed.store(true, Ordering::SeqCst);
    let busy = a.node.sync_now(rogue.id()).await.unwrap_err().to_string();
    assert!(busy.contains("busy"), "{busy}");
    let changed = a.node.sync_now(rogue.id()).await.unwrap_err().to_string();
    assert!(changed.contains("changed its size"), "{changed}");
    assert!(a.vault_names().await.is_empty());
    assert!(a.node.sync_now(rogue.id()).await.unwrap());
    holds_forged(&a, &secrets).await;
    let mut expected = vec![0, 1, 2, 2];
    expected.extend(0..total);
    assert_eq!(*asked.lock().unwrap(), expected);
}

/// A page of more objects than any device sends (each a few bytes on the
/// wire, over a hundred once decoded) is refused while it is decoded, and
/// as bad data, not as a cut-off: the transfer is not set aside to be
/// asked for again every few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_page_of_more_objects_than_any_device_sends_is_refused_as_it_is_read() {
    let a = device().await;
    let mut rogue = rogue(102).await;
    rogue_pairs(&rogue, &a).await;
    let (summary, objects, _scratch) = forged_vault(&rogue.keys);
    let count = polykey_network::protocol::MAX_PAGE_OBJECTS + 1;
    let total = count as u32 + 1;
    let empty = WireObject {
        base: None,
        part: None,
        id: String::new(),
        kind: 1,
        data: Vec::new(),
    };
    let flood = Response::Objects {
        objects: vec![empty; count],
        total,
    };
    // A first page of one real object, then the flood.
    let armed = Arc::new(AtomicBool::new(false));
    let (asked, fetch) = logging_asked(move |Asked { skip, .. }, _| {
        let page = match skip {
            0 => one_object(&objects, 0, total),
            _ => flood.clone(),
        };
        (Duration::ZERO, page)
    });
    list_vault_once_armed(&mut rogue, &armed, summary, fetch);
    first_sync_ended(&a).await;
    armed.store(true, Ordering::SeqCst);
    for _ in 0..2 {
        let error = a.node.sync_now(rogue.id()).await.unwrap_err().to_string();
        assert!(error.contains("at most 131072"), "{error}");
    }
    assert!(a.vault_names().await.is_empty());
    assert_eq!(*asked.lock().unwrap(), [0, 1, 0, 1]);
}

/// The page at `at` of the transfer `plan` of `vault` in `db`, as a device
/// sends it for a page of `budget` bytes (a blob stored in chunks goes in
/// parts).
fn device_page(
    (db, vault, plan): (&Db, &Vault, &SendPlan),
    at: (usize, usize),
    budget: usize,
) -> Vec<WireObject> {
    match vault.planned_part_page(db, plan, at, budget).unwrap() {
        Page::Objects(objects) => objects
            .into_iter()
            .map(|(id, object)| WireObject {
                base: object.base.clone(),
                id,
                kind: kind_tag(object.kind),
                data: object.data.clone(),
                part: None,
            })
            .collect(),
        Page::Part(part) => vec![WireObject {
            base: None,
            id: part.id.clone(),
            kind: Part::kind_tag(),
            data: part.data.to_vec(),
            part: Some(WirePart {
                offset: part.offset as u64,
                len: part.len as u64,
            }),
        }],
    }
}

/// `a` lists vault "Forged" alone, holding each of `secrets`.
async fn holds_forged(a: &Device, secrets: &[(&str, &[u8])]) {
    assert_eq!(a.vault_names().await, ["Forged"]);
    for (name, value) in secrets {
        let read = a.read("Forged", name).await;
        assert_eq!(read.as_deref().map(str::as_bytes), Some(*value));
    }
}

/// A page of the one object at `skip` of `objects`, of a transfer of
/// `total`.
fn one_object(objects: &[WireObject], skip: u32, total: u32) -> Response {
    let skip = skip as usize;
    Response::Objects {
        total,
        objects: objects[skip..skip + 1].to_vec(),
    }
}

/// Over a link too slow to carry a whole page within the request timeout,
/// a fetch asks for smaller pages (a secret in parts of one chunk) and the
/// vault arrives, where each try used to time out on the same large part.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_a_link_too_slow_for_a_whole_page_the_pages_get_smaller_and_the_vault_arrives() {
    let timeout = Duration::from_secs(3);
    let network = NetworkOptions {
        request_timeout: timeout,
        ..NetworkOptions::loopback()
    };
    let (a, _) = device_with(network).await;
    let mut rogue = rogue(98).await;
    rogue_pairs(&rogue, &a).await;
    let large: Vec<u8> = (0..2 * 1024 * 1024u32)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let secrets: [(&str, &[u8]); 2] = [("small", b"first"), ("large", &large)];
    let (summary, _, scratch) = forged_vault_of(&rogue.keys, &secrets);
    let db = Db::open(&scratch.path().join("scratch.redb"), &rogue.keys).unwrap();
    let vault = Vaults::new(&db).open("Forged").unwrap();
    let plan = vault.send_plan(&db, &summary.head, &[]).unwrap();
    // A link that carries a chunk of a secret (1 MiB) in 1.6 s: a part of
    // two, as a whole page holds, takes 3.2 s, past the timeout.
    let per_byte = Duration::from_millis(1600).as_secs_f64() / (1024.0 * 1024.0);
    let armed = Arc::new(AtomicBool::new(false));
    let asked = Arc::new(Mutex::new(Vec::<(u32, u64, u32)>::new()));
    let asked_for = Arc::clone(&asked);
    list_vault_once_armed(&mut rogue, &armed, summary, move |asked| {
        let Asked { skip, from, page } = asked;
        asked_for.lock().unwrap().push((skip, from, page));
        let at = (skip as usize, from as usize);
        let objects = device_page((&db, &vault, &plan), at, page_budget(page));
        let bytes: usize = objects.iter().map(|o| o.data.len()).sum();
        let delay = Duration::from_secs_f64(bytes as f64 * per_byte);
        let total = plan.total() as u32;
        (delay, Response::Objects { total, objects })
    });
    first_sync_ended(&a).await;
    armed.store(true, Ordering::SeqCst);
    // The first try's first part of the large secret never comes in time;
    // the next asks for parts of one chunk, which do.
    let late = a.node.sync_now(rogue.id()).await.unwrap_err().to_string();
    assert!(late.contains("request"), "{late}");
    a.node.sync_now(rogue.id()).await.unwrap();
    let read = a.read("Forged", "large").await.unwrap();
    assert!(read.as_bytes() == large, "the large secret arrived whole");
    let asked = asked.lock().unwrap().clone();
    let (blob, _, _) = *asked.iter().find(|(_, from, _)| *from > 0).unwrap();
    let parts: Vec<(u64, u32)> = asked
        .iter()
        .filter(|(skip, _, _)| *skip == blob)
        .map(|(_, from, page)| (*from, *page))
        .collect();
    let least = MIN_PAGE_BYTES as u32;
    assert_eq!(
        parts.len(),
        4,
        "one part of two chunks, then three of one: {asked:?}"
    );
    assert_eq!(
        parts[0],
        (0, 0),
        "the first asked for a whole page: {asked:?}"
    );
    assert_eq!(parts[1], (0, least), "{asked:?}");
    assert!(
        parts[1..].iter().all(|(_, page)| *page == least),
        "{asked:?}"
    );
}

/// The chunks of a secret stored as its parts came go when its transfer
/// is refused: here a peer sends the first part of a large secret added to
/// a vault this device holds, then an empty page where the next part
/// belongs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_refused_after_a_part_was_stored_leaves_none_of_its_chunks() {
    let a = device().await;
    let mut rogue = rogue(104).await;
    rogue_pairs(&rogue, &a).await;
    let (first, _, scratch) = forged_vault_of(&rogue.keys, &[("small", b"first")]);
    let db = Db::open(&scratch.path().join("scratch.redb"), &rogue.keys).unwrap();
    let vault = Vaults::new(&db).open("Forged").unwrap();
    let large: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    vault
        .write_secret(&db, &rogue.keys, "large", &large)
        .unwrap();
    let second = VaultSummary {
        head: vault.head(&db).unwrap(),
        ..first.clone()
    };
    let plans = [
        vault.send_plan(&db, &first.head, &[]).unwrap(),
        vault
            .send_plan(&db, &second.head, std::slice::from_ref(&first.head))
            .unwrap(),
    ];
    // 0: a quiet member; 1: the vault as first written, sent whole; 2:
    // with the large secret, its first part, then an empty page.
    let phase = Arc::new(AtomicUsize::new(0));
    let now = Arc::clone(&phase);
    let chains = rogue.chain_answer();
    rogue.answer_each(move |request| {
        let phase = now.load(Ordering::SeqCst);
        let answer = match request {
            _ if phase == 0 => quiet(chains.clone())(request),
            Request::Vaults => Response::Vaults {
                vaults: vec![if phase == 1 { &first } else { &second }.clone()],
            },
            Request::Fetch {
                skip, from, page, ..
            } => {
                let plan = &plans[phase - 1];
                let objects = if phase == 1 || from == 0 {
                    device_page((&db, &vault, plan), (skip as usize, 0), page_budget(page))
                } else {
                    Vec::new()
                };
                let total = plan.total() as u32;
                Response::Objects { total, objects }
            }
            other => quiet(chains.clone())(other),
        };
        (Duration::ZERO, answer)
    });
    first_sync_ended(&a).await;
    phase.store(1, Ordering::SeqCst);
    a.node.sync_now(rogue.id()).await.unwrap();
    assert_eq!(a.read("Forged", "small").await.as_deref(), Some("first"));
    let before = a.node.store_space().await.unwrap().stored_bytes;
    phase.store(2, Ordering::SeqCst);
    let refused = a.node.sync_now(rogue.id()).await.unwrap_err().to_string();
    assert!(refused.contains("stopped short"), "{refused}");
    // The refused transfer stored its first part (two chunks of 1 MiB) as
    // it came; none of it is left.
    let after = a.node.store_space().await.unwrap().stored_bytes;
    assert!(
        after < before + 512 * 1024,
        "{} KiB left by the refused transfer",
        after.saturating_sub(before) / 1024
    );
}

/// Of a secret half received in parts when its transfer is cut off, the
/// next pull asks for the part after the last one taken in: a large
/// secret over a slow link arrives over several syncs too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secret_half_received_when_its_transfer_is_cut_off_goes_on_from_its_next_part() {
    let a = device().await;
    let mut rogue = rogue(97).await;
    rogue_pairs(&rogue, &a).await;
    let large: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let secrets: [(&str, &[u8]); 3] = [("small", b"first"), ("large", &large), ("last", b"third")];
    let (summary, _, scratch) = forged_vault_of(&rogue.keys, &secrets);
    let db = Db::open(&scratch.path().join("scratch.redb"), &rogue.keys).unwrap();
    let vault = Vaults::new(&db).open("Forged").unwrap();
    let plan = vault.send_plan(&db, &summary.head, &[]).unwrap();
    let plan_total = plan.total() as u32;
    // As a device sends it for the smallest pages, one object (or one part
    // of the large secret) a page; the second part is refused "busy" the
    // first time.
    let armed = Arc::new(AtomicBool::new(false));
    let asked = Arc::new(Mutex::new(Vec::<(u32, u64)>::new()));
    let asked_for = Arc::clone(&asked);
    list_vault_once_armed(
        &mut rogue,
        &armed,
        summary,
        move |Asked { skip, from, .. }| {
            let mut asked = asked_for.lock().unwrap();
            let first_part_after = !asked.iter().any(|(_, from)| *from > 0);
            asked.push((skip, from));
            if from > 0 && first_part_after {
                return (Duration::ZERO, Response::Refused(BUSY.into()));
            }
            let at = (skip as usize, from as usize);
            let objects = device_page((&db, &vault, &plan), at, 1);
            let total = plan.total() as u32;
            (Duration::ZERO, Response::Objects { total, objects })
        },
    );
    first_sync_ended(&a).await;
    armed.store(true, Ordering::SeqCst);
    let busy = a.node.sync_now(rogue.id()).await.unwrap_err().to_string();
    assert!(busy.contains("busy"), "{busy}");
    assert!(a.node.sync_now(rogue.id()).await.unwrap());
    let read = a.read("Forged", "large").await.unwrap();
    assert!(read.as_bytes() == large, "the large secret arrived whole");
    // The first try stopped at the second part; the second asked for it
    // again, and for nothing before it.
    let asked = asked.lock().unwrap().clone();
    let cut = asked.iter().position(|(_, from)| *from > 0).unwrap();
    let (blob, second_part) = asked[cut];
    let first_try = &asked[..cut];
    assert!(first_try.windows(2).all(|w| w[0].0 < w[1].0), "{asked:?}");
    assert!(first_try.iter().all(|(_, from)| *from == 0), "{asked:?}");
    assert_eq!(first_try.last(), Some(&(blob, 0)), "{asked:?}");
    let then = &asked[cut + 1..];
    let parts = then.iter().take_while(|(skip, _)| *skip == blob).count();
    assert_eq!(then[0], (blob, second_part), "{asked:?}");
    assert!(
        then[..parts].windows(2).all(|w| w[0].1 < w[1].1),
        "{asked:?}"
    );
    let rest: Vec<_> = (blob + 1..plan_total).map(|skip| (skip, 0)).collect();
    assert_eq!(then[parts..], rest, "{asked:?}");
}

/// A vault this device purged, still listed by a device that has not:
/// at the deleted version it is not fetched at all; at an older version
/// (fetched, then refused) it does not fail the sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_vault_purged_here_and_listed_elsewhere_neither_refetches_nor_fails_the_sync() {
    let (a, keys) = device_and_keys().await;
    let mut rogue = rogue(94).await;
    rogue_pairs(&rogue, &a).await;
    let (summary, objects, scratch) = forged_vault(&rogue.keys);
    // The vault's first version (made with it, empty), and what it holds.
    let older = {
        let db = Db::open(&scratch.path().join("scratch.redb"), &rogue.keys).unwrap();
        let vault = Vaults::new(&db).open("Forged").unwrap();
        let first = vault.log(&db, None).unwrap().pop().unwrap().id;
        let wanted: Vec<String> = vault
            .objects_between(&db, &first, &[])
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let objects: Vec<WireObject> = objects
            .iter()
            .filter(|o| wanted.contains(&o.id))
            .cloned()
            .collect();
        let summary = VaultSummary {
            head: first,
            ..summary.clone()
        };
        (summary, objects)
    };
    let offer = Arc::new(Mutex::new((summary, objects)));
    let fetches = Arc::new(AtomicUsize::new(0));
    let chains = rogue.chain_answer();
    let (offered, counted) = (Arc::clone(&offer), Arc::clone(&fetches));
    rogue.answer_with(Duration::ZERO, move |request| match request {
        Request::Vaults => Response::Vaults {
            vaults: vec![offered.lock().unwrap().0.clone()],
        },
        Request::Fetch { .. } => {
            counted.fetch_add(1, Ordering::SeqCst);
            let objects = offered.lock().unwrap().1.clone();
            Response::Objects {
                total: objects.len() as u32,
                objects,
            }
        }
        other => quiet(chains.clone())(other),
    });
    eventually("A has the vault", &[&a], || async {
        a.vault_names().await == ["Forged"]
    })
    .await;
    first_sync_ended(&a).await;
    a.node.delete_vault("Forged".into()).await.unwrap();
    // Thirty-one days on (the recovery window is 30): purged here, on the
    // store itself while the node is locked.
    a.node.lock().await.unwrap();
    {
        let db = Db::open(&a._dir.path().join("node").join("db.redb"), &keys).unwrap();
        let later = now_ms() + 31 * 24 * 3600 * 1000;
        assert_eq!(Vaults::new(&db).purge_expired(later).unwrap(), 1);
    }
    a.node.unlock(Password::new(PASSWORD.into())).await.unwrap();
    dial(&rogue, &a).await;
    first_sync_ended(&a).await;
    fetches.store(0, Ordering::SeqCst);
    // At the version it was deleted at: not fetched again.
    assert!(!a.node.sync_now(rogue.id()).await.unwrap());
    assert_eq!(fetches.load(Ordering::SeqCst), 0, "nothing was fetched");
    assert!(a.vault_names().await.is_empty());
    // At an older version: fetched, refused, and the sync still succeeds.
    *offer.lock().unwrap() = older;
    assert!(!a.node.sync_now(rogue.id()).await.unwrap());
    assert!(fetches.load(Ordering::SeqCst) > 0);
    assert!(a.vault_names().await.is_empty());
    assert!(a.node.deleted_vaults_dto().await.unwrap().is_empty());
}

async fn refused_and_unchanged(a: &Device, rogue: NodeId, expect: &str) {
    let before = a.vault_names().await;
    let head = a.head("Personal").await;
    let err = a.node.sync_now(rogue).await.unwrap_err();
    assert!(
        matches!(
            err,
            NodeError::Vault(_) | NodeError::PeerRefused(_) | NodeError::BadPeerData(_)
        ),
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
    serve_vault(&mut rogue, summary, objects);
    refused_and_unchanged(&a, rogue.id(), "outside the gestalt").await;
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
    serve_vault(&mut rogue, summary, objects);
    refused_and_unchanged(&a, rogue.id(), "does not match its id").await;
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
    serve_vault(&mut rogue, summary, objects);
    refused_and_unchanged(&a, rogue.id(), "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rogue_members_deletion_is_restorable_on_every_device() {
    let (a, b) = (device().await, device().await);
    pair(&a, &b).await;
    let doomed = a.node.create_vault("Personal".into()).await.unwrap();
    a.write("Personal", "github", "pw").await;
    eventually("B has the vault", &[&a, &b], || async {
        b.read("Personal", "github").await.as_deref() == Some("pw")
    })
    .await;
    let mut rogue = rogue(81).await;
    rogue_pairs(&rogue, &a).await;
    // The rogue signs a deletion of the vault at its current head.
    let head = a.head("Personal").await.unwrap();
    let vault_id: VaultId = doomed.id.to_string().parse().unwrap();
    let deletion = Deletion::sign(vault_id, &head, now_ms(), &rogue.keys);
    let wire = WireDeletion {
        vault: deletion.vault.to_string(),
        head: deletion.head.clone(),
        deleted_at: deletion.deleted_at,
        by: deletion.by,
        signature: deletion.signature.clone(),
    };
    let chains = rogue.chain_answer();
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let deleting = Arc::clone(&armed);
    rogue.answer_with(Duration::ZERO, move |request| match request {
        Request::Deletions { .. } if deleting.load(std::sync::atomic::Ordering::SeqCst) => {
            Response::Deletions {
                deletions: vec![wire.clone()],
                more: false,
            }
        }
        other => quiet(chains.clone())(other),
    });
    first_sync_ended(&a).await;
    // A pull that only deletes reports a change; the vault leaves both
    // devices' lists but waits in Recently deleted.
    armed.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(a.node.sync_now(rogue.id()).await.unwrap());
    assert!(a.vault_names().await.is_empty());
    eventually("B obeys the deletion", &[&a, &b], || async {
        b.vault_names().await.is_empty()
    })
    .await;
    for d in [&a, &b] {
        let deleted = d.node.deleted_vaults_dto().await.unwrap();
        assert_eq!(deleted.len(), 1);
        assert_eq!(deleted[0].deleted_by, rogue.id().to_string());
        assert!(deleted[0].purge_at > now_ms() + 29 * 24 * 3600 * 1000);
    }
    // Restored on B: back on both, with its secret and history.
    b.node
        .restore_deleted_vault(doomed.id.to_string())
        .await
        .unwrap();
    eventually("A has the vault back", &[&a, &b], || async {
        a.read("Personal", "github").await.as_deref() == Some("pw")
    })
    .await;
    assert!(a.node.deleted_vaults_dto().await.unwrap().is_empty());
    // The rogue's same deletion, offered again, is stale: an edit (the
    // restore) came after it.
    a.node.sync_now(rogue.id()).await.unwrap();
    assert_eq!(a.vault_names().await, ["Personal"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_and_one_deletions_do_not_break_a_sync() {
    let a = device().await;
    a.node.create_vault("Personal".into()).await.unwrap();
    let mut rogue = rogue(82).await;
    rogue_pairs(&rogue, &a).await;
    let head = a.head("Personal").await.unwrap();
    let mut all: Vec<WireDeletion> = (0..10_001u32)
        .map(|i| {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&i.to_be_bytes());
            let vault: VaultId = data_encoding::HEXLOWER.encode(&id).parse().unwrap();
            let d = Deletion::sign(vault, &head, now_ms(), &rogue.keys);
            WireDeletion {
                vault: d.vault.to_string(),
                head: d.head,
                deleted_at: d.deleted_at,
                by: d.by,
                signature: d.signature,
            }
        })
        .collect();
    all.sort_by(|x, y| x.vault.cmp(&y.vault));
    let all = Arc::new(all);
    let chains = rogue.chain_answer();
    let pages = Arc::new(Mutex::new(0usize));
    let counted = Arc::clone(&pages);
    rogue.answer_with(Duration::ZERO, move |request| match request {
        Request::Deletions { after } => {
            *counted.lock().unwrap() += 1;
            let start = match after {
                Some(last) => all.partition_point(|d| d.vault <= last),
                None => 0,
            };
            let end = (start + 1000).min(all.len());
            Response::Deletions {
                deletions: all[start..end].to_vec(),
                more: end < all.len(),
            }
        }
        other => quiet(chains.clone())(other),
    });
    // Let the sync that pairing starts finish, then count one sync's pages.
    first_sync_ended(&a).await;
    assert_eq!(a.node.sync_status().last_error, None);
    *pages.lock().unwrap() = 0;
    a.node.sync_now(rogue.id()).await.unwrap();
    assert_eq!(*pages.lock().unwrap(), 11, "every page was read");
    assert_eq!(a.vault_names().await, ["Personal"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rename_dated_at_the_end_of_time_neither_pins_nor_panics() {
    let (a, b) = (device().await, device().await);
    pair(&a, &b).await;
    let vault = a.node.create_vault("Personal".into()).await.unwrap();
    let head = a.head("Personal").await.unwrap();
    let mut rogue = rogue(83).await;
    rogue_pairs(&rogue, &a).await;
    let summary = VaultSummary {
        id: vault.id.to_string(),
        name: "Pinned".into(),
        renamed_at: i64::MAX,
        head,
        access: None,
    };
    serve_vault(&mut rogue, summary, Vec::new());
    a.node.sync_now(rogue.id()).await.unwrap();
    // A later rename by the user still wins, and reaches B.
    let name = a.vault_names().await.remove(0);
    a.node.rename_vault(name, "Family".into()).await.unwrap();
    a.node.sync_now(rogue.id()).await.unwrap();
    assert_eq!(a.vault_names().await, ["Family"]);
    eventually("B has the user's name", &[&a, &b], || async {
        b.vault_names().await == ["Family"]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rogue_members_new_device_shows_as_a_notice_and_its_removal_sticks() {
    let a = device().await;
    let mut rogue = rogue(84).await;
    rogue_pairs(&rogue, &a).await;
    // The rogue links a fresh key X on its own chain (X signs too).
    let x = RootKeypair::from_seed(&[85; 32]);
    let chain = Sigchain::new(&rogue.db, rogue.id());
    let payload = chain
        .next_payload(ClaimType::ClaimLinkNode, x.node_id(), now_ms() as u64)
        .unwrap();
    let mut claim = SignedClaim::issue(&payload, &rogue.keys).unwrap();
    claim.countersign(&x).unwrap();
    chain.append(&claim).unwrap();
    let chains = rogue.chain_answer();
    rogue.answer_with(Duration::ZERO, quiet(chains));

    a.node.sync_now(rogue.id()).await.unwrap();
    assert!(a.device_ids().await.contains(&x.node_id()));
    let notices = a.node.device_notices().await.unwrap();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].device, x.node_id());
    assert_eq!(notices[0].added_by, rogue.id());
    let told = a.node.read_notifications(false).await.unwrap();
    assert!(told
        .iter()
        .any(|n| n.text.contains(&x.node_id().to_string())));

    // One action removes it, and the rogue's chain cannot bring it back.
    a.node.revoke_device(x.node_id()).await.unwrap();
    assert!(!a.device_ids().await.contains(&x.node_id()));
    assert!(a.node.device_notices().await.unwrap().is_empty());
    a.node.sync_now(rogue.id()).await.unwrap();
    assert!(
        !a.device_ids().await.contains(&x.node_id()),
        "the removal sticks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_device_is_dropped_everywhere_and_refused() {
    let (a, b, c) = (device().await, device().await, device().await);
    pair(&a, &b).await;
    pair(&a, &c).await;
    a.node.create_vault("Personal".into()).await.unwrap();
    a.write("Personal", "github", "pw").await;
    eventually("every device has the vault", &[&a, &b, &c], || async {
        b.read("Personal", "github").await.is_some() && c.read("Personal", "github").await.is_some()
    })
    .await;
    assert!(
        b.device_ids().await.contains(&c.id()),
        "B learned C through A"
    );

    a.node.revoke_device(c.id()).await.unwrap();
    assert!(!a.device_ids().await.contains(&c.id()));
    // B pulls from C (which says nothing of it) and from A (which does).
    let _ = b.node.sync_now(c.id()).await;
    b.node.sync_now(a.id()).await.unwrap();
    assert!(
        !b.device_ids().await.contains(&c.id()),
        "B obeys A's revocation"
    );
    // C is refused by both, and its later edits go nowhere.
    c.write("Personal", "planted", "x").await;
    for d in [&a, &b] {
        // Refused, or not even let in any more: either way nothing.
        let err = c.node.sync_now(d.id()).await.unwrap_err().to_string();
        assert!(
            err.contains("not one of yours") || err.contains("dial"),
            "{err}"
        );
        let _ = d.node.sync_now(c.id()).await;
        assert!(d.read("Personal", "planted").await.is_none());
    }
    // C's earlier work stays in history.
    assert_eq!(a.read("Personal", "github").await.as_deref(), Some("pw"));
}

/// The resident memory of this process (kB), from /proc.
fn resident_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Whether this test runs in a process of its own; if not, runs test
/// `name` again in one and fails with it. Its memory is measured, and
/// under plain `cargo test` the binary's other tests share its process
/// (one grew it by 202 MiB while this test ran); nextest gives each test
/// its own.
fn alone_in_process(name: &str) -> bool {
    const ALONE: &str = "POLYKEY_TEST_ALONE";
    let own = std::env::var("NEXTEST_EXECUTION_MODE").is_ok_and(|m| m == "process-per-test");
    if own || std::env::var_os(ALONE).is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(ALONE, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{name}, in a process of its own:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_page_larger_than_any_device_sends_is_cut_off() {
    if !alone_in_process("hostile::a_page_larger_than_any_device_sends_is_cut_off") {
        return;
    }
    let a = device().await;
    a.node.create_vault("Personal".into()).await.unwrap();
    let mut rogue = rogue(86).await;
    // 200,000 objects announced, pages of 39 MiB of valid blobs (more than
    // an honest page: 8 MiB plus one 16 MiB secret).
    let (mut summary, _, _scratch) = forged_vault(&rogue.keys);
    summary.id = "00000000000000000000000000000086".into();
    let page: Vec<WireObject> = (0..3u8)
        .map(|i| {
            let data = vec![i; 13 * 1024 * 1024];
            let id = gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Blob, &data)
                .unwrap();
            WireObject {
                base: None,
                part: None,
                id: id.to_string(),
                kind: 1,
                data,
            }
        })
        .collect();
    let later_pages = Arc::new(Mutex::new(0usize));
    let counted = Arc::clone(&later_pages);
    // The page is offered only once pairing is over, so the rogue's own
    // pairing messages never queue behind it (once seen in CI, when reading
    // a page still took ~20 s in a debug build).
    let offering = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let offered = Arc::clone(&offering);
    let chains = Response::Chains(Vec::new());
    rogue.answer_with(Duration::ZERO, move |request| match request {
        Request::Vaults if offered.load(std::sync::atomic::Ordering::SeqCst) => Response::Vaults {
            vaults: vec![summary.clone()],
        },
        Request::Fetch { skip, .. } => {
            if skip > 0 {
                *counted.lock().unwrap() += 1;
            }
            Response::Objects {
                objects: page.clone(),
                total: 200_000,
            }
        }
        other => quiet(chains.clone())(other),
    });
    rogue_pairs(&rogue, &a).await;
    first_sync_ended(&a).await;
    offering.store(true, std::sync::atomic::Ordering::SeqCst);
    let before = resident_kb();
    let peak = Arc::new(Mutex::new(before));
    let sampling = {
        let peak = Arc::clone(&peak);
        tokio::spawn(async move {
            loop {
                let now = resident_kb();
                {
                    let mut p = peak.lock().unwrap();
                    *p = (*p).max(now);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let outcome = a.node.sync_now(rogue.id()).await;
    sampling.abort();
    let error = outcome.expect_err("the page was refused").to_string();
    assert!(error.contains("larger than any device sends"), "{error}");
    assert_eq!(*later_pages.lock().unwrap(), 0, "cut off at the first page");
    let grew_mb = (*peak.lock().unwrap()).saturating_sub(before) / 1024;
    assert!(grew_mb < 200, "memory grew by {grew_mb} MiB");
    assert_eq!(a.vault_names().await, ["Personal"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_from_strangers_does_not_stop_a_device_syncing() {
    let (a, b) = (device().await, device().await);
    pair(&a, &b).await;
    a.node.create_vault("Personal".into()).await.unwrap();
    eventually("B has the vault", &[&a, &b], || async {
        b.vault_names().await == ["Personal"]
    })
    .await;
    let mut floods = Vec::new();
    for seed in 90..98u8 {
        let stranger = rogue(seed).await;
        dial(&stranger, &a).await;
        let (client, target) = (stranger.client.clone(), a.id());
        floods.push(tokio::spawn(async move {
            let _keep = stranger;
            let asks = (0..300).map(|_| client.request(target, Request::Vaults));
            futures::future::join_all(asks).await;
        }));
    }
    // While the strangers flood A, an edit on B reaches A within 5 s.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    b.write("Personal", "github", "pw").await;
    while a.read("Personal", "github").await.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the edit did not arrive within 5 s under the flood"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for flood in floods {
        flood.abort();
    }
}

/// A codec whose requests are the number of bytes to send: it writes them
/// and then neither finishes the request nor lets go of the stream.
#[derive(Clone)]
struct Unfinished;

/// What an unfinished request is made of.
static JUNK: [u8; 64 * 1024] = [0xa5; 64 * 1024];

impl libp2p::request_response::Codec for Unfinished {
    type Protocol = libp2p::StreamProtocol;
    type Request = usize;
    type Response = ();

    async fn read_request<T>(&mut self, _: &Self::Protocol, _: &mut T) -> std::io::Result<usize>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    async fn read_response<T>(&mut self, _: &Self::Protocol, _: &mut T) -> std::io::Result<()>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    async fn write_request<T>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
        bytes: usize,
    ) -> std::io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        use futures::AsyncWriteExt;
        let mut left = bytes;
        while left > 0 {
            let n = left.min(JUNK.len());
            io.write_all(&JUNK[..n]).await?;
            left -= n;
        }
        io.flush().await?;
        futures::future::pending().await
    }

    async fn write_response<T>(
        &mut self,
        _: &Self::Protocol,
        _: &mut T,
        _: (),
    ) -> std::io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        Ok(())
    }
}

/// A stranger that connects to `target` and opens `streams` requests of
/// `bytes` each that it never finishes; the task counts the requests that
/// failed (the target dropped them) until it is aborted.
async fn unfinished_requests(
    target: &Device,
    streams: usize,
    bytes: usize,
) -> (tokio::task::JoinHandle<()>, Arc<AtomicUsize>) {
    use futures::StreamExt;
    use libp2p::request_response::{self, ProtocolSupport};
    use libp2p::swarm::SwarmEvent;
    let address: libp2p::Multiaddr = target.loopback_address().await.parse().unwrap();
    let peer = polykey_network::identity::peer_id(&target.id()).unwrap();
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                Unfinished,
                [(
                    libp2p::StreamProtocol::new(polykey_network::protocol::PROTOCOL),
                    ProtocolSupport::Outbound,
                )],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(120))
                    .with_max_concurrent_streams(streams),
            )
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    swarm.dial(address).unwrap();
    let failed = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&failed);
    let task = tokio::spawn(async move {
        while let Some(event) = swarm.next().await {
            match event {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == peer => {
                    for _ in 0..streams {
                        swarm.behaviour_mut().send_request(&peer, bytes);
                    }
                }
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure { .. }) => {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                _ => {}
            }
        }
    });
    (task, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_strangers_never_finish_hold_little_memory_and_a_device_still_syncs() {
    if !alone_in_process(
        "hostile::requests_strangers_never_finish_hold_little_memory_and_a_device_still_syncs",
    ) {
        return;
    }
    let (a, b) = paired_with_vault("Personal").await;
    b.write("Personal", "github", "pw").await;
    eventually("A has the first edit", &[&a, &b], || async {
        a.read("Personal", "github").await.is_some()
    })
    .await;
    let before = resident_kb();
    // Two strangers, each with 100 requests of just under the largest a
    // request may be (1 MiB), none of them finished: before each
    // connection had an allowance for them, A held every byte (its memory
    // grew by 338 MiB with three strangers). Now it holds about 2 MiB of
    // each connection's; the rest of its growth is what the streams' yamux
    // windows (256 KiB each) carry before they are read or dropped.
    const STREAMS: usize = 100;
    let mut strangers = Vec::new();
    for _ in 0..2 {
        strangers.push(unfinished_requests(&a, STREAMS, 1024 * 1024 - 16).await);
    }
    let mut peak = before;
    let started = Instant::now();
    let mut edited = false;
    while started.elapsed() < Duration::from_secs(4) || !edited {
        peak = peak.max(resident_kb());
        if !edited && started.elapsed() > Duration::from_secs(1) {
            // An edit on B reaches A while the streams are open.
            b.write("Personal", "github", "during").await;
            edited = true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let arrived = Instant::now();
    while a.read("Personal", "github").await.as_deref() != Some("during") {
        assert!(
            arrived.elapsed() < Duration::from_secs(5),
            "B's edit did not reach A while strangers held streams open"
        );
        peak = peak.max(resident_kb());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A holds a few of each stranger's requests and drops the rest (each
    // one needs more than its connection's allowance once all has come).
    let dropped = || -> Vec<usize> {
        strangers
            .iter()
            .map(|(_, failed)| failed.load(Ordering::SeqCst))
            .collect()
    };
    while dropped().iter().any(|failed| *failed < STREAMS - 2) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "dropped {:?} of {STREAMS} each; memory grew by {} MiB",
            dropped(),
            peak.saturating_sub(before) / 1024
        );
        peak = peak.max(resident_kb());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (task, _) in strangers {
        task.abort();
    }
    let grew_mb = peak.saturating_sub(before) / 1024;
    assert!(grew_mb < 100, "memory grew by {grew_mb} MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_member_delays_no_one_else() {
    let (a, b) = (device().await, device().await);
    pair(&a, &b).await;
    a.node.create_vault("Personal".into()).await.unwrap();
    let mut rogue = rogue(87).await;
    rogue_pairs(&rogue, &a).await;
    // The rogue answers everything after 29 s (just inside the timeout).
    let chains = rogue.chain_answer();
    rogue.answer_with(Duration::from_secs(29), quiet(chains));
    eventually("B has the vault", &[&a, &b], || async {
        b.vault_names().await == ["Personal"]
    })
    .await;
    // A is busy with the rogue now; B's edit still arrives as usual, and
    // A's edit reaches B as usual.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    b.write("Personal", "from-b", "1").await;
    a.write("Personal", "from-a", "2").await;
    eventually("both edits crossed", &[&a, &b], || async {
        a.read("Personal", "from-b").await.is_some() && b.read("Personal", "from-a").await.is_some()
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

/// A tree encoded by hand (git's encoding: mode, space, name, NUL, id).
fn raw_tree(entries: &[(&str, &[u8], gix::ObjectId)]) -> WireObject {
    let mut sorted = entries.to_vec();
    sorted.sort_by(|a, b| a.1.cmp(b.1));
    let mut data = Vec::new();
    for (mode, name, oid) in sorted {
        data.extend_from_slice(mode.as_bytes());
        data.push(b' ');
        data.extend_from_slice(name);
        data.push(0);
        data.extend_from_slice(oid.as_bytes());
    }
    wire(gix::objs::Kind::Tree, data)
}

fn wire(kind: gix::objs::Kind, data: Vec<u8>) -> WireObject {
    let id = gix::objs::compute_hash(gix::hash::Kind::Sha1, kind, &data).unwrap();
    WireObject {
        base: None,
        part: None,
        id: id.to_string(),
        kind: kind_tag(kind),
        data,
    }
}

fn oid(object: &WireObject) -> gix::ObjectId {
    gix::ObjectId::from_hex(object.id.as_bytes()).unwrap()
}

/// A root commit of `tree`, signed by `signer`, naming `author`.
fn raw_commit(signer: &RootKeypair, author: NodeId, tree: gix::ObjectId) -> WireObject {
    raw_commit_on(signer, author, tree, Vec::new())
}

/// A commit of `tree` on `parents`, signed by `signer`, naming `author`.
fn raw_commit_on(
    signer: &RootKeypair,
    author: NodeId,
    tree: gix::ObjectId,
    parents: Vec<gix::ObjectId>,
) -> WireObject {
    use gix::objs::WriteTo;
    let actor = gix::actor::Signature {
        name: author.to_string().into(),
        email: format!("{author}@polykey").into(),
        time: gix::date::Time {
            seconds: now_secs() as i64,
            offset: 0,
        },
    };
    let mut commit = gix::objs::Commit {
        tree,
        parents: parents.into(),
        author: actor.clone(),
        committer: actor,
        encoding: None,
        message: "Hand-made\n".into(),
        extra_headers: Vec::new(),
    };
    let mut unsigned = Vec::new();
    commit.write_to(&mut unsigned).unwrap();
    let signature = polykey_keys::sshsig::sign(signer, "git", &unsigned);
    commit
        .extra_headers
        .push(("gpgsig".into(), signature.into()));
    let mut data = Vec::new();
    commit.write_to(&mut data).unwrap();
    wire(gix::objs::Kind::Commit, data)
}

/// Serve a new vault whose history is `objects` (the commit last).
fn serve_raw_vault(rogue: &mut Rogue, id: &str, mut objects: Vec<WireObject>) {
    let head = objects.last().unwrap().id.clone();
    // Commits first, as a device sends them.
    objects.reverse();
    let summary = VaultSummary {
        id: id.into(),
        name: "Crafted".into(),
        renamed_at: 0,
        head,
        access: None,
    };
    serve_vault(rogue, summary, objects);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deeply_nested_tree_is_refused_as_too_deep() {
    let a = device().await;
    a.node.create_vault("Personal".into()).await.unwrap();
    let mut rogue = rogue(88).await;
    rogue_pairs(&rogue, &a).await;
    // A file 65 folders down: one level past what any device accepts.
    let file = wire(gix::objs::Kind::Blob, b"deep".to_vec());
    let mut objects = vec![raw_tree(&[("100644", b"x", oid(&file))])];
    let mut blobs = vec![file];
    for _ in 0..polykey_vaults::MAX_TREE_DEPTH {
        let below = oid(objects.last().unwrap());
        objects.push(raw_tree(&[("40000", b"d", below)]));
    }
    let root = oid(objects.last().unwrap());
    objects.push(raw_commit(&rogue.keys, rogue.id(), root));
    blobs.append(&mut objects);
    serve_raw_vault(&mut rogue, "00000000000000000000000000000088", blobs);
    refused_and_unchanged(&a, rogue.id(), "nested deeper than").await;
    // The device keeps working: its own vault lists and takes writes.
    a.write("Personal", "github", "pw").await;
    assert_eq!(a.secrets("Personal").await, ["github"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_signed_by_one_device_claiming_another_as_author_is_refused() {
    let (a, b) = (device().await, device().await);
    pair(&a, &b).await;
    a.node.create_vault("Personal".into()).await.unwrap();
    let mut rogue = rogue(89).await;
    rogue_pairs(&rogue, &a).await;
    // Signed by the rogue (a member), claiming B wrote it.
    let file = wire(gix::objs::Kind::Blob, b"blame b".to_vec());
    let tree = raw_tree(&[("100644", b"note", oid(&file))]);
    let commit = raw_commit(&rogue.keys, b.id(), oid(&tree));
    serve_raw_vault(
        &mut rogue,
        "00000000000000000000000000000089",
        vec![file, tree, commit],
    );
    refused_and_unchanged(&a, rogue.id(), "other than its signer").await;
}

/// A person A trusts, posing as the owner of a shared vault, answers
/// `Shared` out of bounds or out of turn: two vaults for the one asked,
/// another vault than asked, more nodes than any gestalt lists, a name
/// past the limit, an answer its node did not sign, or signed for another
/// asker, or signed but naming only a stranger's nodes, an answer dated an
/// hour ahead (it would outrank every later one), and a scan of 1,001
/// vaults. Each is
/// refused with a clear error; A records nothing and takes no vault.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hostile_owners_shared_answers_are_refused_and_record_nothing() {
    use polykey_network::SharedVault;
    use polykey_node::sign_shared;

    let a = device().await;
    let mut owner = rogue(171).await;
    let stranger = RootKeypair::from_seed(&[172; 32]);
    let answer: Arc<Mutex<Vec<SharedVault>>> = Arc::default();
    let given = Arc::clone(&answer);
    let chains = owner.chain_answer();
    owner.answer_with(Duration::ZERO, move |request| match request {
        Request::Shared { .. } => Response::Shared {
            vaults: given.lock().unwrap().clone(),
        },
        other => quiet(chains.clone())(other),
    });
    dial(&owner, &a).await;
    let owner_id = owner.id().to_string();
    a.node.trust(&owner_id).await.unwrap();
    let id = "00112233445566778899aabbccddeeff";
    let signed = |id: &str, change: &dyn Fn(&mut SharedVault)| {
        let mut shared = SharedVault {
            id: id.to_owned(),
            name: "Team".into(),
            head: "0".repeat(40),
            write: false,
            nodes: vec![owner.id()],
            removed: Vec::new(),
            served: vec![a.id()],
            writers: Vec::new(),
            at: now_ms(),
            signature: Vec::new(),
        };
        change(&mut shared);
        sign_shared(&mut shared, &a.id(), &owner.keys);
        shared
    };
    let many: Vec<NodeId> = (0..65u8)
        .map(|i| RootKeypair::from_seed(&[i; 32]).node_id())
        .collect();
    let mut unsigned = signed(id, &|_| {});
    unsigned.signature = vec![0; 64];
    let mut by_stranger = signed(id, &|s| s.nodes = vec![stranger.node_id()]);
    sign_shared(&mut by_stranger, &a.id(), &stranger);
    // Signed for another asker (Carol's answer shown as A's).
    let mut to_another = signed(id, &|_| {});
    sign_shared(&mut to_another, &stranger.node_id(), &owner.keys);
    const BOUNDS: &str = "past the bounds";
    const UNSIGNED: &str = "did not sign";
    let cases: Vec<(&str, Vec<SharedVault>)> = vec![
        ("unexpected", vec![signed(id, &|_| {}), signed(id, &|_| {})]),
        (
            "another vault",
            vec![signed("ffeeddccbbaa99887766554433221100", &|_| {})],
        ),
        // Refused as it is read.
        (
            "at most 64 items",
            vec![signed(id, &|s| s.nodes.clone_from(&many))],
        ),
        (BOUNDS, vec![signed(id, &|s| s.name = "n".repeat(257))]),
        (UNSIGNED, vec![unsigned]),
        (
            UNSIGNED,
            vec![signed(id, &|s| s.nodes = vec![stranger.node_id()])],
        ),
        (UNSIGNED, vec![by_stranger]),
        (UNSIGNED, vec![to_another]),
        (
            "dated in the future",
            vec![signed(id, &|s| s.at = now_ms() + 3_600_000)],
        ),
    ];
    for (what, vaults) in cases {
        *answer.lock().unwrap() = vaults;
        // Sharing nothing with A, it is a stranger to A's network limits:
        // its connection may be closed between cases.
        dial(&owner, &a).await;
        let err = a.node.clone_shared(&owner_id, id).await.unwrap_err();
        assert!(
            matches!(err, NodeError::BadPeerData(_) | NodeError::PeerRefused(_)),
            "{what}: {err:?}"
        );
        assert!(err.to_string().contains(what), "{what}: {err}");
        assert!(
            a.vault_names().await.is_empty(),
            "{what}: a vault was taken"
        );
    }

    // A scan answered with more vaults than any share lists.
    a.node
        .set_permission(&owner_id, polykey_node::people::Permission::Scan, true)
        .await
        .unwrap();
    dial(&owner, &a).await;
    *answer.lock().unwrap() = (0..1_001)
        .map(|i| signed(&format!("{i:032x}"), &|_| {}))
        .collect();
    let err = a.node.scan(&owner_id).await.unwrap_err();
    assert!(
        matches!(err, NodeError::BadPeerData(_) | NodeError::PeerRefused(_)),
        "{err:?}"
    );
}

/// What a rogue serves: each vault's summary and objects.
type Served = Vec<(VaultSummary, Vec<WireObject>)>;

/// A 250-byte name: `index` in three digits, then `fill`.
fn long_name(index: usize, fill: char) -> Vec<u8> {
    let mut name = format!("{index:03}");
    name.extend(std::iter::repeat_n(fill, 247));
    name.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_version_too_large_to_merge_stops_neither_the_vault_nor_the_other_vaults() {
    let a = device().await;
    // The device with the lower id merges: this one, so the rogue picks
    // a seed whose id is greater.
    let seed = (100..=255u8)
        .find(|s| RootKeypair::from_seed(&[*s; 32]).node_id().as_bytes() > a.id().as_bytes())
        .unwrap();
    let mut rogue = rogue(seed).await;
    rogue_pairs(&rogue, &a).await;
    let (keys, me) = (&rogue.keys, rogue.id());

    // One directory of 1,000 files with 250-byte names, shared by every
    // folder below: 70 folders hold 35 MB of paths. A version of 70
    // folders is within bounds; merged with another 70, it is past the
    // 64 MiB every copy holds a version to.
    let value = wire(gix::objs::Kind::Blob, b"v".to_vec());
    let names: Vec<Vec<u8>> = (0..1_000).map(|i| long_name(i, 'x')).collect();
    let entries: Vec<(&str, &[u8], gix::ObjectId)> = names
        .iter()
        .map(|n| ("100644", n.as_slice(), oid(&value)))
        .collect();
    let leaf = raw_tree(&entries);
    let first = raw_tree(&[("100644", b"wifi", oid(&value))]);
    let start = raw_commit(keys, me, oid(&first));
    let side = |fill: char| {
        let names: Vec<Vec<u8>> = (0..70).map(|i| long_name(i, fill)).collect();
        let mut entries: Vec<(&str, &[u8], gix::ObjectId)> = names
            .iter()
            .map(|n| ("40000", n.as_slice(), oid(&leaf)))
            .collect();
        entries.push(("100644", b"wifi", oid(&value)));
        let root = raw_tree(&entries);
        let commit = raw_commit_on(keys, me, oid(&root), vec![oid(&start)]);
        // Commits first, as a device sends them.
        vec![
            commit,
            start.clone(),
            root,
            first.clone(),
            leaf.clone(),
            value.clone(),
        ]
    };
    let (ours, theirs) = (side('a'), side('b'));
    let big = "00000000000000000000000000000099".to_owned();
    let summary = |head: &WireObject| VaultSummary {
        id: big.clone(),
        name: "Big".into(),
        renamed_at: 0,
        head: head.id.clone(),
        access: None,
    };
    let (other, other_objects, _scratch) = forged_vault(keys);

    // What the rogue serves: first the vault at `ours`; later at
    // `theirs`, with a second vault listed after it.
    let served: Arc<Mutex<Served>> = Arc::new(Mutex::new(vec![(summary(&ours[0]), ours.clone())]));
    let chains = rogue.chain_answer();
    let serving = Arc::clone(&served);
    let fetched_big = Arc::new(AtomicUsize::new(0));
    let counting = Arc::clone(&fetched_big);
    rogue.answer_with(Duration::ZERO, move |request| match request {
        Request::Vaults => Response::Vaults {
            vaults: serving
                .lock()
                .unwrap()
                .iter()
                .map(|(s, _)| s.clone())
                .collect(),
        },
        Request::Fetch { vault, .. } => {
            if vault == "00000000000000000000000000000099" {
                counting.fetch_add(1, Ordering::SeqCst);
            }
            let served = serving.lock().unwrap();
            let objects = served
                .iter()
                .find(|(s, _)| s.id == vault)
                .map(|(_, o)| o.clone())
                .unwrap_or_default();
            Response::Objects {
                total: objects.len() as u32,
                objects,
            }
        }
        other => quiet(chains.clone())(other),
    });
    a.node.sync_now(rogue.id()).await.unwrap();
    assert_eq!(a.head("Big").await.as_deref(), Some(ours[0].id.as_str()));
    a.write("Big", "local", "mine").await;
    let head = a.head("Big").await;

    *served.lock().unwrap() = vec![
        (summary(&theirs[0]), theirs.clone()),
        (other, other_objects),
    ];
    let mut fetches = 0;
    for pull in 0..2 {
        // Refused the first time, and not worked out again the second.
        a.node.sync_now(rogue.id()).await.unwrap();
        assert_eq!(a.head("Big").await, head, "nothing past a bound is written");
        assert!(a.vault_names().await.contains(&"Forged".to_owned()));
        if pull == 0 {
            // What no version needs goes at a quiet moment, the refused
            // version with it: not fetched again for that.
            fetches = fetched_big.load(Ordering::SeqCst);
            let collected = collected_when_idle(&a).await;
            assert!(collected.expect("a collection").records > 0);
        }
    }
    assert_eq!(fetched_big.load(Ordering::SeqCst), fetches, "fetched again");
    let error = a.node.sync_status().last_error.unwrap_or_default();
    assert!(error.contains("could not be merged"), "{error}");
    assert!(error.contains("64 MiB"), "{error}");
    // The vault lists and takes writes.
    assert_eq!(a.read("Big", "local").await.as_deref(), Some("mine"));
    a.write("Big", "after", "ok").await;
    assert_eq!(a.secrets("Big").await.len(), 70_003);
}

/// Found while bounding what a node waits on from one peer (64): a pull
/// that found this copy ahead on many vaults sent the device one change
/// notice per vault, and with the device slow to answer them the pull's
/// own next request (its deletions) was refused and the sync failed, at
/// every retry. Notices to a peer now go one at a time, and one more after
/// it if asked for meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pull_ahead_on_seventy_vaults_is_not_refused_for_its_own_notices() {
    let a = device().await;
    // Seventy vaults of two versions each; the device lists the first.
    let mut listed = Vec::new();
    for i in 0..70 {
        let name = format!("vault {i}");
        let vault = a.node.create_vault(name.clone()).await.unwrap();
        let first = a.write(&name, "s", "1").await;
        a.write(&name, "s", "2").await;
        listed.push(VaultSummary {
            id: vault.id.to_string(),
            name,
            renamed_at: 0,
            head: first,
            access: None,
        });
    }
    let mut rogue = rogue(141).await;
    rogue_pairs(&rogue, &a).await;
    let chains = rogue.chain_answer();
    let deletions_asked = Arc::new(AtomicUsize::new(0));
    let asked = Arc::clone(&deletions_asked);
    rogue.answer_each(move |request| match request {
        Request::Chains { .. } => (Duration::ZERO, chains.clone()),
        Request::Vaults => (
            Duration::ZERO,
            Response::Vaults {
                vaults: listed.clone(),
            },
        ),
        Request::Deletions { .. } => {
            asked.fetch_add(1, Ordering::SeqCst);
            let deletions = Vec::new();
            (
                Duration::ZERO,
                Response::Deletions {
                    deletions,
                    more: false,
                },
            )
        }
        // Answered, but only after A's pulls within the test are over.
        Request::Changed => (Duration::from_secs(25), Response::Ok),
        _ => (Duration::ZERO, Response::Ok),
    });
    eventually("A's pull goes on to ask for deletions", &[&a], || async {
        deletions_asked.load(Ordering::SeqCst) > 0
    })
    .await;
    let error = a.node.sync_status().last_error.unwrap_or_default();
    assert!(!error.contains("too many requests"), "{error}");
}

/// Alice's device `a`; her other device, a rogue paired with it, listing
/// her vault with its record (shared with Bob) once `lists`, and sending
/// the vault only once `armed`; and Bob, trusted on `a` by his NodeId, who knows the
/// vault's id and history from the grant: his answer to `Shared` offers it
/// as his, signed.
struct KnownToBob {
    a: Device,
    other_device: Rogue,
    bob: Rogue,
    id: String,
    objects: Vec<WireObject>,
    shared: polykey_network::SharedVault,
    lists: Arc<AtomicBool>,
    armed: Arc<AtomicBool>,
    _dir: TempDir,
}

async fn own_vault_known_to_bob(seed: u8) -> KnownToBob {
    use polykey_network::{Access, Grant, SharedVault};
    use polykey_node::{sign_access, sign_shared};

    let a = device().await;
    let mut other_device = rogue(seed).await;
    rogue_pairs(&other_device, &a).await;
    let bob = rogue(seed + 1).await;
    let (summary, objects, dir) = forged_vault(&other_device.keys);
    let id = summary.id.clone();
    let mut record = Access {
        at: now_ms(),
        grants: vec![Grant::unsigned(bob.id().to_string(), vec![bob.id()], false)],
        ..Access::default()
    };
    sign_access(&id, &mut record, &other_device.keys).unwrap();
    let listed = VaultSummary {
        access: Some(record),
        ..summary.clone()
    };
    let (lists, armed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (listing, sends) = (Arc::clone(&lists), Arc::clone(&armed));
    let sent = objects.clone();
    let chains = other_device.chain_answer();
    other_device.answer_with(Duration::ZERO, move |request| match request {
        Request::Vaults => Response::Vaults {
            vaults: match listing.load(Ordering::SeqCst) {
                true => vec![listed.clone()],
                false => Vec::new(),
            },
        },
        Request::Fetch { .. } if sends.load(Ordering::SeqCst) => Response::Objects {
            total: sent.len() as u32,
            objects: sent.clone(),
        },
        Request::Fetch { .. } => Response::Refused("not now".into()),
        other => quiet(chains.clone())(other),
    });
    dial(&other_device, &a).await;
    a.node.trust(&bob.id().to_string()).await.unwrap();
    let mut shared = SharedVault {
        id: id.clone(),
        name: "Forged".into(),
        head: summary.head.clone(),
        write: true,
        nodes: vec![bob.id()],
        removed: Vec::new(),
        served: vec![a.id()],
        writers: Vec::new(),
        at: now_ms(),
        signature: Vec::new(),
    };
    sign_shared(&mut shared, &a.id(), &bob.keys);
    KnownToBob {
        a,
        other_device,
        bob,
        id,
        objects,
        shared,
        lists,
        armed,
        _dir: dir,
    }
}

impl KnownToBob {
    /// What Bob answers: his offer to `Shared`, the vault's history to a
    /// fetch.
    fn bobs_answer(&self) -> impl Fn(Request) -> Response + Send + Sync + 'static {
        let (shared, objects) = (self.shared.clone(), self.objects.clone());
        let chains = self.bob.chain_answer();
        move |request| match request {
            Request::Shared { .. } => Response::Shared {
                vaults: vec![shared.clone()],
            },
            Request::Fetch { .. } => Response::Objects {
                total: objects.len() as u32,
                objects: objects.clone(),
            },
            other => quiet(chains.clone())(other),
        }
    }

    /// Accept Bob's offer, asked again while Bob cannot be reached yet
    /// (`a` may not have his connection in hand when it asks).
    async fn accept(&self) -> Result<polykey_node::VaultInfo, NodeError> {
        let mut taken = Err(NodeError::Network("never asked".into()));
        for _ in 0..20 {
            dial(&self.bob, &self.a).await;
            taken = self
                .a
                .node
                .clone_shared(&self.bob.id().to_string(), &self.id)
                .await;
            if !matches!(&taken, Err(NodeError::Network(_))) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        taken
    }

    /// Once armed, the vault arrives from Alice's other device as hers,
    /// still shared with Bob: Bob owns nothing of it.
    async fn arrives_as_alices(&self) {
        self.armed.store(true, Ordering::SeqCst);
        let (a, other) = (&self.a, self.other_device.id());
        eventually("the vault arrives from Alice's device", &[a], || async {
            let _ = a.node.sync_now(other).await;
            a.node.vault_access(&self.id).await.is_ok()
        })
        .await;
        let access = a.node.vault_access(&self.id).await.unwrap().access;
        assert!(access.remote.is_none(), "{:?}", access.remote);
        let granted: Vec<&str> = access.grants.iter().map(|g| g.person.as_str()).collect();
        assert_eq!(granted, [self.bob.id().to_string()]);
    }
}

fn refused_as_not_bobs(taken: &Result<polykey_node::VaultInfo, NodeError>) {
    assert!(
        taken
            .as_ref()
            .is_err_and(|e| e.to_string().contains("known here as yours")),
        "{taken:?}"
    );
}

/// Bob, once granted one of Alice's vaults, knows its id. Alice's new
/// device has heard of that vault from her other device (its record:
/// shared with Bob) but has not received it yet, and Bob offers "his"
/// vault under that id, with its history. Taken, Bob would own Alice's
/// vault on that device (an author of it, served it even once the grant
/// is withdrawn) and the record's grants would be gone. Refused: when the
/// vault arrives from her other device it is hers, still shared with Bob.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_offering_a_vault_under_the_id_of_ones_own_is_refused() {
    let mut t = own_vault_known_to_bob(173).await;
    t.lists.store(true, Ordering::SeqCst);
    let (a, other) = (&t.a, t.other_device.id());
    eventually("Alice's device hears of the vault", &[a], || async {
        // Its record is taken before the vault is asked for (refused).
        let pulled = a.node.sync_now(other).await;
        pulled.is_err_and(|e| e.to_string().contains("not now"))
    })
    .await;
    let bobs = t.bobs_answer();
    t.bob.answer_with(Duration::ZERO, bobs);
    refused_as_not_bobs(&t.accept().await);
    t.arrives_as_alices().await;
}

/// As above, but Alice's device hears of the vault from her other device
/// only while Bob's copy is on its way: the accept checked an empty record
/// and wrote Bob in as the owner, and the other device's record (shared
/// with Bob) is merged into it meanwhile. Bob's copy is dropped when it
/// arrives, not finished as his.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_whose_offer_turns_out_to_be_ones_own_vault_mid_transfer_is_refused() {
    let mut t = own_vault_known_to_bob(175).await;
    // Bob answers a fetch only once released, saying when it is asked.
    let (asked, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (bobs, held) = (t.bobs_answer(), Arc::clone(&release));
    let told = Arc::clone(&asked);
    t.bob.answer_when(move |request| {
        let wait: futures::future::BoxFuture<'static, ()> = match &request {
            Request::Fetch { .. } => {
                told.notify_one();
                let held = Arc::clone(&held);
                Box::pin(async move { held.notified().await })
            }
            _ => Box::pin(async {}),
        };
        (wait, bobs(request))
    });
    let accepting = {
        let t = Arc::new(t);
        let accepting = Arc::clone(&t);
        (tokio::spawn(async move { accepting.accept().await }), t)
    };
    let (accept, t) = accepting;
    tokio::time::timeout(Duration::from_secs(30), asked.notified())
        .await
        .unwrap();
    // The other device's record arrives while Bob's copy is awaited (the
    // vault itself waits: its transfer is the accept's until it ends).
    t.lists.store(true, Ordering::SeqCst);
    let (a, other) = (&t.a, t.other_device.id());
    eventually("a pull from Alice's other device", &[a], || async {
        a.node.sync_now(other).await.is_ok()
    })
    .await;
    release.notify_one();
    refused_as_not_bobs(&accept.await.unwrap());
    t.arrives_as_alices().await;
}

/// A device taking a large secret part by part is given each part as it
/// asks for it: the next in order (read ahead while the one before was on
/// its way), the same again, one at another page size; and, once removed,
/// nothing, though the next part was read ahead for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parts_read_ahead_are_given_only_as_asked_and_only_while_allowed() {
    let a = device().await;
    let rogue = rogue(182).await;
    rogue_pairs(&rogue, &a).await;
    let vault = a.node.create_vault("Big".into()).await.unwrap();
    let large: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    a.node
        .write_secret(
            "Big".into(),
            "large".into(),
            zeroize::Zeroizing::new(large.clone()),
        )
        .await
        .unwrap();
    let head = a.head("Big").await.unwrap();
    let ask = |skip: u32, from: u64, page: u32| {
        let request = Request::Fetch {
            vault: vault.id.to_string(),
            want: head.clone(),
            haves: Vec::new(),
            skip,
            from,
            page,
        };
        rogue.client.request(a.id(), request)
    };
    // The part at `from` of the object at `skip`, checked against the
    // secret: its length.
    let part = |skip: u32, from: u64, page: u32| {
        let asked = ask(skip, from, page);
        let large = &large;
        async move {
            let Response::Objects { objects, .. } = asked.await.unwrap() else {
                panic!("no page");
            };
            let [object] = &objects[..] else {
                panic!("{} objects", objects.len());
            };
            let part = object.part.as_ref().expect("a part");
            assert_eq!((part.offset, part.len), (from, large.len() as u64));
            let at = from as usize;
            assert!(object.data[..] == large[at..at + object.data.len()]);
            object.data.len() as u64
        }
    };
    // The secret's object: the first sent in parts.
    let mut skip = 0;
    loop {
        match ask(skip, 0, 0).await.unwrap() {
            Response::Objects { objects, .. } if objects[0].part.is_none() => {
                skip += objects.len() as u32;
            }
            Response::Objects { .. } => break,
            other => panic!("{other:?}"),
        }
    }
    let first = part(skip, 0, 0).await;
    let second = part(skip, first, 0).await;
    assert_eq!(part(skip, first, 0).await, second);
    let smaller = part(skip, first + second, MIN_PAGE_BYTES as u32).await;
    assert!(smaller < second, "{smaller} bytes");
    let mut from = first + second + smaller;
    while from < large.len() as u64 {
        from += part(skip, from, 0).await;
    }
    part(skip, 0, 0).await;
    a.node.revoke_device(rogue.id()).await.unwrap();
    // Refused, or its connection closed with its removal: no part either way.
    if let Ok(answer) = ask(skip, first, 0).await {
        assert!(!refused(answer).is_empty());
    }
}
