//! Polykey desktop: a thin Tauri shell. It opens the node directory, hands
//! the [`polykey_node::Node`] to Tauri's state, registers one-line commands
//! into it, and owns what only a desktop has: the clipboard, the tray, the
//! quick-access palette behind a global shortcut, auto-lock, the OS keyring.
//! No vault logic lives here.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// Locking after a quiet spell.
pub mod autolock;
/// Copying secrets with a clear-after timer, hidden from clipboard history.
pub mod clipboard;
/// The Tauri commands: one line each, into polykey-node.
mod commands;
/// Binary secrets saved as files; links opened in the browser.
pub mod files;
/// Opt-in unlock through the OS keyring.
pub mod keyring_unlock;
/// Free memory given back to the system after the window's requests.
mod memory;
/// The quick-access palette and its global shortcut.
pub mod palette;
/// Locking when the screen locks or the system sleeps.
#[cfg(target_os = "linux")]
pub mod screen_lock;
/// The system tray: favourites and recent secrets to copy; lock, show, quit.
pub mod tray;

use std::sync::Arc;

use polykey_node::{default_node_path, Node, NodeOptions};
use tauri::Manager;

/// The main window's label.
pub const MAIN_WINDOW: &str = "main";

/// Show, unminimize and focus the main window.
pub fn show_main<R: tauri::Runtime>(app: &tauri::AppHandle<R>) {
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// Lock the node and tell every window, so each drops what it shows.
pub async fn lock<R: tauri::Runtime>(
    app: &tauri::AppHandle<R>,
    node: &Node,
) -> Result<(), polykey_node::api::ApiError> {
    node.lock().await?;
    let _ = tauri::Emitter::emit(app, autolock::LOCKED_EVENT, ());
    Ok(())
}

/// Which window properties are remembered.
fn window_state_flags() -> tauri_plugin_window_state::StateFlags {
    use tauri_plugin_window_state::StateFlags;
    StateFlags::SIZE | StateFlags::POSITION | StateFlags::MAXIMIZED
}

/// Save the main window's size and position shortly after the user stops
/// moving or resizing it, not only at a clean exit (which a crash, a killed
/// session or a logout never reaches).
fn remember_window<R: tauri::Runtime>(app: &tauri::AppHandle<R>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tauri_plugin_window_state::AppHandleExt;
    let Some(window) = app.get_webview_window(MAIN_WINDOW) else {
        return;
    };
    let changes = Arc::new(AtomicU64::new(0));
    let app = app.clone();
    window.on_window_event(move |event| {
        if !matches!(
            event,
            tauri::WindowEvent::Moved(_) | tauri::WindowEvent::Resized(_)
        ) {
            return;
        }
        let seen = changes.fetch_add(1, Ordering::SeqCst) + 1;
        let (app, changes) = (app.clone(), Arc::clone(&changes));
        tauri::async_runtime::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            if changes.load(Ordering::SeqCst) == seen {
                let _ = app.save_window_state(window_state_flags());
            }
        });
    });
}

fn context() -> tauri::Context {
    tauri::generate_context!("../tauri.conf.json")
}

/// Another process holds the node: if it is this user's running app, the
/// single-instance plugin hands over to it (focusing its window) and exits
/// this process successfully; otherwise say that the node is in use.
fn hand_over(error: polykey_node::NodeError) -> anyhow::Error {
    let message = error.to_string();
    let built = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|_, _, _| {}))
        .setup(move |_| Err(message.into()))
        .build(context());
    match built {
        Ok(_) => anyhow::Error::new(error),
        Err(refused) => anyhow::anyhow!("{refused}"),
    }
}

/// Serve the `polykey` command on the node's client socket while the app
/// runs (the CLI then uses this node instead of opening the directory).
fn serve_cli(node: Node) {
    tauri::async_runtime::spawn(async move {
        let (_running, stop) = tokio::sync::watch::channel(false);
        // `agent stop` does not stop it: the app holds the node directory,
        // so the CLI could then neither reach the node nor open it.
        let options = polykey_node::client_api::ClientApiOptions {
            stoppable: false,
            ..Default::default()
        };
        let _ = node.serve_client_api_with(stop, options).await;
    });
}

