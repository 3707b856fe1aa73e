//! Linked identities through the node, against a fake GitHub on 127.0.0.1
//! speaking GitHub's HTTP API (the same server the provider's own tests
//! use): log in by the device flow, claim the account, and find the claim
//! from another node.

use std::sync::Arc;

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
    let dir = tempfile::tempdir().unwrap();
    let node = open(&dir.path().join("node")).await;
    node.create(PASSWORD.into()).await.unwrap();
    let github = GitHub::new(GitHubConfig::at(CLIENT_ID, &fake.base)).unwrap();
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
