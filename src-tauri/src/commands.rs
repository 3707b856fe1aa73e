use std::sync::Arc;

use polykey_node::api::{
    ApiError, BackupDto, ConflictDto, ContactDto, CreatedDto, DeletedSecretDto, DeletedVaultDto,
    DeviceDisputeDto, DeviceDto, DeviceNoticeDto, EntryDto, HealthItemDto, ImportPreviewDto,
    ImportReportDto, ImportRequestDto, InvitationDto, JoinedDto, KeyringStatusDto, NotificationDto,
    PairingStateDto, PasswordRulesDto, PersonDto, QuickItemDto, RemovalEffectDto, RestoredDto,
    SecretDto, StatusDto, StrengthDto, SyncStatusDto, TotpDto, VaultDto, VaultSharingDto,
    VersionDto,
};
use polykey_node::backup::BackupSchedule;
use polykey_node::{items, Node, Preferences};
use tauri::{AppHandle, State};

use crate::clipboard::{clear_after, Clipboard};

type Result<T> = std::result::Result<T, CommandError>;

/// An error as a command returns it to the window: the node's [`ApiError`],
/// unchanged. The window shows a plain sentence for technical ones (`io`,
/// `internal`), so their own text goes to the log, the app's standard
/// error, where someone helping can find it.
#[derive(Debug, serde::Serialize)]
#[serde(transparent)]
pub struct CommandError(ApiError);

impl From<ApiError> for CommandError {
    fn from(error: ApiError) -> Self {
        use polykey_node::api::ErrorCode;
        if matches!(error.code, ErrorCode::Io | ErrorCode::Internal) {
            eprintln!("polykey: {}", error.message);
        }
        Self(error)
    }
}

impl From<polykey_node::NodeError> for CommandError {
    fn from(error: polykey_node::NodeError) -> Self {
        ApiError::from(error).into()
    }
}

#[tauri::command]
pub async fn status(node: State<'_, Node>) -> Result<StatusDto> {
    Ok(node.status().into())
}

#[tauri::command]
pub async fn create_node(node: State<'_, Node>, password: String) -> Result<CreatedDto> {
    Ok(node.create(password.into()).await?.into())
}

#[tauri::command]
pub async fn unlock(node: State<'_, Node>, password: String) -> Result<()> {
    Ok(node.unlock(password.into()).await?)
}

#[tauri::command]
pub async fn lock(app: AppHandle, node: State<'_, Node>) -> Result<()> {
    Ok(crate::lock(&app, &node).await?)
}

#[tauri::command]
pub async fn recover(node: State<'_, Node>, code: String, password: String) -> Result<()> {
    // The code is wiped when done, as the password is (`Password`).
    Ok(node
        .recover(&zeroize::Zeroizing::new(code), password.into())
        .await?)
}

#[tauri::command]
pub async fn change_password(node: State<'_, Node>, old: String, new: String) -> Result<()> {
    Ok(crate::keyring_unlock::change_password(node.inner().clone(), old, new).await?)
}

/// The app's version, for Settings' About.
#[tauri::command]
pub fn app_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// The logins whose password is weak, reused or old.
#[tauri::command]
pub async fn password_health(node: State<'_, Node>) -> Result<Vec<HealthItemDto>> {
    Ok(node.password_health().await?)
}

/// The logins whose password appears in known breaches (the opt-in
/// k-anonymity check; refused while it is off).
#[tauri::command]
pub async fn breached_logins(node: State<'_, Node>) -> Result<Vec<HealthItemDto>> {
    Ok(node.breached_logins().await?)
}

/// The name offered for this device at setup (its host name).
#[tauri::command]
pub fn suggested_device_name() -> String {
    polykey_node::names::suggested_name()
}

/// Name this device (shown on the user's other devices).
#[tauri::command]
pub async fn set_device_name(node: State<'_, Node>, name: String) -> Result<()> {
    Ok(node.set_device_name(name).await?)
}

