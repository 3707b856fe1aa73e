//! What a command gives back: its [`Output`] on success, or a [`Failure`]
//! with a sysexits(3) exit code. Only `main` prints either.

use polykey_node::NodeError;
use zeroize::Zeroizing;

use crate::backend::BackendError;

/// What a command prints: text for people, JSON for programs, or raw bytes.
pub(crate) enum Output {
    Text(String, serde_json::Value),
    Bytes(Zeroizing<Vec<u8>>, serde_json::Value),
    Exit(u8),
}

/// Text for people and a JSON value for programs.
pub(crate) fn text(human: impl Into<String>, json: impl Into<serde_json::Value>) -> Output {
    Output::Text(human.into(), json.into())
}

/// Why the command failed, with its exit code.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) kind: String,
    pub(crate) message: String,
}

// sysexits(3).
pub(crate) const EX_USAGE: u8 = 64;
pub(crate) const EX_DATAERR: u8 = 65;
pub(crate) const EX_NOINPUT: u8 = 66;
pub(crate) const EX_UNAVAILABLE: u8 = 69;
pub(crate) const EX_SOFTWARE: u8 = 70;
pub(crate) const EX_IOERR: u8 = 74;
pub(crate) const EX_NOPERM: u8 = 77;

impl From<NodeError> for Failure {
    fn from(error: NodeError) -> Self {
        // The same codes the agent sends, so both paths exit alike.
        let kind = serde_json::to_value(error.code())
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "error".into());
        Self {
            code: exit_for(&kind),
            kind,
            message: error.to_string(),
        }
    }
}

fn exit_for(kind: &str) -> u8 {
    match kind {
        "wrong_password" | "locked" | "wrong_key" | "unauthorised" | "read_only" => EX_NOPERM,
        "not_initialised" | "unknown_vault" | "secret_not_found" | "unknown_version"
        | "unknown_target" => EX_NOINPUT,
        "in_use" => EX_UNAVAILABLE,
        "io" => EX_IOERR,
        "internal" => EX_SOFTWARE,
        _ => EX_DATAERR,
    }
}

impl From<BackendError> for Failure {
    fn from(error: BackendError) -> Self {
        match error {
            BackendError::Node(e) => e.into(),
            BackendError::Agent(kind, message) => Self {
                code: exit_for(&kind),
                kind,
                message,
            },
            BackendError::Io(e) => Self {
                code: EX_UNAVAILABLE,
                kind: "agent".into(),
                message: format!("cannot talk to the agent: {e}"),
            },
        }
    }
}

/// `text` safe to print to a terminal: a control character (but a line
/// break or a tab) and one that shows nothing (a bidi control, a line
/// separator, a zero-width space) shown as its code, `\u{1b}`. Much of
/// what the CLI prints comes from other nodes (notifications, commit
/// messages, the names of vaults and secrets shared with you), and an
/// escape sequence in it would act on the terminal, a right-to-left
/// override turn it around, a zero-width space make two names look alike.
/// Joiners and variation selectors (emoji, Persian, Indic scripts) stay.
pub(crate) fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    escaped(text, |c| (c != '\n' && c != '\t') && acts_on_text(c))
}

/// [`shown`], on one line: a line break shown as its code too, so that
/// another node's text cannot add a line that looks like the CLI's own.
pub(crate) fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    escaped(text, acts_on_text)
}

/// A control character, or one that shows nothing.
fn acts_on_text(c: char) -> bool {
    c.is_control() || polykey_keys::text::shows_nothing(c)
}

fn escaped(text: &str, hidden: impl Fn(char) -> bool) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(&hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if hidden(c) {
                    format!("\\u{{{:x}}}", u32::from(c))
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

pub(crate) fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: EX_USAGE,
        kind: "usage".into(),
        message: message.into(),
    }
}

pub(crate) fn io_failure(what: &str, error: std::io::Error) -> Failure {
    Failure {
        code: EX_IOERR,
        kind: "io".into(),
        message: format!("could not {what}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_for_a_terminal_shows_what_would_act_on_it() {
        assert_eq!(shown("plain\ttext\nlines"), "plain\ttext\nlines");
        assert_eq!(shown("a\u{1b}[2Jb\r"), "a\\u{1b}[2Jb\\u{d}");
        assert_eq!(shown("scan\u{202e}fdp.exe"), "scan\\u{202e}fdp.exe");
        assert_eq!(one_line("one\ntwo"), "one\\u{a}two");
        assert!(matches!(
            shown("kept as it is"),
            std::borrow::Cow::Borrowed(_)
        ));
        // Two names alike but for a zero-width space are told apart.
        assert_eq!(shown("API_KEY\u{200b}"), "API_KEY\\u{200b}");
        // Emoji and scripts that need joiners are left as they are.
        assert_eq!(one_line("👨\u{200d}👩 ❤\u{fe0f}"), "👨\u{200d}👩 ❤\u{fe0f}");
    }
}
