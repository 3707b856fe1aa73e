//! The real GitHub provider against a fake GitHub on 127.0.0.1 (see
//! `fake_github`): the device flow and its every ending, the user, claims
//! published as gists and found again, claims that must be refused, and
//! hostile or silent servers.
#![allow(clippy::unwrap_used)]

mod fake_github;

use std::time::{Duration, Instant};

use fake_github::{Answer, FakeGitHub, Oversize, CLIENT_ID, DEVICE_CODE, USER_CODE};
use polykey_db::Db;
use polykey_gestalts::claims::identity_id;
use polykey_gestalts::{ClaimError, ClaimType, Sigchain, SignedClaim};
use polykey_identities::{
    claim_text, discover, verify_identity_claim, wait_for_token, AccessToken, GitHub, GitHubConfig,
    IdentityError, IdentityProvider, Poll, CLAIM_FILE_NAME,
};
use polykey_keys::{NodeId, RootKeypair};

const ALICE_TOKEN: &str = "gho_aliceSECRETtoken0123456789abcdefABCD";
const BOB_TOKEN: &str = "gho_bobSECRETtoken0123456789abcdefABCDEF";
const NOW_MS: u64 = 1_790_000_000_000;

async fn fake() -> FakeGitHub {
    let fake = FakeGitHub::start().await;
    fake.add_user("alice", ALICE_TOKEN);
    fake.add_user("bob", BOB_TOKEN);
    fake
}

fn github(fake: &FakeGitHub) -> GitHub {
    GitHub::new(GitHubConfig::at(CLIENT_ID, &fake.base)).unwrap()
}

fn github_with(fake: &FakeGitHub, request: Duration, claims: Duration) -> GitHub {
    GitHub::new(GitHubConfig {
        request_timeout: request,
        claims_timeout: claims,
        ..GitHubConfig::at(CLIENT_ID, &fake.base)
    })
    .unwrap()
}

fn token(t: &str) -> AccessToken {
    AccessToken::new(t.to_owned())
}

/// A node's signed ClaimLinkIdentity for `provider:login`, as the node
/// would make it on its sigchain.
fn identity_claim(keys: &RootKeypair, login: &str) -> SignedClaim {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(&dir.path().join("db.redb"), keys).unwrap();
    let chain = Sigchain::new(&db, keys.node_id());
    let mut payload = chain
        .next_payload(ClaimType::ClaimLinkIdentity, keys.node_id(), NOW_MS)
        .unwrap();
    payload.identity = Some(identity_id("github.com", login).unwrap());
    let claim = SignedClaim::issue(&payload, keys).unwrap();
    chain.append(&claim).unwrap();
    claim
}

fn assert_secret_free(err: &IdentityError) {
    for shown in [format!("{err}"), format!("{err:?}")] {
        for secret in [ALICE_TOKEN, BOB_TOKEN, DEVICE_CODE] {
            assert!(!shown.contains(secret), "a secret in {shown:?}");
        }
    }
}

#[tokio::test]
async fn device_flow_waits_while_pending_and_slows_down_when_told() {
    let fake = fake().await;
    fake.script(vec![
        Answer::Pending,
        Answer::SlowDown(2),
        Answer::Token(ALICE_TOKEN.into()),
    ]);
    let gh = github(&fake);
    let flow = gh.start_device_flow().await.unwrap();
    assert_eq!(flow.user_code, USER_CODE);
    assert_eq!(flow.verification_uri, format!("{}/login/device", fake.base));
    assert_eq!(flow.interval, Duration::from_secs(1));
    assert_eq!(flow.expires_in, Duration::from_secs(900));
    // The device code is a secret: not in Debug.
    assert!(!format!("{flow:?}").contains(DEVICE_CODE));

    let got = wait_for_token(&gh, &flow).await.unwrap();
    assert_eq!(got.expose_secret(), ALICE_TOKEN);
    assert!(!format!("{got:?}").contains(ALICE_TOKEN));

    let polls = fake.state.lock().unwrap().polls.clone();
    assert_eq!(polls.len(), 3, "pending, slow_down, token");
    // The interval before the first polls, the slower one after slow_down.
    assert!(polls[1] - polls[0] >= Duration::from_millis(950));
    assert!(
        polls[2] - polls[1] >= Duration::from_millis(1950),
        "slow_down not honoured: {:?}",
        polls[2] - polls[1]
    );

    // The token is the user's.
    let me = gh.user(&got).await.unwrap();
    assert_eq!(me.login, "alice");
    assert_eq!(me.provider, "github.com");
    assert_eq!(me.url, Some(format!("{}/alice", fake.base)));
}

