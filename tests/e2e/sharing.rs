//! Two people, each with their own app and node on one display: Bob gives
//! Alice his contact code and adds hers, letting her send him offers;
//! Alice shares a vault with him read only; Bob accepts the offer, sees
//! her login in a vault marked as hers, and cannot change it; Alice stops
//! sharing and Bob's copy says so.

use polykey_tests::gui::{App, Driver};

use crate::devices::{add_login, click_with_text, count_is, shows, until};
use crate::{create_node_with, create_vault, FirstRun};

const PASSWORD_ALICE: &str = "cedar-lantern-river-58";
const PASSWORD_BOB: &str = "pebble-sonnet-quartz-26";

/// The contact code `app` shows on its People page.
async fn contact_code(app: &App) -> String {
    app.click("people-button").await;
    app.click("show-contact").await;
    app.find("contact-code").await;
    let code = app
        .execute(
            "return document.querySelector('[data-testid=\"contact-code\"]').value;",
            Vec::new(),
        )
        .await;
    let code = code.as_str().expect("the code is text").to_owned();
    assert!(code.starts_with("polykey-contact:"), "{code}");
    code
}

async fn add_person(app: &App, code: &str) {
    app.click("show-contact").await;
    app.type_into("add-person-input", code).await;
    app.click("add-person-submit").await;
    app.find("person-card").await;
}

#[tokio::test]
async fn alice_shares_a_vault_bob_accepts_sees_it_read_only_and_the_share_ends() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let driver_a = Driver::start(dir_a.path()).await;
    let driver_b = Driver::start(dir_b.path()).await;
    let alice = driver_a.launch().await;
    create_node_with(&alice, PASSWORD_ALICE, FirstRun::Create, false).await;
    let bob = driver_b.launch().await;
    create_node_with(&bob, PASSWORD_BOB, FirstRun::Create, false).await;

    create_vault(&alice, "Team").await;
    add_login(&alice, "wifi", "Office wifi").await;

    // They exchange contact codes; Bob lets Alice send him offers.
    let (alice_code, bob_code) = (contact_code(&alice).await, contact_code(&bob).await);
    add_person(&bob, &alice_code).await;
    bob.screenshot("60-people").await;
    bob.click("person-notify").await;
    until(
        &bob,
        "Bob allowed Alice to notify him",
        "return document.querySelector('[data-testid=\"person-notify\"]').checked;",
    )
    .await;
    add_person(&alice, &bob_code).await;
    bob.screenshot("60-people").await;

    // Alice shares "Team" read only.
    click_with_text(&alice, "vault-item", "Team").await;
    alice.click("share-vault").await;
    alice.find("share-dialog").await;
    alice.type_into("share-target", &bob_code).await;
    alice.click("share-submit").await;
    until(
        &alice,
        "Alice shared",
        &shows("share-notice", "they were sent an offer"),
    )
    .await;
    until(&alice, "Bob has access", &count_is("share-grant", 1)).await;
    alice.screenshot("61-share-dialog").await;
    alice.click("share-close").await;

    // Bob accepts the offer and sees Alice's login, marked as hers.
    until(
        &bob,
        "the offer's badge",
        &shows("notifications-badge", "1"),
    )
    .await;
    bob.click("notifications-button").await;
    bob.screenshot("62-offer").await;
    bob.click("accept-share").await;
    bob.find("share-accepted").await;
    until(
        &bob,
        "the shared vault is listed",
        &shows("vault-item", "Team"),
    )
    .await;
    until(
        &bob,
        "it is marked",
        &shows("vault-shared-mark", "read only"),
    )
    .await;
    click_with_text(&bob, "vault-item", "Team").await;
    until(
        &bob,
        "Alice's login shows",
        &shows("secret-item", "Office wifi"),
    )
    .await;
    assert_eq!(bob.count("share-vault").await, 0, "Bob cannot share it on");
    bob.screenshot("63-shared-vault").await;

    // Alice stops sharing: Bob keeps his copy, marked as no longer shared.
    click_with_text(&alice, "vault-item", "Team").await;
    alice.click("share-vault").await;
    alice.click("unshare").await;
    until(&alice, "nobody has access", &count_is("share-grant", 0)).await;
    until(
        &bob,
        "Bob's copy says it is no longer shared",
        &shows("vault-shared-mark", "no longer shared"),
    )
    .await;
    assert!(bob.count("secret-item").await >= 1, "Bob keeps what he had");
    bob.screenshot("64-no-longer-shared").await;
}
