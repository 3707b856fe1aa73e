//! The system tray. Its menu lists favourite and recently used secrets;
//! choosing one copies its main field (a login's password) with the usual
//! auto-clear. It also offers Show, Lock and Quit. While the node is locked
//! the menu offers only to unlock, and a stale copy entry opens the unlock
//! window instead.
//!
//! The menu's contents ([`entries`]) and what a click does ([`activate`])
//! are plain functions over the node, tested directly; [`install`] only
//! turns them into a Tauri tray and rebuilds it when the node reports a
//! change.

use std::sync::Arc;

use polykey_node::api::{ApiError, ErrorCode, QuickItemDto};
use polykey_node::{Node, Preferences};
use tauri::menu::{IsMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::clipboard::{clear_after, Clipboard};

/// The tray's id.
pub const TRAY_ID: &str = "polykey";
/// Menu id: show the main window.
pub const SHOW: &str = "show";
/// Menu id: lock the node.
pub const LOCK: &str = "lock";
/// Menu id: quit the app.
pub const QUIT: &str = "quit";
const COPY_PREFIX: &str = "copy:";
/// The most secrets the menu lists.
pub const MENU_LIMIT: usize = 15;

/// One line of the tray menu.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrayEntry {
    /// Copies a secret when chosen.
    Copy {
        /// Menu id, for [`activate`].
        id: String,
        /// What the menu shows.
        label: String,
    },
    /// An action: show, lock, quit.
    Action {
        /// Menu id, for [`activate`].
        id: String,
        /// What the menu shows.
        label: String,
    },
    /// Greyed-out text.
    Note(String),
    /// A line between groups.
    Separator,
}

/// What choosing a menu entry did, for the shell to finish.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// A secret is on the clipboard; cleared after this many seconds.
    Copied(u64),
    /// The main window should come up (to unlock, or on request).
    ShowWindow,
    /// The node was locked.
    Locked,
    /// The app should quit.
    Quit,
}

fn copy_id(item: &QuickItemDto) -> String {
    let key = serde_json::json!([item.vault, item.path]);
    format!("{COPY_PREFIX}{key}")
}

/// A menu line for `item`: one line whatever its title holds (a title
/// from a shared vault or another device reading `x\nLock` drew a line
/// that looked like Lock and copied a password), `&` as itself (a menu
/// takes it for a keyboard mnemonic), and short.
fn label(item: &QuickItemDto) -> String {
    let star = if item.favourite { "★ " } else { "" };
    format!(
        "{star}{} — {}",
        menu_text(&item.title),
        menu_text(&item.vault)
    )
}

/// Longest title or vault name a menu line shows, in characters.
const MENU_TEXT_CHARS: usize = 60;

fn menu_text(text: &str) -> String {
    let mut shown = String::new();
    let mut kept = text
        .chars()
        .filter(|c| !polykey_keys::text::hides_text(*c))
        .peekable();
    for _ in 0..MENU_TEXT_CHARS {
        match kept.next() {
            Some('&') => shown.push_str("&&"),
            Some(c) => shown.push(c),
            None => break,
        }
    }
    if kept.peek().is_some() {
        shown.push('…');
    }
    shown
}

/// The menu for the node's current state.
pub async fn entries(node: &Node) -> Vec<TrayEntry> {
    let action = |id: &str, label: &str| TrayEntry::Action {
        id: id.into(),
        label: label.into(),
    };
    let mut menu = Vec::new();
    match node.quick_items().await {
        Ok(items) => {
            if items.is_empty() {
                menu.push(TrayEntry::Note(
                    "Favourites and recently copied secrets appear here".into(),
                ));
            }
            menu.extend(items.iter().take(MENU_LIMIT).map(|item| TrayEntry::Copy {
                id: copy_id(item),
                label: label(item),
            }));
            menu.push(TrayEntry::Separator);
            menu.push(action(SHOW, "Show Polykey"));
            menu.push(action(LOCK, "Lock"));
        }
        Err(_) => {
            menu.push(action(SHOW, "Unlock Polykey…"));
        }
    }
    menu.push(TrayEntry::Separator);
    menu.push(action(QUIT, "Quit Polykey"));
    menu
}

/// Do what the menu entry `id` stands for.
pub async fn activate(
    node: &Node,
    clipboard: &Arc<Clipboard>,
    id: &str,
) -> Result<Action, ApiError> {
    // A person chose a menu entry: that counts for auto-lock.
    node.touch();
    match id {
        SHOW => return Ok(Action::ShowWindow),
        LOCK => {
            node.lock().await?;
            return Ok(Action::Locked);
        }
        QUIT => return Ok(Action::Quit),
        _ => {}
    }
    let (vault, path): (String, String) = id
        .strip_prefix(COPY_PREFIX)
        .and_then(|key| serde_json::from_str(key).ok())
        .ok_or_else(|| ApiError {
            code: ErrorCode::Internal,
            message: "unknown menu entry".into(),
        })?;
    match node.quick_copy_value(vault, path).await {
        Ok(value) => Ok(Action::Copied(
            clipboard.copy_secret(value, clear_after(node))?,
        )),
        Err(error) if matches!(error.code(), ErrorCode::Locked) => Ok(Action::ShowWindow),
        Err(error) => Err(error.into()),
    }
}