#[tokio::test]
async fn one_poll_reports_each_state() {
    let fake = fake().await;
    fake.script(vec![
        Answer::Pending,
        Answer::SlowDown(7),
        Answer::Token(BOB_TOKEN.into()),
    ]);
    let gh = github(&fake);
    let flow = gh.start_device_flow().await.unwrap();
    assert!(matches!(
        gh.poll_device_flow(&flow).await.unwrap(),
        Poll::Pending
    ));
    assert!(matches!(
        gh.poll_device_flow(&flow).await.unwrap(),
        Poll::SlowDown { interval: Some(d) } if d == Duration::from_secs(7)
    ));
    assert!(matches!(
        gh.poll_device_flow(&flow).await.unwrap(),
        Poll::Authorized(t) if t.expose_secret() == BOB_TOKEN
    ));
}

#[tokio::test]
async fn device_flow_declined_or_expired_ends_with_a_clear_error() {
    let fake = fake().await;
    let gh = github(&fake);

    fake.script(vec![Answer::Pending, Answer::Denied]);
    let flow = gh.start_device_flow().await.unwrap();
    let err = wait_for_token(&gh, &flow).await.unwrap_err();
    assert!(matches!(err, IdentityError::AccessDenied), "{err:?}");
    assert!(err.to_string().contains("declined"));
    assert_secret_free(&err);

    fake.script(vec![Answer::Expired]);
    let flow = gh.start_device_flow().await.unwrap();
    let err = wait_for_token(&gh, &flow).await.unwrap_err();
    assert!(matches!(err, IdentityError::Expired), "{err:?}");
    assert!(err.to_string().contains("expired"));

    // Codes that expire before the next poll are not polled at all.
    fake.state.lock().unwrap().expires_in = 0;
    let polls_before = fake.state.lock().unwrap().polls.len();
    let flow = gh.start_device_flow().await.unwrap();
    let started = Instant::now();
    let err = wait_for_token(&gh, &flow).await.unwrap_err();
    assert!(matches!(err, IdentityError::Expired));
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(fake.state.lock().unwrap().polls.len(), polls_before);
}

#[tokio::test]
async fn a_wrong_client_id_is_a_device_flow_error() {
    let fake = fake().await;
    let gh = GitHub::new(GitHubConfig::at("not-our-app", &fake.base)).unwrap();
    let err = gh.start_device_flow().await.unwrap_err();
    assert!(
        matches!(&err, IdentityError::DeviceFlow(code) if code == "incorrect_client_credentials"),
        "{err:?}"
    );
}

