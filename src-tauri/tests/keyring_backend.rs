//! Each OS build links its own keyring, never the crate's in-memory
//! stand-in (which would "remember" the key until the app quits).
#![allow(clippy::unwrap_used)]

#[test]
fn this_build_has_a_system_keyring() {
    assert!(polykey_desktop::keyring_unlock::has_system_keyring());
}
