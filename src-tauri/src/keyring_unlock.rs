//! Opt-in unlock through the OS keyring (the Secret Service on Linux, the
//! Keychain on macOS, the Credential Manager on Windows): it keeps the
//! key-encryption key, never the password. Turning it off deletes the
//! entry. If the keyring cannot be reached, or this build has none (the
//! `keyring` crate then stands in with a store in memory), the app says so
//! and the password still works.

use polykey_node::api::{ApiError, ErrorCode, KeyringStatusDto};
use polykey_node::{Node, Password};
use zeroize::Zeroizing;

const SERVICE: &str = "Polykey";

fn unavailable(error: keyring::Error) -> ApiError {
    ApiError {
        code: ErrorCode::KeyringUnavailable,
        message: format!("the system keyring is unavailable ({error}); unlock with your password"),
    }
}

/// Whether this build's keyring keeps entries on the system, rather than
/// the `keyring` crate's stand-in that forgets them when the app quits.
pub fn has_system_keyring() -> bool {
    use keyring::credential::CredentialPersistence;
    matches!(
        keyring::default::default_credential_builder().persistence(),
        CredentialPersistence::UntilDelete | CredentialPersistence::UntilReboot
    )
}

fn entry(node: &Node) -> Result<keyring::Entry, ApiError> {
    if !has_system_keyring() {
        return Err(ApiError {
            code: ErrorCode::KeyringUnavailable,
            message: "this system has no keyring Polykey can use; unlock with your password".into(),
        });
    }
    let id = node.status().node_id.ok_or_else(|| ApiError {
        code: ErrorCode::NotInitialised,
        message: "there is no node yet".into(),
    })?;
    #[cfg(not(windows))]
    return keyring::Entry::new(SERVICE, &id.to_string()).map_err(unavailable);
    #[cfg(windows)]
    return Ok(keyring::Entry::new_with_credential(Box::new(
        local::LocalCredential::new(&id.to_string()),
    )));
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tauri::async_runtime::spawn_blocking(work)
        .await
        .map_err(|e| ApiError {
            code: ErrorCode::Internal,
            message: e.to_string(),
        })?
}

/// Whether the keyring answers and holds a key for this node.
pub async fn status(node: Node) -> Result<KeyringStatusDto, ApiError> {
    blocking(move || {
        let entry = match entry(&node) {
            Ok(entry) => entry,
            Err(error) => {
                return Ok(KeyringStatusDto {
                    available: false,
                    enabled: false,
                    problem: Some(error.message),
                })
            }
        };
        Ok(match entry.get_secret() {
            Ok(mut secret) => {
                zeroize::Zeroize::zeroize(&mut secret);
                KeyringStatusDto {
                    available: true,
                    enabled: true,
                    problem: None,
                }
            }
            Err(keyring::Error::NoEntry) => KeyringStatusDto {
                available: true,
                enabled: false,
                problem: None,
            },
            Err(error) => KeyringStatusDto {
                available: false,
                enabled: false,
                problem: Some(unavailable(error).message),
            },
        })
    })
    .await
}

/// Check `password`, then keep its key-encryption key in the keyring.
pub async fn enable(node: Node, password: String) -> Result<(), ApiError> {
    let kek = node.key_encryption_key(Password::from(password)).await?;
    blocking(move || {
        entry(&node)?
            .set_secret(kek.as_slice())
            .map_err(unavailable)
    })
    .await
}

/// Change the node's password; if the keyring holds this node's key, keep
/// the new password's key there instead, so keyring unlock goes on working.
/// Once the password has changed, a keyring failure changes nothing: the
/// old key is found stale at the next unlock, deleted, and the password
/// asked for.
pub async fn change_password(node: Node, old: String, new: String) -> Result<(), ApiError> {
    node.change_password(Password::from(old), Password::from(new.clone()))
        .await?;
    if status(node.clone()).await.is_ok_and(|s| s.enabled) {
        let _ = enable(node, new).await;
    }
    Ok(())
}

/// Delete the keyring entry.
pub async fn disable(node: Node) -> Result<(), ApiError> {
    blocking(move || match entry(&node)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(error) => Err(unavailable(error)),
    })
    .await
}

/// Unlock with the key kept in the keyring. A stale key is deleted.
pub async fn unlock(node: Node) -> Result<(), ApiError> {
    let reader = node.clone();
    let kek = blocking(move || {
        let secret = Zeroizing::new(entry(&reader)?.get_secret().map_err(|error| match error {
            keyring::Error::NoEntry => ApiError {
                code: ErrorCode::KeyringNotEnabled,
                message: "keyring unlock is not turned on for this node".into(),
            },
            other => unavailable(other),
        })?);
        let bytes: [u8; 32] = secret.as_slice().try_into().map_err(|_| ApiError {
            code: ErrorCode::KeyringStale,
            message: "the keyring entry is damaged; unlock with your password".into(),
        })?;
        Ok(Zeroizing::new(bytes))
    })
    .await?;
    match node.unlock_with_key(kek).await {
        Err(polykey_node::NodeError::StaleKey) => {
            let _ = disable(node).await;
            Err(polykey_node::NodeError::StaleKey.into())
        }
        other => Ok(other?),
    }
}

/// Windows: the Credential Manager entry kept on this machine only. The
/// keyring crate's own writes `CRED_PERSIST_ENTERPRISE`, which roams with
/// the profile to other machines and the profile server; this key unlocks
/// the root key without the password, so it stays here.
#[cfg(windows)]
mod local {
    use keyring::credential::CredentialApi;

    /// One entry: target `<NodeId>.Polykey`, as the keyring crate names it.
    #[derive(Debug)]
    pub(super) struct LocalCredential {
        target: String,
    }

    impl LocalCredential {
        pub(super) fn new(user: &str) -> Self {
            Self {
                target: format!("{user}.{}", super::SERVICE),
            }
        }
    }

    fn failure(error: std::io::Error) -> keyring::Error {
        keyring::Error::PlatformFailure(Box::new(error))
    }

    impl CredentialApi for LocalCredential {
        fn set_secret(&self, secret: &[u8]) -> keyring::Result<()> {
            polykey_os::credential::write(&self.target, secret).map_err(failure)
        }

        fn get_secret(&self) -> keyring::Result<Vec<u8>> {
            match polykey_os::credential::read(&self.target).map_err(failure)? {
                Some((secret, _)) => Ok(secret),
                None => Err(keyring::Error::NoEntry),
            }
        }

        fn delete_credential(&self) -> keyring::Result<()> {
            match polykey_os::credential::delete(&self.target).map_err(failure)? {
                true => Ok(()),
                false => Err(keyring::Error::NoEntry),
            }
        }

        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }
}
