//! Polykey desktop: a thin Tauri shell. It opens the node directory, hands
//! the [`polykey_node::Node`] to Tauri's state, and registers one-line
//! commands into it. No logic lives here.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]
#![forbid(unsafe_code)]

/// Locking after a quiet spell.
mod autolock;
/// Copying secrets with a clear-after timer.
mod clipboard;
/// The Tauri commands: one line each, into polykey-node.
mod commands;
/// Opt-in unlock through the OS keyring.
mod keyring_unlock;

use polykey_node::{default_node_path, Node, NodeOptions};

fn main() {
    if let Err(error) = run() {
        eprintln!("Polykey could not start: {error:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let path = default_node_path();
    let node = tauri::async_runtime::block_on(Node::open(&path, NodeOptions::default()))?;
    let idle_watch = node.clone();
    tauri::Builder::default()
        .plugin(tauri_plugin_clipboard_manager::init())
        .setup(move |app| {
            autolock::spawn(app.handle().clone(), idle_watch);
            Ok(())
        })
        .manage(node)
        .invoke_handler(tauri::generate_handler![
            commands::status,
            commands::create_node,
            commands::unlock,
            commands::lock,
            commands::recover,
            commands::change_password,
            commands::list_vaults,
            commands::create_vault,
            commands::rename_vault,
            commands::delete_vault,
            commands::list_secrets,
            commands::read_secret,
            commands::save_secret,
            commands::delete_secret,
            commands::rename_secret,
            commands::secret_history,
            commands::restore_secret,
            commands::copy_field,
            commands::totp_code,
            commands::generate_password,
            commands::generate_passphrase,
            commands::password_strength,
            commands::touch,
            commands::keyring_status,
            commands::enable_keyring_unlock,
            commands::disable_keyring_unlock,
            commands::unlock_with_keyring,
        ])
        .run(tauri::generate_context!("../tauri.conf.json"))?;
    Ok(())
}
