//! Lock when the person leaves: the screen locks (the freedesktop, GNOME
//! and XFCE screensavers' `ActiveChanged(true)` on the session bus, or
//! logind's `Lock` signal for this process's own session on the system
//! bus) or the system is about to sleep (logind's `PrepareForSleep(true)`).
//!
//! Sleep must not race the lock: logind goes ahead as soon as it has sent
//! `PrepareForSleep(true)` unless someone holds a *delay* inhibitor, and a
//! hibernation image taken while the node is still unlocked holds its keys.
//! So the watcher holds a delay inhibitor while awake and closes it only
//! once the lock has finished. A desktop without those buses or services
//! simply sends nothing, and the watcher carries on with what it has.

use std::future::Future;

use futures::stream::BoxStream;
use futures::StreamExt;
use polykey_node::Node;
use tauri::{AppHandle, Emitter, Runtime};
use zbus::zvariant::{OwnedFd, OwnedObjectPath, OwnedValue};
use zbus::{Connection, MatchRule, MessageStream};

/// The screensaver interfaces whose `ActiveChanged(true)` means the screen
/// locked.
pub const SCREENSAVERS: [&str; 3] = [
    "org.freedesktop.ScreenSaver",
    "org.gnome.ScreenSaver",
    "org.xfce.ScreenSaver",
];

/// logind's well-known name. Only logind (root) can own it on the system
/// bus, so signals are matched from this sender only: anyone may broadcast
/// a signal on the system bus, and a forged `PrepareForSleep(true)` would
/// otherwise make the watcher give up its inhibitor before a real sleep.
const LOGIND: &str = "org.freedesktop.login1";
const LOGIND_PATH: &str = "/org/freedesktop/login1";
const LOGIND_MANAGER: &str = "org.freedesktop.login1.Manager";
const LOGIND_SESSION: &str = "org.freedesktop.login1.Session";
const LOGIND_USER: &str = "org.freedesktop.login1.User";
const LOGIND_SELF_USER: &str = "/org/freedesktop/login1/user/self";

/// The inhibitor asked of logind, as `Inhibit(what, who, why, mode)`.
pub const INHIBIT_WHAT: &str = "sleep";
/// Who holds the inhibitor, as `systemd-inhibit --list` shows it.
pub const INHIBIT_WHO: &str = "Polykey";
/// Why, as `systemd-inhibit --list` shows it.
pub const INHIBIT_WHY: &str = "Lock the vaults before sleeping";
/// A delay lock: logind waits until it is closed (at most its
/// `InhibitDelayMaxSec`), it never blocks sleep outright.
pub const INHIBIT_MODE: &str = "delay";

/// How many unhandled signals of one kind a stream keeps; they all mean
/// the same, so a few are plenty.
const QUEUED_SIGNALS: usize = 16;

/// Watch both buses for as long as the app runs; lock the node (and tell
/// the windows) on each signal.
pub fn spawn<R: Runtime>(app: AppHandle<R>, node: Node) {
    tauri::async_runtime::spawn(async move {
        let session = Connection::session().await.ok();
        let system = Connection::system().await.ok();
        let watcher = Watcher::start(session.as_ref(), system.as_ref()).await;
        watcher
            .run(|| {
                let (app, node) = (app.clone(), node.clone());
                async move {
                    if node.lock().await.is_ok() {
                        let _ = app.emit(crate::autolock::LOCKED_EVENT, ());
                    }
                }
            })
            .await;
    });
}

/// What a signal says the person did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leaving {
    /// The screen locked: lock.
    ScreenLocked,
    /// The system is about to sleep: lock, then let it go on.
    Sleeping,
    /// The system woke up: hold back the next sleep again.
    Resumed,
}

/// Subscribed to every signal that means the person left, holding logind's
/// delay inhibitor while the system is awake.
pub struct Watcher {
    system: Option<Connection>,
    inhibitor: Option<OwnedFd>,
    session_path: Option<OwnedObjectPath>,
    signals: BoxStream<'static, Leaving>,
}

impl Watcher {
    /// Subscribe on `session` (screensavers) and `system` (logind), then
    /// take logind's delay inhibitor. When this returns every subscription
    /// is in place. Whatever is missing (a bus, logind, a session for this
    /// process) is left out and the rest still works.
    pub async fn start(session: Option<&Connection>, system: Option<&Connection>) -> Self {
        let mut streams: Vec<BoxStream<'static, Leaving>> = Vec::new();
        if let Some(connection) = session {
            for interface in SCREENSAVERS {
                if let Ok(stream) = screensaver_locks(connection, interface).await {
                    streams.push(stream);
                }
            }
        }
        let mut session_path = None;
        if let Some(connection) = system {
            if let Ok(stream) = sleep_signals(connection).await {
                streams.push(stream);
            }
            session_path = own_session(connection).await;
            if let Some(path) = &session_path {
                if let Ok(stream) = session_locks(connection, path).await {
                    streams.push(stream);
                }
            }
        }
        // Last, so that a sleep announced from here on is already seen.
        let inhibitor = match system {
            Some(connection) => inhibit_sleep(connection).await,
            None => None,
        };
        Self {
            system: system.cloned(),
            inhibitor,
            session_path,
            signals: futures::stream::select_all(streams).boxed(),
        }
    }

    /// Whether logind's delay inhibitor is held now.
    pub fn holds_inhibitor(&self) -> bool {
        self.inhibitor.is_some()
    }

