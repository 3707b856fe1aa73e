//! Linked identities through the node, against a fake GitHub on 127.0.0.1
//! speaking GitHub's HTTP API (the same server the provider's own tests
//! use): log in by the device flow, claim the account, and find the claim
//! from another node.

use std::sync::Arc;
use std::time::Duration;

#[path = "../../../identities/tests/fake_github/mod.rs"]
mod fake_github;

use fake_github::{Answer, FakeGitHub, CLIENT_ID, USER_CODE};
use polykey_identities::{GitHub, GitHubConfig};
use polykey_node::error::NodeError;
use polykey_node::Node;

use crate::{open, snapshot, PASSWORD};

const ALICE_TOKEN: &str = "gho_aliceSECRETtoken0123456789abcdefABCD";
const BOB_TOKEN: &str = "gho_bobSECRETtoken0123456789abcdefABCDEF";

async fn node_with(fake: &FakeGitHub) -> (tempfile::TempDir, Node) {
    node_with_config(GitHubConfig::at(CLIENT_ID, &fake.base)).await
}

async fn node_with_config(config: GitHubConfig) -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().unwrap();
    let node = open(&dir.path().join("node")).await;
    node.create(PASSWORD.into()).await.unwrap();
    let github = GitHub::new(config).unwrap();
    node.add_identity_provider(Arc::new(github));
    (dir, node)
}

async fn log_in(node: &Node, fake: &FakeGitHub, token: &str) -> String {
    fake.script(vec![Answer::Pending, Answer::Token(token.into())]);
    let login = node.start_identity_login("github.com").await.unwrap();
    assert_eq!(login.user_code, USER_CODE);
    assert!(login.verification_uri.starts_with(&fake.base));
    node.finish_identity_login("github.com").await.unwrap()
}