/// Where this node keeps its files, for Settings' About.
#[tauri::command]
pub fn data_directory(node: State<'_, Node>) -> String {
    node.path().display().to_string()
}

#[tauri::command]
pub async fn list_vaults(node: State<'_, Node>) -> Result<Vec<VaultDto>> {
    Ok(node.vaults().await?.into_iter().map(Into::into).collect())
}

#[tauri::command]
pub async fn create_vault(node: State<'_, Node>, name: String) -> Result<VaultDto> {
    Ok(node.create_vault(name).await?.into())
}

#[tauri::command]
pub async fn rename_vault(node: State<'_, Node>, vault: String, new_name: String) -> Result<()> {
    Ok(node.rename_vault(vault, new_name).await?)
}

#[tauri::command]
pub async fn delete_vault(node: State<'_, Node>, vault: String) -> Result<()> {
    Ok(node.delete_vault(vault).await?)
}

#[tauri::command]
pub async fn deleted_vaults(node: State<'_, Node>) -> Result<Vec<DeletedVaultDto>> {
    Ok(node.deleted_vaults_dto().await?)
}

#[tauri::command]
pub async fn restore_deleted_vault(node: State<'_, Node>, id: String) -> Result<VaultDto> {
    Ok(node.restore_deleted_vault(id).await?)
}

#[tauri::command]
pub async fn deleted_secrets(node: State<'_, Node>) -> Result<Vec<DeletedSecretDto>> {
    Ok(node.deleted_secrets_dto().await?)
}

#[tauri::command]
pub async fn list_entries(node: State<'_, Node>, vault: String) -> Result<Vec<EntryDto>> {
    Ok(node.list_entries(vault).await?)
}

#[tauri::command]
pub async fn set_favourite(
    node: State<'_, Node>,
    vault: String,
    path: String,
    favourite: bool,
) -> Result<()> {
    Ok(node.set_favourite(vault, path, favourite).await?)
}

#[tauri::command]
pub async fn read_secret(
    node: State<'_, Node>,
    vault: String,
    path: String,
    version: Option<String>,
) -> Result<SecretDto> {
    Ok(node.read_secret(vault, path, version).await?)
}

#[tauri::command]
pub async fn save_secret(
    node: State<'_, Node>,
    vault: String,
    secret: SecretDto,
    is_new: bool,
) -> Result<String> {
    Ok(node.save_secret(vault, secret, is_new).await?)
}

#[tauri::command]
pub async fn delete_secret(node: State<'_, Node>, vault: String, path: String) -> Result<String> {
    Ok(node.remove_secret(vault, path, true).await?)
}

#[tauri::command]
pub async fn rename_secret(
    node: State<'_, Node>,
    vault: String,
    from: String,
    to: String,
) -> Result<String> {
    Ok(node.rename_secret(vault, from, to).await?)
}

#[tauri::command]
pub async fn secret_history(
    node: State<'_, Node>,
    vault: String,
    path: String,
) -> Result<Vec<VersionDto>> {
    Ok(node.secret_history_dto(vault, path).await?)
}

#[tauri::command]
pub async fn restore_secret(
    node: State<'_, Node>,
    vault: String,
    path: String,
    version: String,
) -> Result<String> {
    Ok(node.restore(vault, version, Some(path)).await?)
}

#[tauri::command]
pub async fn copy_field(
    node: State<'_, Node>,
    clipboard: State<'_, Arc<Clipboard>>,
    vault: String,
    path: String,
    field: String,
) -> Result<u64> {
    Ok(clipboard.copy_secret(
        node.secret_field(vault, path, field).await?,
        clear_after(&node),
    )?)
}

#[tauri::command]
pub async fn totp_code(setting: String) -> Result<TotpDto> {
    Ok(items::totp_code(&setting)?)
}

#[tauri::command]
pub async fn generate_password(rules: PasswordRulesDto) -> Result<String> {
    Ok(items::generate_password(rules)?.to_string())
}

#[tauri::command]
pub async fn generate_passphrase(words: u32) -> Result<String> {
    Ok(items::generate_passphrase(words)?.to_string())
}

