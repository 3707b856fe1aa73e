//! Other people: a node of another gestalt trusted here, and allowed to
//! send notifications, reaches this node; nobody else does, and nothing
//! more than notifications.

use polykey_network::{Request, Response};
use polykey_node::people::Permission;

use crate::device;
use crate::rogue::{dial, rogue};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_a_person_trusted_with_notify_may_send_notifications() {
    let (alice, bob, carol) = (device().await, device().await, device().await);
    for sender in [&alice, &carol] {
        sender.connect_to(&bob).await;
    }
    let send = |from: &crate::Device, text: &str| {
        let (node, to, text) = (from.node.clone(), bob.id(), text.to_owned());
        async move { node.send_notification(to, text).await }
    };
    assert!(send(&alice, "not trusted").await.is_err());
    let alice_name = alice.id().to_string();
    let trusted = bob.node.trust(&alice_name).await.unwrap();
    assert_eq!(trusted.nodes, vec![alice.id()]);
    assert!(!trusted.notify && !trusted.scan);
    assert!(send(&alice, "trusted, notify not allowed").await.is_err());
    bob.node
        .set_permission(&alice_name, Permission::Notify, true)
        .await
        .unwrap();
    send(&alice, "hello from alice").await.unwrap();
    assert!(send(&carol, "hello from carol").await.is_err());
    // Trusted with notify is not a device: anything else it asks is refused.
    let raw = rogue(140).await;
    dial(&raw, &bob).await;
    let raw_name = raw.id().to_string();
    bob.node.trust(&raw_name).await.unwrap();
    bob.node
        .set_permission(&raw_name, Permission::Notify, true)
        .await
        .unwrap();
    let answer = raw.client.request(bob.id(), Request::Vaults).await.unwrap();
    assert!(matches!(answer, Response::Refused(_)), "{answer:?}");
    bob.node.untrust(&raw_name).await.unwrap();
    let texts: Vec<String> = bob
        .node
        .read_notifications(false)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.text)
        .collect();
    assert_eq!(texts, ["hello from alice"]);
    assert!(bob.node.untrust(&alice_name).await.unwrap());
    assert!(send(&alice, "untrusted").await.is_err());
    assert!(bob.node.people().await.unwrap().is_empty());
    // This node and its devices are not people.
    assert!(bob.node.trust(&bob.id().to_string()).await.is_err());
}