#[tokio::test]
async fn a_node_claims_its_github_account_and_another_node_finds_it() {
    let fake = FakeGitHub::start().await;
    fake.add_user("alice", ALICE_TOKEN);
    fake.add_user("bob", BOB_TOKEN);
    let (_a_dir, alice) = node_with(&fake).await;
    let (_b_dir, bob) = node_with(&fake).await;

    assert_eq!(log_in(&alice, &fake, ALICE_TOKEN).await, "github.com:alice");
    let linked = alice.claim_identity("github.com").await.unwrap();
    assert_eq!(linked.identity, "github.com:alice");
    assert_eq!(
        alice.linked_identities().await.unwrap(),
        vec![linked.clone()]
    );

    // Bob, not logged in, finds Alice's node under her account.
    let found = bob.discover_identity("github.com:alice").await.unwrap();
    let alice_id = alice.status().node_id.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].node, alice_id);
    assert_eq!(found[0].proof_url, linked.proof_url);
    // Nothing under Bob's own account, and Alice's claim copied there by
    // Bob names another account: refused.
    assert!(bob
        .discover_identity("github.com:bob")
        .await
        .unwrap()
        .is_empty());
    let text = fake
        .state
        .lock()
        .unwrap()
        .gists
        .iter()
        .find(|g| g.owner == "alice")
        .and_then(|g| g.files.values().next().cloned())
        .unwrap();
    fake.add_gist("bob", true, &[("cryptolink.txt", &text)]);
    assert!(bob
        .discover_identity("github.com:bob")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn the_access_token_never_reaches_the_disk_in_the_clear() {
    let fake = FakeGitHub::start().await;
    fake.add_user("alice", ALICE_TOKEN);
    let (dir, alice) = node_with(&fake).await;
    log_in(&alice, &fake, ALICE_TOKEN).await;
    alice.claim_identity("github.com").await.unwrap();
    alice.lock().await.unwrap();
    for (path, bytes) in snapshot(dir.path()) {
        assert!(
            !bytes
                .windows(ALICE_TOKEN.len())
                .any(|w| w == ALICE_TOKEN.as_bytes()),
            "the token is in {path:?}"
        );
    }
}

#[tokio::test]
async fn claiming_or_discovering_wrongly_says_what_to_do() {
    let fake = FakeGitHub::start().await;
    let (_dir, node) = node_with(&fake).await;
    let not_logged_in = node.claim_identity("github.com").await.unwrap_err();
    assert!(
        not_logged_in
            .to_string()
            .contains("identities authenticate github.com"),
        "{not_logged_in}"
    );
    let malformed = node.discover_identity("alice").await.unwrap_err();
    assert!(matches!(malformed, NodeError::Invalid(_)), "{malformed:?}");
    let unknown = node
        .discover_identity("gitlab.com:alice")
        .await
        .unwrap_err();
    assert!(
        unknown.to_string().contains("unknown identity provider"),
        "{unknown}"
    );
    let unstarted = node.finish_identity_login("github.com").await.unwrap_err();
    assert!(unstarted.to_string().contains("no login"), "{unstarted}");
    node.lock().await.unwrap();
    assert!(matches!(
        node.discover_identity("github.com:alice").await,
        Err(NodeError::Locked)
    ));
}

/// The gist holding `node`'s claim (the newest of `owner`'s that names it).
fn gist_of(fake: &FakeGitHub, owner: &str, node: &Node) -> String {
    let id = node.status().node_id.unwrap().to_string();
    let s = fake.state.lock().unwrap();
    s.gists
        .iter()
        .rev()
        .find(|g| g.owner == owner && g.files.values().any(|t| t.contains(&id)))
        .map(|g| g.id.clone())
        .unwrap()
}

/// Bob trusts `github.com:alice` (two nodes claim it) and shares a vault
/// with her. A claim deleted, or moved under another account, drops its
/// node from the person and from the vault's grant when Bob refreshes
/// her; a new claim adds its node; a provider that cannot be reached
/// changes nothing.
#[tokio::test]
async fn a_deleted_gist_drops_its_node_from_a_trusted_person_and_their_shares() {
    let fake = FakeGitHub::start().await;
    fake.add_user("alice", ALICE_TOKEN);
    fake.add_user("mallory", "gho_mallorySECRETtoken0123456789abcdefAB");
    let (_a1_dir, laptop) = node_with(&fake).await;
    let (_a2_dir, phone) = node_with(&fake).await;
    // Bob waits for GitHub a second at most, so a hang is soon an error.
    let (_b_dir, bob) = node_with_config(GitHubConfig {
        request_timeout: Duration::from_secs(1),
        claims_timeout: Duration::from_secs(3),
        ..GitHubConfig::at(CLIENT_ID, &fake.base)
    })
    .await;
    for node in [&laptop, &phone] {
        log_in(node, &fake, ALICE_TOKEN).await;
        node.claim_identity("github.com").await.unwrap();
    }
    let (laptop_id, phone_id) = (
        laptop.status().node_id.unwrap(),
        phone.status().node_id.unwrap(),
    );
    let mut both = vec![laptop_id, phone_id];
    both.sort();

    let person = bob.trust("github.com:alice").await.unwrap();
    assert_eq!(person.nodes, both);
    bob.set_permission_named("github.com:alice", "notify", true)
        .await
        .unwrap();
    bob.create_vault("Team".into()).await.unwrap();
    bob.share_vault("Team", "github.com:alice", false)
        .await
        .unwrap();
    let grant_nodes = |access: polykey_node::VaultAccess| access.access.grants[0].nodes.clone();
    assert_eq!(grant_nodes(bob.vault_access("Team").await.unwrap()), both);

    // Nothing changed: nothing to do.
    let same = bob.refresh_person("github.com:alice").await.unwrap();
    assert!(same.added.is_empty() && same.dropped.is_empty(), "{same:?}");

    // The phone's gist is deleted: the phone is dropped, from the share too.
    fake.delete_gist(&gist_of(&fake, "alice", &phone));
    let refreshed = bob.refresh_person("github.com:alice").await.unwrap();
    assert_eq!(refreshed.dropped, vec![phone_id]);
    assert!(refreshed.added.is_empty());
    assert_eq!(refreshed.person.nodes, vec![laptop_id]);
    assert!(refreshed.person.notify, "permissions stay");
    assert_eq!(bob.people().await.unwrap()[0].nodes, vec![laptop_id]);
    assert_eq!(
        grant_nodes(bob.vault_access("Team").await.unwrap()),
        vec![laptop_id]
    );

    // The phone claims again: added back, by one of its NodeIds too.
    phone.claim_identity("github.com").await.unwrap();
    let refreshed = bob.refresh_person(&laptop_id.to_string()).await.unwrap();
    assert_eq!(refreshed.added, vec![phone_id]);
    assert_eq!(refreshed.person.nodes, both);
    assert_eq!(grant_nodes(bob.vault_access("Team").await.unwrap()), both);

    // GitHub cannot be reached for a claim file: an error, nothing dropped.
    fake.state.lock().unwrap().hang.push("/raw/*".into());
    let unreachable = bob.refresh_person("github.com:alice").await;
    assert!(unreachable.is_err(), "{unreachable:?}");
    fake.state.lock().unwrap().hang.clear();
    assert_eq!(bob.people().await.unwrap()[0].nodes, both);

    // The laptop's claim moved under Mallory's account names Alice's, so it
    // counts for neither: looking Alice up drops the laptop.
    fake.move_gist(&gist_of(&fake, "alice", &laptop), "mallory");
    let info = bob.lookup_gestalt("github.com:alice").await.unwrap();
    assert_eq!(info.dropped, vec![laptop_id]);
    assert_eq!(info.person.unwrap().nodes, vec![phone_id]);
    assert_eq!(info.identities.len(), 1);
    assert_eq!(info.identities[0].nodes.len(), 1);
    assert_eq!(info.identities[0].nodes[0].node, phone_id);
    assert!(bob
        .discover_identity("github.com:mallory")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        grant_nodes(bob.vault_access("Team").await.unwrap()),
        vec![phone_id]
    );

    // Every claim gone: Alice stays trusted, with no node to reach.
    fake.delete_gist(&gist_of(&fake, "alice", &phone));
    let refreshed = bob.refresh_person("github.com:alice").await.unwrap();
    assert_eq!(refreshed.dropped, vec![phone_id]);
    assert!(refreshed.person.nodes.is_empty());
    assert!(grant_nodes(bob.vault_access("Team").await.unwrap()).is_empty());

    // Someone not trusted cannot be refreshed.
    let unknown = bob.refresh_person("github.com:mallory").await.unwrap_err();
    assert!(
        matches!(unknown, NodeError::UnknownTarget(_)),
        "{unknown:?}"
    );
}
