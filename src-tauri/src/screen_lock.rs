//! Lock when the person leaves: the screen locks (the freedesktop and GNOME
//! screensaver `ActiveChanged(true)` signals on the session bus) or the
//! system is about to sleep (logind's `PrepareForSleep(true)` on the system
//! bus). A desktop without those buses or services simply sends nothing.

use futures::StreamExt;
use polykey_node::Node;
use tauri::{AppHandle, Emitter, Runtime};
use zbus::{Connection, MatchRule, MessageStream};

/// The screensaver interfaces whose `ActiveChanged(true)` means the screen
/// locked.
const SCREENSAVERS: [&str; 2] = ["org.freedesktop.ScreenSaver", "org.gnome.ScreenSaver"];

/// Watch both buses for as long as the app runs; lock the node (and tell
/// the windows) on each signal.
pub fn spawn<R: Runtime>(app: AppHandle<R>, node: Node) {
    tauri::async_runtime::spawn(async move {
        let session = Connection::session().await.ok();
        let system = Connection::system().await.ok();
        let Ok(mut leaving) = person_leaving(session.as_ref(), system.as_ref()).await else {
            return;
        };
        while leaving.next().await.is_some() {
            if node.lock().await.is_ok() {
                let _ = app.emit(crate::autolock::LOCKED_EVENT, ());
            }
        }
    });
}

/// A stream with one item each time the screen locks (on `session`) or
/// the system prepares to sleep (on `system`).
pub async fn person_leaving(
    session: Option<&Connection>,
    system: Option<&Connection>,
) -> zbus::Result<futures::stream::BoxStream<'static, ()>> {
    let mut streams: Vec<futures::stream::BoxStream<'static, ()>> = Vec::new();
    if let Some(connection) = session {
        for interface in SCREENSAVERS {
            let rule = MatchRule::builder()
                .msg_type(zbus::message::Type::Signal)
                .interface(interface)?
                .member("ActiveChanged")?
                .build();
            streams.push(true_signals(connection, rule).await?);
        }
    }
    if let Some(connection) = system {
        let rule = MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface("org.freedesktop.login1.Manager")?
            .member("PrepareForSleep")?
            .build();
        streams.push(true_signals(connection, rule).await?);
    }
    Ok(futures::stream::select_all(streams).boxed())
}

/// The signals matching `rule` whose single boolean argument is true
/// (anything else, malformed ones included, is skipped).
async fn true_signals(
    connection: &Connection,
    rule: MatchRule<'static>,
) -> zbus::Result<futures::stream::BoxStream<'static, ()>> {
    let stream = MessageStream::for_match_rule(rule, connection, Some(16)).await?;
    Ok(stream
        .filter_map(|message| async move {
            let message = message.ok()?;
            let active: bool = message.body().deserialize().ok()?;
            active.then_some(())
        })
        .boxed())
}