#[tokio::test]
async fn publish_a_claim_and_find_it_again() {
    let fake = fake().await;
    let gh = github(&fake);
    let keys = RootKeypair::from_seed(&[1; 32]);
    let claim = identity_claim(&keys, "alice");
    let text = claim_text(&claim).unwrap();
    assert!(text.contains(&keys.node_id().to_string()));
    assert!(text.contains("github.com account alice"));

    // Other gists of alice's are not claims.
    fake.add_gist("alice", true, &[("notes.md", "# hello")]);
    let published = gh.publish(&token(ALICE_TOKEN), &text).await.unwrap();
    assert!(published.url.ends_with(&published.id));
    fake.add_gist("alice", true, &[("other.txt", "not a claim")]);

    let found = gh.claims_of("alice", None).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].url, published.url);
    assert_eq!(found[0].text, text);
    let node: NodeId = verify_identity_claim(&found[0].text, "github.com", "alice").unwrap();
    assert_eq!(node, keys.node_id());
    // Logins are compared as GitHub does, without case.
    assert_eq!(
        verify_identity_claim(&text, "github.com", "Alice").unwrap(),
        keys.node_id()
    );

    let verified = discover(&gh, "alice", Some(&token(BOB_TOKEN)))
        .await
        .unwrap();
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].node, keys.node_id());
    assert_eq!(verified[0].url, published.url);
    assert_eq!(verified[0].claim, claim);

    // The requests carried what GitHub requires; the raw file was fetched
    // without the token.
    let requests = fake.requests();
    let post = requests
        .iter()
        .find(|r| r.method == "POST" && r.path == "/api/gists")
        .unwrap();
    assert_eq!(post.headers["accept"], "application/vnd.github+json");
    assert_eq!(post.headers["x-github-api-version"], "2022-11-28");
    assert_eq!(
        post.headers["authorization"],
        format!("Bearer {ALICE_TOKEN}")
    );
    assert!(post.headers["user-agent"].starts_with("polykey/"));
    let raw: Vec<_> = requests
        .iter()
        .filter(|r| r.path.starts_with("/raw/"))
        .collect();
    assert_eq!(raw.len(), 2, "one fetch per claims_of, claim files only");
    assert!(raw.iter().all(|r| !r.headers.contains_key("authorization")));
    assert!(raw.iter().all(|r| r.path.ends_with(CLAIM_FILE_NAME)));
}