    /// The logind session whose `Lock` signal is watched, if one was found.
    pub fn session_path(&self) -> Option<&str> {
        self.session_path.as_deref().map(|path| path.as_str())
    }

    /// Run `lock` on each screen lock and before each sleep; before a sleep
    /// the inhibitor is closed only once `lock` has finished, and after the
    /// resume a new one is taken. Returns when no bus can send anything
    /// any more.
    pub async fn run<L, F>(mut self, mut lock: L)
    where
        L: FnMut() -> F,
        F: Future<Output = ()>,
    {
        while let Some(leaving) = self.signals.next().await {
            match leaving {
                Leaving::ScreenLocked => lock().await,
                Leaving::Sleeping => {
                    lock().await;
                    // Closing the descriptor is what lets logind go on.
                    drop(self.inhibitor.take());
                }
                Leaving::Resumed => {
                    if self.inhibitor.is_none() {
                        if let Some(connection) = &self.system {
                            self.inhibitor = inhibit_sleep(connection).await;
                        }
                    }
                }
            }
        }
    }
}

/// A match rule for signals `interface.member`, optionally only from
/// `sender` and on `path`.
fn signal_rule(
    sender: Option<&'static str>,
    path: Option<&OwnedObjectPath>,
    interface: &'static str,
    member: &'static str,
) -> zbus::Result<MatchRule<'static>> {
    let mut rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface(interface)?
        .member(member)?;
    if let Some(sender) = sender {
        rule = rule.sender(sender)?;
    }
    if let Some(path) = path {
        rule = rule.path(path.clone())?;
    }
    Ok(rule.build())
}

/// `interface.ActiveChanged(true)`: that screensaver locked the screen.
async fn screensaver_locks(
    connection: &Connection,
    interface: &'static str,
) -> zbus::Result<BoxStream<'static, Leaving>> {
    let rule = signal_rule(None, None, interface, "ActiveChanged")?;
    let stream = MessageStream::for_match_rule(rule, connection, Some(QUEUED_SIGNALS)).await?;
    Ok(stream
        .filter_map(|message| async move {
            let active: bool = message.ok()?.body().deserialize().ok()?;
            active.then_some(Leaving::ScreenLocked)
        })
        .boxed())
}

/// logind's `PrepareForSleep(true)` (about to sleep) and `(false)` (woke).
async fn sleep_signals(connection: &Connection) -> zbus::Result<BoxStream<'static, Leaving>> {
    let rule = signal_rule(Some(LOGIND), None, LOGIND_MANAGER, "PrepareForSleep")?;
    let stream = MessageStream::for_match_rule(rule, connection, Some(QUEUED_SIGNALS)).await?;
    Ok(stream
        .filter_map(|message| async move {
            let sleeping: bool = message.ok()?.body().deserialize().ok()?;
            Some(if sleeping {
                Leaving::Sleeping
            } else {
                Leaving::Resumed
            })
        })
        .boxed())
}

/// logind's `Lock` on `path` only: another session locking (another user,
/// another seat) is not this person leaving.
async fn session_locks(
    connection: &Connection,
    path: &OwnedObjectPath,
) -> zbus::Result<BoxStream<'static, Leaving>> {
    let rule = signal_rule(Some(LOGIND), Some(path), LOGIND_SESSION, "Lock")?;
    let stream = MessageStream::for_match_rule(rule, connection, Some(QUEUED_SIGNALS)).await?;
    Ok(stream
        .filter_map(|message| async move {
            message.ok()?;
            Some(Leaving::ScreenLocked)
        })
        .boxed())
}

/// The object path of this process's logind session. An app started in a
/// systemd user scope (as GNOME starts them) belongs to no session; then
/// it is the user's graphical session, the one logind itself picks for
/// `loginctl lock-session` without a session.
async fn own_session(connection: &Connection) -> Option<OwnedObjectPath> {
    match session_by_pid(connection).await {
        Some(path) => Some(path),
        None => display_session(connection).await,
    }
}

/// `GetSessionByPID` for this process.
async fn session_by_pid(connection: &Connection) -> Option<OwnedObjectPath> {
    let reply = connection
        .call_method(
            Some(LOGIND),
            LOGIND_PATH,
            Some(LOGIND_MANAGER),
            "GetSessionByPID",
            &(std::process::id(),),
        )
        .await
        .ok()?;
    reply.body().deserialize().ok()
}

/// The `Display` session of the user running this process (logind
/// resolves `user/self` from the caller's credentials).
async fn display_session(connection: &Connection) -> Option<OwnedObjectPath> {
    let reply = connection
        .call_method(
            Some(LOGIND),
            LOGIND_SELF_USER,
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &(LOGIND_USER, "Display"),
        )
        .await
        .ok()?;
    let value: OwnedValue = reply.body().deserialize().ok()?;
    let (_id, path): (String, OwnedObjectPath) = value.try_into().ok()?;
    // A user without a graphical session has ("", "/").
    (path.as_str() != "/").then_some(path)
}

/// A delay inhibitor for sleep: logind waits for it to be closed.
async fn inhibit_sleep(connection: &Connection) -> Option<OwnedFd> {
    let reply = connection
        .call_method(
            Some(LOGIND),
            LOGIND_PATH,
            Some(LOGIND_MANAGER),
            "Inhibit",
            &(INHIBIT_WHAT, INHIBIT_WHO, INHIBIT_WHY, INHIBIT_MODE),
        )
        .await
        .ok()?;
    // The reply holds its own copy of the descriptor and goes when this
    // returns, so the one returned is the only one left open.
    reply.body().deserialize().ok()
}
