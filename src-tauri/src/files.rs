//! Secrets as files: a binary secret is saved to a file the user picks in
//! the system's save dialog. Links open in the system browser (http and
//! https only).

use polykey_node::api::{ApiError, ErrorCode};
use polykey_node::Node;
use tauri::{AppHandle, Runtime};
use tauri_plugin_dialog::DialogExt;
use tauri_plugin_opener::OpenerExt;

fn io_error(what: &str, error: impl std::fmt::Display) -> ApiError {
    ApiError {
        code: ErrorCode::Io,
        message: format!("could not {what}: {error}"),
    }
}

/// Ask where to save the secret at `path`, then write its bytes there.
/// Returns the file's path, or `None` if the user cancelled.
pub async fn save_secret_file<R: Runtime>(
    app: &AppHandle<R>,
    node: &Node,
    vault: String,
    path: String,
) -> Result<Option<String>, ApiError> {
    // Read first: a locked node or a missing secret fails before any dialog.
    let bytes = node.get_secret(vault, path.clone(), None).await?;
    save_as(app, "Save secret as file", suggested_name(&path), bytes).await
}

/// The file name the save dialog offers for the secret at `path`: its
/// last part without control or invisible characters, which a secret's
/// name (from a shared vault, a device) may hold: `scan\u{202E}fdp.exe`
/// read as "scanexe.pdf" in the dialog, and was saved as a program.
pub fn suggested_name(path: &str) -> String {
    polykey_node::attachments::clean_file_name(path).unwrap_or_else(|| "secret".into())
}

/// Ask where to save `bytes` (offering `name`), then write them there,
/// readable only by the user. `None` if the user cancelled.
async fn save_as<R: Runtime>(
    app: &AppHandle<R>,
    title: &str,
    name: String,
    bytes: zeroize::Zeroizing<Vec<u8>>,
) -> Result<Option<String>, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog()
        .file()
        .set_title(title)
        .set_file_name(name)
        .save_file(move |chosen| {
            let _ = tx.send(chosen);
        });
    let Some(chosen) = rx.await.ok().flatten() else {
        return Ok(None);
    };
    let target = chosen
        .into_path()
        .map_err(|e| io_error("use that location", e))?;
    let written = target.clone();
    tokio::task::spawn_blocking(move || write_private(&written, &bytes))
        .await
        .map_err(|e| io_error("save the file", e))?
        .map_err(|e| io_error("save the file", e))?;
    Ok(Some(target.display().to_string()))
}

/// Ask which file to attach to the item being edited in `vault`, and keep
/// it until the item is saved. `None` if the user cancelled.
pub async fn attach_file<R: Runtime>(
    app: &AppHandle<R>,
    node: &Node,
    vault: String,
) -> Result<Option<polykey_node::api::AttachmentDto>, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog()
        .file()
        .set_title("Attach a file")
        .pick_file(move |chosen| {
            let _ = tx.send(chosen);
        });
    let Some(chosen) = rx.await.ok().flatten() else {
        return Ok(None);
    };
    let path = chosen
        .into_path()
        .map_err(|e| io_error("open that file", e))?;
    // Read at most one byte past the limit: a huge file, or a device that
    // never ends (its size says 0), is refused without being held.
    let max = polykey_node::attachments::MAX_ATTACHMENT_SIZE;
    let read = path.clone();
    let bytes = tokio::task::spawn_blocking(move || read_bounded(&read, max))
        .await
        .map_err(|e| io_error("read the file", e))?
        .map_err(|e| io_error("read the file", e))?;
    if bytes.len() > max {
        return Err(ApiError {
            code: ErrorCode::InvalidInput,
            message: format!(
                "that file is over {} MiB, the most an attachment can be",
                max / (1024 * 1024)
            ),
        });
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Some(node.stage_attachment(vault, name, bytes).await?))
}

/// Ask where to save attachment `file` of the item at `path` (as it is,
/// or at `version`), then write it there, readable only by the user.
pub async fn save_attachment<R: Runtime>(
    app: &AppHandle<R>,
    node: &Node,
    vault: String,
    path: String,
    file: String,
    version: Option<String>,
) -> Result<Option<String>, ApiError> {
    let (name, bytes) = node.attachment(vault, path, file, version).await?;
    save_as(app, "Save attachment", name, bytes).await
}