#[tauri::command]
pub async fn password_strength(password: String) -> Result<StrengthDto> {
    Ok(items::password_strength(&password))
}

// Synchronous: a cheap timestamp update, fine on the main thread.
#[tauri::command]
pub fn touch(node: State<'_, Node>) {
    node.touch()
}

#[tauri::command]
pub async fn keyring_status(node: State<'_, Node>) -> Result<KeyringStatusDto> {
    Ok(crate::keyring_unlock::status(node.inner().clone()).await?)
}

#[tauri::command]
pub async fn enable_keyring_unlock(node: State<'_, Node>, password: String) -> Result<()> {
    Ok(crate::keyring_unlock::enable(node.inner().clone(), password).await?)
}

#[tauri::command]
pub async fn disable_keyring_unlock(node: State<'_, Node>) -> Result<()> {
    Ok(crate::keyring_unlock::disable(node.inner().clone()).await?)
}

#[tauri::command]
pub async fn unlock_with_keyring(node: State<'_, Node>) -> Result<()> {
    Ok(crate::keyring_unlock::unlock(node.inner().clone()).await?)
}

#[tauri::command]
pub async fn preferences(node: State<'_, Node>) -> Result<Preferences> {
    Ok(node.preferences())
}

#[tauri::command]
pub async fn set_preferences(
    app: AppHandle,
    node: State<'_, Node>,
    preferences: Preferences,
) -> Result<()> {
    Ok(crate::palette::apply_preferences(&app, &node, preferences).await?)
}

#[tauri::command]
pub async fn quick_search(node: State<'_, Node>, query: String) -> Result<Vec<QuickItemDto>> {
    Ok(node.quick_search(query, 50).await?)
}

#[tauri::command]
pub async fn quick_copy(
    app: AppHandle,
    node: State<'_, Node>,
    clipboard: State<'_, Arc<Clipboard>>,
    vault: String,
    path: String,
) -> Result<u64> {
    Ok(crate::palette::copy(&app, &node, &clipboard, vault, path).await?)
}

#[tauri::command]
pub fn hide_palette(app: AppHandle) {
    crate::palette::hide(&app)
}

#[tauri::command]
pub fn show_main_window(app: AppHandle) {
    crate::show_main(&app)
}

#[tauri::command]
pub async fn save_secret_file(
    app: AppHandle,
    node: State<'_, Node>,
    vault: String,
    path: String,
) -> Result<Option<String>> {
    Ok(crate::files::save_secret_file(&app, &node, vault, path).await?)
}

#[tauri::command]
pub async fn attach_file(
    app: AppHandle,
    node: State<'_, Node>,
    vault: String,
) -> Result<Option<polykey_node::api::AttachmentDto>> {
    Ok(crate::files::attach_file(&app, &node, vault).await?)
}

#[tauri::command]
pub async fn save_attachment(
    app: AppHandle,
    node: State<'_, Node>,
    vault: String,
    path: String,
    file: String,
    version: Option<String>,
) -> Result<Option<String>> {
    Ok(crate::files::save_attachment(&app, &node, vault, path, file, version).await?)
}

#[tauri::command]
pub fn open_url(app: AppHandle, url: String) -> Result<()> {
    Ok(crate::files::open_url(&app, &url)?)
}

#[tauri::command]
pub async fn devices(node: State<'_, Node>) -> Result<Vec<DeviceDto>> {
    Ok(node.devices_dto().await?)
}

#[tauri::command]
pub async fn invite_device(node: State<'_, Node>) -> Result<InvitationDto> {
    Ok(node.invite_dto().await?)
}

#[tauri::command]
pub fn pairing_state(node: State<'_, Node>) -> PairingStateDto {
    node.pairing_state().into()
}

#[tauri::command]
pub fn cancel_invitation(node: State<'_, Node>) {
    node.cancel_invitation()
}

