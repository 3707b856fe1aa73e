//! The pipe's descriptor and the client's owner check, from the inside.

use std::os::windows::io::AsRawHandle;

use super::*;
use crate::security::{current_user, Sid, ACCESS_ALLOWED_ACE_TYPE, OWNER_ACCESS};

/// A name no other test (nor another run) uses.
fn unique_name(what: &str) -> String {
    format!(r"\\.\pipe\polykey-os-unit-{what}-{}", std::process::id())
}

#[tokio::test]
async fn the_server_pipe_is_owned_by_and_grants_only_the_current_user() {
    let name = unique_name("dacl");
    let server = create_server(&name, true).expect("create");
    let security =
        Security::of_handle(server.as_raw_handle(), SE_KERNEL_OBJECT).expect("read security");
    let user = current_user().expect("user");
    assert_eq!(security.owner.as_ref(), Some(&user));
    let aces = security.dacl.as_ref().expect("a DACL");
    assert_eq!(aces.len(), 1, "{aces:?}");
    assert_eq!(aces[0].kind, ACCESS_ALLOWED_ACE_TYPE);
    assert_eq!(aces[0].sid.as_ref(), Some(&user));
    assert_eq!(aces[0].mask, OWNER_ACCESS);
}

#[tokio::test]
async fn a_pipe_owned_by_someone_else_is_refused() {
    let name = unique_name("owner");
    let _server = create_server(&name, true).expect("create");
    // Another user cannot be made to own a pipe without privileges, so the
    // client is told to expect another owner instead: LocalSystem.
    let refused = tokio::task::spawn_blocking({
        let name = name.clone();
        move || {
            let system = Sid::parse("S-1-5-18").expect("parse");
            connect_client_owned_by(&name, &system)
        }
    })
    .await
    .expect("join")
    .expect_err("refused");
    assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
    let message = refused.to_string();
    assert!(message.contains("another user"), "{message}");
    assert!(message.contains(&name), "{message}");
    // The same pipe, expected to be ours, is accepted (by a new instance:
    // the first stays taken until the server disconnects it).
    let _second = create_server(&name, false).expect("second instance");
    tokio::task::spawn_blocking(move || connect_client(&name))
        .await
        .expect("join")
        .expect("our own pipe is accepted");
}

#[test]
fn only_local_pipe_names_are_accepted() {
    for bad in [
        "",
        r"\\.\pipe\",
        r"C:\file",
        r"\\server\pipe\name",
        r"\\.\pipe\a\b",
        "\\\\.\\pipe\\nul\0",
    ] {
        let e = check_name(bad).expect_err(bad);
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
    }
    let longest = format!(
        "{PIPE_PREFIX}{}",
        "a".repeat(MAX_PIPE_NAME_LEN - PIPE_PREFIX.len())
    );
    check_name(&longest).expect("the longest name");
    let e = check_name(&format!("{longest}a")).expect_err("one past the limit");
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    check_name(r"\\.\PIPE\polykey").expect("case-insensitive prefix");
}

#[test]
fn creating_a_server_outside_a_runtime_is_an_error_not_a_panic() {
    let e = create_server(&unique_name("no-runtime"), true).expect_err("no runtime");
    assert!(e.to_string().contains("Tokio runtime"), "{e}");
}