/// Tell the windows when the node's contents change (a sync, a pairing, a
/// device coming online), at most four times a second.
fn forward_changes(app: tauri::AppHandle, node: Node) {
    use tauri::Emitter;
    tauri::async_runtime::spawn(async move {
        let mut changes = node.changes();
        while changes.changed().await.is_ok() {
            // Locked (by any path): a secret still on the clipboard goes.
            if let Some(clipboard) = app.try_state::<Arc<clipboard::Clipboard>>() {
                if node.status().state != polykey_node::NodeState::Unlocked {
                    clipboard.clear_if_ours();
                } else if node.pairing_code().is_err() {
                    // The pairing ended (paired, failed, expired): its code
                    // admits no one any more and leaves the clipboard.
                    clipboard.clear_pairing_code();
                }
            }
            let _ = app.emit("node-changed", ());
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    });
}

/// The node's options: the network as the environment sets it
/// (`POLYKEY_LISTEN`, `POLYKEY_MDNS`, `POLYKEY_SEEDS`, `POLYKEY_NETWORK`).
fn node_options() -> NodeOptions {
    NodeOptions {
        network: polykey_node::NetworkOptions::from_env(),
        ..NodeOptions::default()
    }
}

/// Whether `url` is one of the app's own pages (served from its assets:
/// `tauri://localhost` on Linux and macOS, `http(s)://tauri.localhost` on
/// Windows, each only where it is the app's: elsewhere tauri.localhost
/// may name a server of this machine), the only pages its windows may show.
pub fn is_app_url(url: &tauri::Url) -> bool {
    if cfg!(any(windows, target_os = "android")) {
        matches!(url.scheme(), "http" | "https") && url.host_str() == Some("tauri.localhost")
    } else {
        url.scheme() == "tauri" && url.host_str() == Some("localhost")
    }
}

/// The windows never leave the app's pages: a website link followed
/// inside one (the web view's own "Open Link", a link dragged in) showed
/// that site in place of Polykey, free to draw a lock screen asking for
/// the password. Websites open in the system browser (`open_url`).
fn stay_on_the_app<R: tauri::Runtime>() -> tauri::plugin::TauriPlugin<R> {
    tauri::plugin::Builder::new("stay-on-the-app")
        .on_navigation(|_, url| is_app_url(url))
        .build()
}

/// Start the app; returns when it quits.
pub fn run() -> anyhow::Result<()> {
    let path = default_node_path();
    let node = match tauri::async_runtime::block_on(Node::open(&path, node_options())) {
        Ok(node) => node,
        Err(polykey_node::NodeError::InUse) => {
            return Err(hand_over(polykey_node::NodeError::InUse))
        }
        Err(error) => {
            return Err(anyhow::Error::new(error)
                .context(format!("cannot open the node at {}", path.display())))
        }
    };
    let for_setup = node.clone();
    tauri::Builder::default()
        // First: a second launch focuses this one's window and exits before
        // it touches anything.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            show_main(app)
        }))
        .plugin(
            tauri_plugin_window_state::Builder::default()
                .with_state_flags(window_state_flags())
                .with_denylist(&[palette::PALETTE_WINDOW])
                .build(),
        )
        .plugin(tauri_plugin_clipboard_manager::init())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(stay_on_the_app())
        .plugin(palette::shortcut_plugin())
        .manage(node)
        .manage(Arc::new(clipboard::Clipboard::new()))
        // The quick-access shortcut is grabbed once the first page has
        // loaded, not in setup (see palette::grab_shortcut).
        .on_page_load(|webview, payload| {
            if payload.event() == tauri::webview::PageLoadEvent::Finished {
                palette::grab_shortcut(webview.app_handle());
            }
        })
        .setup(move |app| {
            let handle = app.handle().clone();
            remember_window(&handle);
            autolock::spawn(handle.clone(), for_setup.clone());
            #[cfg(target_os = "linux")]
            screen_lock::spawn(handle.clone(), for_setup.clone());
            forward_changes(handle.clone(), for_setup.clone());
            serve_cli(for_setup.clone());
            if tray::wanted(&for_setup.preferences()) {
                tray::install(&handle, for_setup.clone());
            }
            Ok(())
        })
        .invoke_handler(memory::trimmed(tauri::generate_handler![
            commands::status,
            commands::create_node,
            commands::suggested_device_name,
            commands::password_health,
            commands::breached_logins,
            commands::set_device_name,
            commands::unlock,
            commands::lock,
            commands::recover,
            commands::change_password,
            commands::app_version,
            commands::data_directory,
            commands::list_vaults,
            commands::create_vault,
            commands::rename_vault,
            commands::delete_vault,
            commands::deleted_vaults,
            commands::restore_deleted_vault,
            commands::deleted_secrets,
            commands::list_entries,
            commands::read_secret,
            commands::save_secret,
            commands::delete_secret,
            commands::rename_secret,
            commands::set_favourite,
            commands::secret_history,
            commands::restore_secret,
            commands::copy_field,
            commands::totp_code,
            commands::generate_password,
            commands::generate_passphrase,
            commands::password_strength,
            commands::touch,
            commands::backup_schedule,
            commands::set_backup_schedule,
            commands::clear_backup_schedule,
            commands::back_up_now,
            commands::restore_backup,
            commands::import_preview,
            commands::import_items,
            commands::import_forget,
            commands::keyring_status,
            commands::enable_keyring_unlock,
            commands::disable_keyring_unlock,
            commands::unlock_with_keyring,
            commands::preferences,
            commands::set_preferences,
            commands::quick_search,
            commands::quick_copy,
            commands::hide_palette,
            commands::show_main_window,
            commands::save_secret_file,
            commands::attach_file,
            commands::save_attachment,
            commands::open_url,
            commands::devices,
            commands::invite_device,
            commands::pairing_state,
            commands::cancel_invitation,
            commands::copy_pairing_code,
            commands::join_device,
            commands::confirm_join,
            commands::confirm_pairing,
            commands::device_notices,
            commands::device_disputes,
            commands::removal_effect,
            commands::keep_device,
            commands::revoke_device,
            commands::sync_status,
            commands::conflicts,
            commands::resolve_conflict,
            commands::join_from_qr_picture,
            commands::contact_code,
            commands::people,
            commands::add_person,
            commands::remove_person,
            commands::set_person_permission,
            commands::vault_sharing,
            commands::share_vault,
            commands::unshare_vault,
            commands::notifications,
            commands::accept_share,
            commands::dismiss_share,
            commands::contact_from_qr_picture,
            commands::identity_login_start,
            commands::identity_login_finish,
            commands::claim_identity,
            commands::linked_identities,
        ]))
        .build(context())?
        .run(|app, event| {
            // Quitting: a secret still on the clipboard goes.
            if let tauri::RunEvent::Exit = event {
                if let Some(clipboard) = app.try_state::<Arc<clipboard::Clipboard>>() {
                    clipboard.clear_if_ours();
                }
            }
        });
    Ok(())
}
