fn main() {
    // tauri.conf.json lives at the repository root (see ARCHITECTURE.md).
    // The app manifest lists every command, so each window may call only
    // those its capability allows (src-tauri/capabilities/): without it,
    // every window could call every command.
    let manifest = tauri_build::AppManifest::new().commands(COMMANDS);
    let attributes = tauri_build::Attributes::new()
        .config_path("../tauri.conf.json")
        .app_manifest(manifest);
    if let Err(error) = tauri_build::try_build(attributes) {
        panic!("tauri build configuration failed: {error:#}");
    }
}

/// Every command `lib.rs` registers (`tauri::generate_handler!`).
const COMMANDS: &[&str] = &[
    "status",
    "create_node",
    "unlock",
    "lock",
    "recover",
    "change_password",
    "list_vaults",
    "create_vault",
    "rename_vault",
    "delete_vault",
    "deleted_vaults",
    "restore_deleted_vault",
    "deleted_secrets",
    "list_entries",
    "read_secret",
    "save_secret",
    "delete_secret",
    "rename_secret",
    "set_favourite",
    "secret_history",
    "restore_secret",
    "copy_field",
    "totp_code",
    "generate_password",
    "generate_passphrase",
    "password_strength",
    "touch",
    "keyring_status",
    "enable_keyring_unlock",
    "disable_keyring_unlock",
    "unlock_with_keyring",
    "preferences",
    "set_preferences",
    "quick_search",
    "quick_copy",
    "hide_palette",
    "show_main_window",
    "save_secret_file",
    "open_url",
    "devices",
    "invite_device",
    "pairing_state",
    "cancel_invitation",
    "copy_pairing_code",
    "join_device",
    "confirm_join",
    "confirm_pairing",
    "device_notices",
    "keep_device",
    "revoke_device",
    "sync_status",
    "conflicts",
    "resolve_conflict",
    "join_from_qr_picture",
    "contact_code",
    "people",
    "add_person",
    "remove_person",
    "set_person_permission",
    "vault_sharing",
    "share_vault",
    "unshare_vault",
    "notifications",
    "accept_share",
    "dismiss_share",
];