#[tokio::test]
async fn a_claim_under_another_account_is_refused() {
    let fake = fake().await;
    let gh = github(&fake);
    let alice_node = RootKeypair::from_seed(&[2; 32]);
    let text = claim_text(&identity_claim(&alice_node, "alice")).unwrap();

    // Bob copies alice's claim into his own gist.
    gh.publish(&token(BOB_TOKEN), &text).await.unwrap();
    let found = gh.claims_of("bob", None).await.unwrap();
    assert_eq!(found.len(), 1);
    let err = verify_identity_claim(&found[0].text, "github.com", "bob").unwrap_err();
    assert!(matches!(err, IdentityError::WrongIdentity), "{err:?}");
    assert!(discover(&gh, "bob", None).await.unwrap().is_empty());

    // Nor does a claim for another provider count.
    assert!(matches!(
        verify_identity_claim(&text, "gitlab.com", "alice"),
        Err(IdentityError::WrongIdentity)
    ));

    // A claim file in a secret gist, or a gist listed under alice but
    // owned by someone else, is not evidence (the fake lists only public
    // gists, as GitHub does; a secret one is never fetched).
    fake.add_gist("alice", false, &[(CLAIM_FILE_NAME, &text)]);
    assert!(gh.claims_of("alice", None).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_forged_claim_is_refused() {
    let fake = fake().await;
    let gh = github(&fake);
    let alice_node = RootKeypair::from_seed(&[3; 32]);
    let mallory = RootKeypair::from_seed(&[4; 32]);
    let claim = identity_claim(&alice_node, "alice");

    // Mallory re-signs alice's payload but names alice's node as signer.
    let mut forged = claim.clone();
    let by_mallory = {
        let mut p = claim.decode().unwrap();
        p.iss = mallory.node_id();
        p.sub = mallory.node_id();
        SignedClaim::issue(&p, &mallory).unwrap()
    };
    forged.signatures[0].signature = by_mallory.signatures[0].signature.clone();
    let text = claim_text(&claim).unwrap().replace(
        &String::from_utf8(claim.to_json()).unwrap(),
        &String::from_utf8(forged.to_json()).unwrap(),
    );
    gh.publish(&token(ALICE_TOKEN), &text).await.unwrap();
    let found = gh.claims_of("alice", None).await.unwrap();
    assert_eq!(found.len(), 1);
    let err = verify_identity_claim(&found[0].text, "github.com", "alice").unwrap_err();
    assert!(
        matches!(err, IdentityError::Claim(ClaimError::BadSignature(_))),
        "{err:?}"
    );
    assert!(discover(&gh, "alice", None).await.unwrap().is_empty());

    // Mallory's own valid claim for bob, with the identity edited to alice.
    let mallorys = identity_claim(&mallory, "bob");
    let mut payload = mallorys.decode().unwrap();
    payload.identity = Some("github.com:alice".into());
    let mut edited = mallorys.clone();
    edited.payload = data_encoding::BASE64URL_NOPAD.encode(&serde_json::to_vec(&payload).unwrap());
    let text = format!(
        "{}\n{}\n{}\n",
        polykey_identities::claim::CLAIM_BEGIN,
        String::from_utf8(edited.to_json()).unwrap(),
        polykey_identities::claim::CLAIM_END
    );
    assert!(matches!(
        verify_identity_claim(&text, "github.com", "alice"),
        Err(IdentityError::Claim(ClaimError::BadSignature(_)))
    ));

    // Texts without a claim, or with garbage, are clear errors.
    for junk in [
        "hello",
        "-----BEGIN POLYKEY IDENTITY CLAIM-----\nnot json\n-----END POLYKEY IDENTITY CLAIM-----",
        "-----BEGIN POLYKEY IDENTITY CLAIM-----\n{}",
    ] {
        assert!(verify_identity_claim(junk, "github.com", "alice").is_err());
    }
    assert!(matches!(
        verify_identity_claim("x", "github.com", "al/ice"),
        Err(IdentityError::InvalidIdentity(_))
    ));
}

#[tokio::test]
async fn get_and_search_accounts() {
    let fake = fake().await;
    let gh = github(&fake);
    let alice = gh.get("alice", None).await.unwrap().unwrap();
    assert_eq!(alice.login, "alice");
    assert_eq!(alice.name.as_deref(), Some("alice (test)"));
    assert_eq!(gh.get("nobody", None).await.unwrap(), None);
    assert!(matches!(
        gh.get("../user", None).await,
        Err(IdentityError::InvalidIdentity(_))
    ));
    let found = gh.search("ali", Some(&token(ALICE_TOKEN))).await.unwrap();
    assert_eq!(
        found.iter().map(|i| i.login.as_str()).collect::<Vec<_>>(),
        ["alice"]
    );
    assert!(matches!(
        gh.search("alice type:org", None).await,
        Err(IdentityError::InvalidIdentity(_))
    ));
    let err = gh.claims_of("nobody", None).await.unwrap_err();
    assert!(matches!(err, IdentityError::NoSuchIdentity(_)), "{err:?}");
    assert!(err.to_string().contains("github.com:nobody"));
}

#[tokio::test]
async fn a_refused_token_is_a_clear_error_without_the_token() {
    let fake = fake().await;
    let gh = github(&fake);
    let stale = "gho_staleSECRETtoken000000000000000000000";
    let err = gh.user(&token(stale)).await.unwrap_err();
    assert!(matches!(err, IdentityError::Unauthorized(_)), "{err:?}");
    assert!(err.to_string().contains("authenticate again"));
    for shown in [format!("{err}"), format!("{err:?}")] {
        assert!(!shown.contains(stale));
    }
    let err = gh.publish(&token(stale), "text").await.unwrap_err();
    assert!(matches!(err, IdentityError::Unauthorized(_)));
    assert!(!format!("{err:?}").contains(stale));
}

#[tokio::test]
async fn oversized_answers_are_refused_before_parsing() {
    let fake = fake().await;
    let gh = github(&fake);
    let keys = RootKeypair::from_seed(&[5; 32]);
    let text = claim_text(&identity_claim(&keys, "alice")).unwrap();
    gh.publish(&token(ALICE_TOKEN), &text).await.unwrap();

    // A declared length over the limit.
    fake.state
        .lock()
        .unwrap()
        .oversize
        .insert("/api/user".into(), Oversize::Declared);
    let err = gh.user(&token(ALICE_TOKEN)).await.unwrap_err();
    assert!(matches!(err, IdentityError::TooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("too large"));
    assert_secret_free(&err);

    // No length: cut off once past the limit.
    fake.state
        .lock()
        .unwrap()
        .oversize
        .insert("/api/users/alice/gists".into(), Oversize::Streamed);
    let err = gh.claims_of("alice", None).await.unwrap_err();
    assert!(matches!(err, IdentityError::TooLarge { .. }), "{err:?}");

    // An oversized claim file is skipped, not read.
    fake.state.lock().unwrap().oversize.clear();
    let raw_path = {
        let s = fake.state.lock().unwrap();
        let g = s.gists.iter().find(|g| g.owner == "alice").unwrap();
        format!("/raw/alice/{}/raw/{CLAIM_FILE_NAME}", g.id)
    };
    fake.state
        .lock()
        .unwrap()
        .oversize
        .insert(raw_path, Oversize::Streamed);
    assert!(gh.claims_of("alice", None).await.unwrap().is_empty());

    // Too long to publish.
    let err = gh
        .publish(&token(ALICE_TOKEN), &"x".repeat(64 * 1024))
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::TooLarge { .. }));

    // The device flow too.
    fake.state
        .lock()
        .unwrap()
        .oversize
        .insert("/login/device/code".into(), Oversize::Declared);
    assert!(matches!(
        gh.start_device_flow().await,
        Err(IdentityError::TooLarge { .. })
    ));
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let fake = fake().await;
    let gh = github_with(&fake, Duration::from_secs(1), Duration::from_millis(1500));

    fake.state.lock().unwrap().hang.push("/api/user".into());
    let started = Instant::now();
    let err = gh.user(&token(ALICE_TOKEN)).await.unwrap_err();
    assert!(matches!(err, IdentityError::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(err.to_string().contains("did not answer in time"));
    assert_secret_free(&err);

    // Polling too.
    fake.state
        .lock()
        .unwrap()
        .hang
        .push("/login/oauth/access_token".into());
    let flow = gh.start_device_flow().await.unwrap();
    let err = gh.poll_device_flow(&flow).await.unwrap_err();
    assert!(matches!(err, IdentityError::Timeout(_)), "{err:?}");
    assert_secret_free(&err);

    // Every claim file hangs: each request is bounded, and so is the whole.
    let keys = RootKeypair::from_seed(&[6; 32]);
    let text = claim_text(&identity_claim(&keys, "alice")).unwrap();
    for _ in 0..5 {
        fake.add_gist("alice", true, &[(CLAIM_FILE_NAME, &text)]);
    }
    fake.state.lock().unwrap().hang.push("/raw/*".into());
    let started = Instant::now();
    let err = gh.claims_of("alice", None).await.unwrap_err();
    assert!(matches!(err, IdentityError::Timeout(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
}

/// One claim file that cannot be fetched fails the look-up: the claim is
/// not taken for withdrawn (a refresh would drop its node) because GitHub
/// did not answer in time.
#[tokio::test]
async fn a_claim_file_not_fetched_is_an_error_not_a_missing_claim() {
    let fake = fake().await;
    let gh = github_with(&fake, Duration::from_millis(500), Duration::from_secs(10));
    for seed in [7, 8] {
        let keys = RootKeypair::from_seed(&[seed; 32]);
        let text = claim_text(&identity_claim(&keys, "alice")).unwrap();
        fake.add_gist("alice", true, &[(CLAIM_FILE_NAME, &text)]);
    }
    assert_eq!(gh.claims_of("alice", None).await.unwrap().len(), 2);
    let first = fake.state.lock().unwrap().gists[0].id.clone();
    fake.state
        .lock()
        .unwrap()
        .hang
        .push(format!("/raw/alice/{first}/raw/{CLAIM_FILE_NAME}"));
    let err = gh.claims_of("alice", None).await.unwrap_err();
    assert!(matches!(err, IdentityError::Timeout(_)), "{err:?}");

    // A claim file that is gone (404) is simply not a claim.
    fake.state.lock().unwrap().hang.clear();
    fake.set_raw_url(
        &first,
        &format!("{}/raw/alice/gone/raw/{CLAIM_FILE_NAME}", fake.base),
    );
    assert_eq!(gh.claims_of("alice", None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_unreachable_provider_is_a_clear_error() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let gh = GitHub::new(GitHubConfig::at(
        CLIENT_ID,
        &format!("http://127.0.0.1:{port}"),
    ))
    .unwrap();
    let err = gh.user(&token(ALICE_TOKEN)).await.unwrap_err();
    assert!(
        matches!(
            err,
            IdentityError::Unreachable { .. } | IdentityError::Timeout(_)
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("could not reach"));
    assert_secret_free(&err);
}

#[test]
fn base_urls_are_checked() {
    assert!(GitHub::new(GitHubConfig::new(CLIENT_ID)).is_ok());
    let plain = GitHubConfig {
        api_url: "http://api.github.com".into(),
        ..GitHubConfig::new(CLIENT_ID)
    };
    assert!(matches!(GitHub::new(plain), Err(IdentityError::Config(_))));
    let junk = GitHubConfig {
        web_url: "not a url".into(),
        ..GitHubConfig::new(CLIENT_ID)
    };
    assert!(matches!(GitHub::new(junk), Err(IdentityError::Config(_))));
    assert!(matches!(
        GitHub::new(GitHubConfig::new("")),
        Err(IdentityError::Config(_))
    ));
    assert_eq!(
        GitHub::new(GitHubConfig::new(CLIENT_ID)).unwrap().id(),
        "github.com"
    );
}

#[test]
fn tokens_print_nothing() {
    let t = token(ALICE_TOKEN);
    assert_eq!(format!("{t:?}"), "AccessToken(<redacted>)");
    let d = polykey_identities::DeviceCode::new(DEVICE_CODE.into());
    assert_eq!(format!("{d:?}"), "DeviceCode(<redacted>)");
}

#[tokio::test]
async fn raw_files_are_fetched_only_from_the_raw_base() {
    let fake = fake().await;
    let elsewhere = FakeGitHub::start().await;
    let gh = github(&fake);
    let keys = RootKeypair::from_seed(&[7; 32]);
    let text = claim_text(&identity_claim(&keys, "alice")).unwrap();
    // The same claim, served at this server's own raw path, listed with
    // raw_urls outside the raw base: another host, another path, a scheme.
    let outside = [
        format!("{}/raw/alice/x/raw/{CLAIM_FILE_NAME}", elsewhere.base),
        format!("{}/rawish/alice/x/raw/{CLAIM_FILE_NAME}", fake.base),
        format!("{}/api/user", fake.base),
        "file:///etc/passwd".to_owned(),
    ];
    for url in &outside {
        let id = fake.add_gist("alice", true, &[(CLAIM_FILE_NAME, &text)]);
        fake.set_raw_url(&id, url);
    }
    assert!(gh.claims_of("alice", None).await.unwrap().is_empty());
    assert!(elsewhere.requests().is_empty(), "another host was asked");
    assert!(fake
        .requests()
        .iter()
        .all(|r| r.path == "/api/users/alice/gists"));
}