/// Copy the open invitation's code as a secret: hidden from clipboard
/// history and cleared after the clipboard delay.
#[tauri::command]
pub fn copy_pairing_code(
    node: State<'_, Node>,
    clipboard: State<'_, Arc<Clipboard>>,
) -> Result<u64> {
    Ok(clipboard.copy_secret(node.pairing_code()?, clear_after(&node))?)
}

#[tauri::command]
pub async fn join_device(node: State<'_, Node>, code: String) -> Result<JoinedDto> {
    Ok(node.join_dto(code).await?)
}

#[tauri::command]
pub fn confirm_pairing(node: State<'_, Node>, accept: bool) -> Result<()> {
    Ok(node.confirm_pairing(accept)?)
}

#[tauri::command]
pub async fn confirm_join(node: State<'_, Node>, accept: bool) -> Result<()> {
    Ok(node.confirm_join(accept).await?)
}

#[tauri::command]
pub async fn device_notices(node: State<'_, Node>) -> Result<Vec<DeviceNoticeDto>> {
    Ok(node.device_notices_dto().await?)
}

/// What removing `device` would change: who comes back unless removed
/// too, and who goes with it.
#[tauri::command]
pub async fn removal_effect(node: State<'_, Node>, device: String) -> Result<RemovalEffectDto> {
    Ok(node.removal_effect_dto(device).await?)
}

#[tauri::command]
pub async fn device_disputes(node: State<'_, Node>) -> Result<Vec<DeviceDisputeDto>> {
    Ok(node.device_disputes_dto().await?)
}

#[tauri::command]
pub async fn keep_device(node: State<'_, Node>, device: String) -> Result<()> {
    Ok(node.keep_device_text(device).await?)
}

#[tauri::command]
pub async fn revoke_device(node: State<'_, Node>, device: String) -> Result<()> {
    Ok(node.revoke_device_text(device).await?)
}

#[tauri::command]
pub async fn sync_status(node: State<'_, Node>) -> Result<SyncStatusDto> {
    Ok(node.sync_status_dto().await?)
}

#[tauri::command]
pub async fn conflicts(node: State<'_, Node>) -> Result<Vec<ConflictDto>> {
    Ok(node.conflicts_dto().await?)
}

#[tauri::command]
pub async fn resolve_conflict(
    node: State<'_, Node>,
    vault: String,
    path: String,
    theirs_path: String,
    keep_theirs: bool,
) -> Result<String> {
    Ok(node
        .resolve_conflict(vault, path, theirs_path, keep_theirs)
        .await?)
}

#[tauri::command]
pub async fn join_from_qr_picture(
    app: AppHandle,
    node: State<'_, Node>,
) -> Result<Option<JoinedDto>> {
    Ok(crate::files::join_from_qr_picture(&app, &node).await?)
}

#[tauri::command]
pub async fn contact_code(node: State<'_, Node>) -> Result<ContactDto> {
    Ok(node.contact_dto().await?)
}

#[tauri::command]
pub async fn people(node: State<'_, Node>) -> Result<Vec<PersonDto>> {
    Ok(node.people_dto().await?)
}

/// Trust a person by contact code, NodeId or identity (github.com:login).
#[tauri::command]
pub async fn add_person(node: State<'_, Node>, target: String) -> Result<String> {
    Ok(node.trust(&target).await?.name)
}

#[tauri::command]
pub async fn remove_person(node: State<'_, Node>, name: String) -> Result<bool> {
    Ok(node.untrust(&name).await?)
}

#[tauri::command]
pub async fn set_person_permission(
    node: State<'_, Node>,
    name: String,
    permission: String,
    allow: bool,
) -> Result<()> {
    Ok(node.set_permission_named(&name, &permission, allow).await?)
}

#[tauri::command]
pub async fn vault_sharing(node: State<'_, Node>) -> Result<Vec<VaultSharingDto>> {
    Ok(node.vault_sharing_dto().await?)
}