/// At most `max + 1` bytes of the file at `path`, in a buffer reserved
/// once for the size the file says it has (growing it would leave unwiped
/// copies of the file behind). Off the async threads: a FIFO or a slow
/// disk blocks only this read.
fn read_bounded(
    path: &std::path::Path,
    max: usize,
) -> std::io::Result<zeroize::Zeroizing<Vec<u8>>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let said = usize::try_from(file.metadata()?.len()).unwrap_or(max);
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(said.min(max) + 1));
    file.take(max as u64 + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Write `bytes` to a new or replaced file readable only by the user. A
/// symlink is refused (the secret would land wherever it points). The bytes
/// always go into a new file, private from its creation, which then takes
/// the target's name ([`polykey_os::fs::replace_private`]): a file that was
/// there is replaced whole, so neither its permissions nor a handle someone
/// opened on it earlier ever reach the secret.
pub fn write_private(target: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if std::fs::symlink_metadata(target).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "that is a link to another file; choose the file itself",
        ));
    }
    polykey_os::fs::replace_private(target, bytes)
}

/// Open a website in the system browser. Only http and https links open,
/// and only those that read as where they go (see [`openable_url`]).
pub fn open_url<R: Runtime>(app: &AppHandle<R>, url: &str) -> Result<(), ApiError> {
    let url = openable_url(url)?;
    app.opener()
        .open_url(url, None::<&str>)
        .map_err(|e| io_error("open the link", e))
}

/// `url`, trimmed, if it may be opened: http or https, with no user name
/// or password before its host (`https://bank.example@evil.example` goes
/// to evil.example) and no control or invisible character (a
/// right-to-left mark turns what is shown around). A login's websites
/// come from whoever wrote it: a shared vault's editor, an import.
pub fn openable_url(url: &str) -> Result<&str, ApiError> {
    let refused = |why: &str| ApiError {
        code: ErrorCode::BadItem,
        message: why.into(),
    };
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(refused("only http and https links can be opened"));
    }
    if url.chars().any(polykey_keys::text::hides_text) {
        return Err(refused(
            "this link holds hidden characters that change how it reads; it was not opened",
        ));
    }
    let parsed = tauri::Url::parse(url).map_err(|_| refused("this link is not a web address"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refused(
            "this link names a user before its site, which hides where it goes; it was not opened",
        ));
    }
    Ok(url)
}

/// Ask for a picture of another device's pairing QR code and join with it.
/// `None` if the user cancelled.
pub async fn join_from_qr_picture<R: Runtime>(
    app: &AppHandle<R>,
    node: &Node,
) -> Result<Option<polykey_node::api::JoinedDto>, ApiError> {
    let Some(bytes) = pick_picture(app, "Open a picture of the QR code").await? else {
        return Ok(None);
    };
    Ok(Some(node.join_qr_image_dto(bytes).await?))
}

/// The contact code in a picture of another person's QR code the user
/// picks; `None` if they cancel.
pub async fn contact_from_qr_picture<R: Runtime>(
    app: &AppHandle<R>,
    node: &Node,
) -> Result<Option<String>, ApiError> {
    let Some(bytes) = pick_picture(app, "Open a picture of their QR code").await? else {
        return Ok(None);
    };
    Ok(Some(node.contact_from_qr_image(bytes).await?))
}

/// The bytes of a picture the user picks; `None` if they cancel.
async fn pick_picture<R: Runtime>(
    app: &AppHandle<R>,
    title: &str,
) -> Result<Option<Vec<u8>>, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog()
        .file()
        .set_title(title)
        .add_filter("Pictures", &["png", "jpg", "jpeg"])
        .pick_file(move |chosen| {
            let _ = tx.send(chosen);
        });
    let Some(chosen) = rx.await.ok().flatten() else {
        return Ok(None);
    };
    let path = chosen
        .into_path()
        .map_err(|e| io_error("open that file", e))?;
    Ok(Some(
        std::fs::read(&path).map_err(|e| io_error("read the picture", e))?,
    ))
}