/// Whether to show a tray: the preference, not turned off by
/// `POLYKEY_NO_TRAY`, and (on Linux) an AppIndicator library to draw it,
/// whose absence would otherwise abort inside the tray crate.
pub fn wanted(preferences: &Preferences) -> bool {
    wanted_given(preferences, std::env::var_os("POLYKEY_NO_TRAY").as_deref())
}

/// [`wanted`], with `no_tray` the value of `POLYKEY_NO_TRAY` (unset or
/// empty leaves the tray on).
pub fn wanted_given(preferences: &Preferences, no_tray: Option<&std::ffi::OsStr>) -> bool {
    preferences.tray && no_tray.is_none_or(|v| v.is_empty()) && indicator_available()
}

#[cfg(target_os = "linux")]
fn indicator_available() -> bool {
    const NAMES: [&str; 2] = ["libayatana-appindicator3.so.1", "libappindicator3.so.1"];
    if let Ok(cache) = std::fs::read("/etc/ld.so.cache") {
        return NAMES
            .iter()
            .any(|name| cache.windows(name.len()).any(|w| w == name.as_bytes()));
    }
    [
        "/usr/lib",
        "/usr/lib64",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
    ]
    .iter()
    .any(|dir| {
        NAMES
            .iter()
            .any(|name| std::path::Path::new(dir).join(name).exists())
    })
}

#[cfg(not(target_os = "linux"))]
fn indicator_available() -> bool {
    true
}

fn build_menu<R: Runtime>(app: &AppHandle<R>, entries: &[TrayEntry]) -> tauri::Result<Menu<R>> {
    let mut items: Vec<Box<dyn IsMenuItem<R>>> = Vec::new();
    for entry in entries {
        items.push(match entry {
            TrayEntry::Copy { id, label } | TrayEntry::Action { id, label } => {
                Box::new(MenuItem::with_id(app, id, label, true, None::<&str>)?)
            }
            TrayEntry::Note(text) => Box::new(MenuItem::new(app, text, false, None::<&str>)?),
            TrayEntry::Separator => Box::new(PredefinedMenuItem::separator(app)?),
        });
    }
    let refs: Vec<&dyn IsMenuItem<R>> = items.iter().map(|item| item.as_ref()).collect();
    Menu::with_items(app, &refs)
}

/// Show the tray and keep its menu current. If the platform cannot show
/// one, the app carries on without it.
pub fn install<R: Runtime>(app: &AppHandle<R>, node: Node) {
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build(app, &node)));
    if !matches!(built, Ok(Ok(()))) {
        return;
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut changes = node.changes();
        while changes.changed().await.is_ok() {
            let menu = entries(&node).await;
            if let (Some(tray), Ok(menu)) = (app.tray_by_id(TRAY_ID), build_menu(&app, &menu)) {
                let _ = tray.set_menu(Some(menu));
            }
        }
    });
}

fn build<R: Runtime>(app: &AppHandle<R>, node: &Node) -> tauri::Result<()> {
    let menu = build_menu(app, &tauri::async_runtime::block_on(entries(node)))?;
    let mut tray = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip("Polykey")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| {
            let app = app.clone();
            let id = event.id().as_ref().to_owned();
            tauri::async_runtime::spawn(async move {
                let node = app.state::<Node>().inner().clone();
                let clipboard = Arc::clone(app.state::<Arc<Clipboard>>().inner());
                match activate(&node, &clipboard, &id).await {
                    Ok(Action::ShowWindow) => crate::show_main(&app),
                    Ok(Action::Locked) => {
                        let _ = app.emit(crate::autolock::LOCKED_EVENT, ());
                    }
                    Ok(Action::Quit) => app.exit(0),
                    Ok(Action::Copied(_)) | Err(_) => {}
                }
            });
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    Ok(())
}

/// Show or remove the tray after the preference changed.
pub fn apply<R: Runtime>(app: &AppHandle<R>, node: &Node) {
    let shown = app.tray_by_id(TRAY_ID).is_some();
    match (wanted(&node.preferences()), shown) {
        (true, false) => install(app, node.clone()),
        (false, true) => {
            let _ = app.remove_tray_by_id(TRAY_ID);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polykey_node::api::EntryKindDto;

    #[test]
    fn a_menu_line_is_one_short_line_whatever_the_title_holds() {
        let item = |title: &str| QuickItemDto {
            vault: "V".into(),
            path: "p".into(),
            title: title.into(),
            username: String::new(),
            kind: EntryKindDto::Login,
            favourite: false,
        };
        assert_eq!(label(&item("Bank")), "Bank — V");
        assert_eq!(label(&item("x \u{2014} V\nLock")), "x \u{2014} VLock — V");
        assert_eq!(label(&item("scan\u{202E}fdp\tR&D")), "scanfdpR&&D — V");
        let long = label(&item(&"a".repeat(500)));
        assert_eq!(long, format!("{}… — V", "a".repeat(MENU_TEXT_CHARS)));
    }
}