/// Share a vault; returns whether the person's node took the offer now.
#[tauri::command]
pub async fn share_vault(
    node: State<'_, Node>,
    vault: String,
    target: String,
    write: bool,
) -> Result<bool> {
    Ok(node.share_vault(&vault, &target, write).await?.offered)
}

#[tauri::command]
pub async fn unshare_vault(node: State<'_, Node>, vault: String, person: String) -> Result<bool> {
    Ok(node.unshare_vault(&vault, &person).await?)
}

#[tauri::command]
pub async fn notifications(node: State<'_, Node>) -> Result<Vec<NotificationDto>> {
    Ok(node.notifications_dto().await?)
}

#[tauri::command]
pub async fn accept_share(node: State<'_, Node>, vault: String) -> Result<VaultDto> {
    Ok(node.accept_share(&vault).await?.into())
}

#[tauri::command]
pub async fn dismiss_share(node: State<'_, Node>, vault: String) -> Result<()> {
    Ok(node.dismiss_share(vault).await.map(drop)?)
}

#[tauri::command]
pub async fn contact_from_qr_picture(
    app: AppHandle,
    node: State<'_, Node>,
) -> Result<Option<String>> {
    Ok(crate::files::contact_from_qr_picture(&app, &node).await?)
}

/// Start linking an account (GitHub's device flow): the code to enter.
#[tauri::command]
pub async fn identity_login_start(
    node: State<'_, Node>,
    provider: String,
) -> Result<polykey_node::identities::IdentityLogin> {
    Ok(node.start_identity_login(&provider).await?)
}

/// Wait until the person approved the code; the account's identity.
#[tauri::command]
pub async fn identity_login_finish(node: State<'_, Node>, provider: String) -> Result<String> {
    Ok(node.finish_identity_login(&provider).await?)
}

/// Claim the account logged in to for this node (a public proof).
#[tauri::command]
pub async fn claim_identity(
    node: State<'_, Node>,
    provider: String,
) -> Result<polykey_node::identities::LinkedIdentity> {
    Ok(node.claim_identity(&provider).await?)
}

#[tauri::command]
pub async fn linked_identities(
    node: State<'_, Node>,
) -> Result<Vec<polykey_node::identities::LinkedIdentity>> {
    Ok(node.linked_identities().await?)
}

#[tauri::command]
pub async fn backup_schedule(node: State<'_, Node>) -> Result<Option<BackupSchedule>> {
    Ok(node.backup_schedule().await?)
}

#[tauri::command]
pub async fn set_backup_schedule(
    node: State<'_, Node>,
    folder: String,
    every_hours: u32,
    keep: u32,
    passphrase: String,
) -> Result<BackupSchedule> {
    Ok(node
        .set_backup_schedule(folder.into(), every_hours, keep, passphrase.into())
        .await?)
}

#[tauri::command]
pub async fn clear_backup_schedule(node: State<'_, Node>) -> Result<()> {
    Ok(node.clear_backup_schedule().await?)
}

#[tauri::command]
pub async fn back_up_now(node: State<'_, Node>) -> Result<BackupDto> {
    Ok(node.back_up_now_dto().await?)
}

#[tauri::command]
pub async fn restore_backup(
    node: State<'_, Node>,
    file: String,
    passphrase: String,
) -> Result<Vec<RestoredDto>> {
    Ok(node
        .restore_backup_dto(file.into(), passphrase.into())
        .await?)
}

#[tauri::command]
pub async fn import_preview(
    node: State<'_, Node>,
    request: ImportRequestDto,
    vault: String,
) -> Result<ImportPreviewDto> {
    Ok(node.import_preview_dto(request, vault).await?)
}

/// The import wizard closed: let go of what its preview read.
#[tauri::command]
pub async fn import_forget(node: State<'_, Node>) -> Result<()> {
    Ok(node.forget_import_preview().await?)
}

#[tauri::command]
pub async fn import_items(
    node: State<'_, Node>,
    request: ImportRequestDto,
    vault: String,
    folder: String,
) -> Result<ImportReportDto> {
    Ok(node.import_dto(request, vault, folder).await?)
}
