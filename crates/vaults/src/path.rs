use std::fmt;

use crate::error::VaultError;

/// Longest accepted path, in bytes.
pub const MAX_PATH_LEN: usize = 4096;
/// Longest accepted path segment (a file or directory name), in bytes.
pub const MAX_SEGMENT_LEN: usize = 255;
/// Most segments a path has, and so the deepest a vault's directories nest
/// (a secret at the top level is at depth 1). Folders of secrets never come
/// close; the bound exists so that no tree a peer sends can make a walk
/// deep enough to matter.
pub const MAX_TREE_DEPTH: usize = 64;

/// Check one path segment: a file or directory name as `SecretPath` takes
/// it and as a received tree may hold it. The one rule for both, so that
/// every name a vault accepts from a peer can later be named by a path.
/// Returns the name as text.
pub(crate) fn check_segment(name: &[u8]) -> Result<&str, VaultError> {
    if name.is_empty() {
        return Err(VaultError::InvalidPath(
            "the path has an empty segment ('//')",
        ));
    }
    if name.len() > MAX_SEGMENT_LEN {
        return Err(VaultError::InvalidPath(
            "a path segment is longer than 255 bytes",
        ));
    }
    let text = std::str::from_utf8(name)
        .map_err(|_| VaultError::InvalidPath("a path segment is not valid UTF-8"))?;
    match text {
        "." | ".." => Err(VaultError::InvalidPath(
            "'.' and '..' are not allowed in a path",
        )),
        s if s.eq_ignore_ascii_case(".git") => Err(VaultError::InvalidPath("'.git' is reserved")),
        s if s.contains('\\') => Err(VaultError::InvalidPath("use '/' to separate directories")),
        s if s.contains('/') => Err(VaultError::InvalidPath("a name cannot contain '/'")),
        s if s.chars().any(char::is_control) => Err(VaultError::InvalidPath(
            "the path has a NUL or control character",
        )),
        s => Ok(s),
    }
}

/// A validated, normalised secret path like `dir/name`: relative, at most
/// [`MAX_TREE_DEPTH`] segments, each passing the one segment rule (no
/// empty, `.`, `..` or `.git` segment, no `\`, no NUL or control character,
/// at most [`MAX_SEGMENT_LEN`] bytes).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretPath(String);

impl SecretPath {
    /// Validate `text` as a path. A trailing `/` is allowed and dropped.
    pub fn parse(text: &str) -> Result<Self, VaultError> {
        let trimmed = text.strip_suffix('/').unwrap_or(text);
        if trimmed.is_empty() {
            return Err(VaultError::InvalidPath("the path is empty"));
        }
        if trimmed.len() > MAX_PATH_LEN {
            return Err(VaultError::InvalidPath("the path is too long"));
        }
        if trimmed.starts_with('/') {
            return Err(VaultError::InvalidPath(
                "the path must be relative, not start with '/'",
            ));
        }
        let mut depth = 0;
        for segment in trimmed.split('/') {
            depth += 1;
            if depth > MAX_TREE_DEPTH {
                return Err(VaultError::InvalidPath(
                    "the path is nested deeper than 64 directories",
                ));
            }
            check_segment(segment.as_bytes())?;
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's segments.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The last segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The directory part, or `None` at the root.
    pub fn parent(&self) -> Option<&str> {
        self.0.rsplit_once('/').map(|(dir, _)| dir)
    }

    /// Whether `self` is `other` or inside it.
    pub fn starts_with(&self, other: &SecretPath) -> bool {
        self.0 == other.0 || self.0.starts_with(&format!("{}/", other.0))
    }
}

impl fmt::Display for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretPath({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths() {
        let path = SecretPath::parse("email/work/password").unwrap();
        assert_eq!(path.file_name(), "password");
        assert_eq!(path.parent(), Some("email/work"));
        assert_eq!(SecretPath::parse("dir/").unwrap().as_str(), "dir");
        assert_eq!(SecretPath::parse("top").unwrap().parent(), None);
    }

    #[test]
    fn rejects_hostile_paths_with_distinct_messages() {
        let cases = [
            ("", "empty"),
            ("/etc/passwd", "relative"),
            ("a/../b", "'..'"),
            ("..", "'..'"),
            ("a//b", "empty segment"),
            ("a/./b", "'.'"),
            ("a\0b", "NUL"),
            ("a/.GIT/config", "reserved"),
            ("a\\b", "'/'"),
        ];
        for (input, expected) in cases {
            let err = SecretPath::parse(input).unwrap_err().to_string();
            assert!(err.contains(expected), "{input:?}: {err}");
        }
        assert!(SecretPath::parse(&"x".repeat(256)).is_err());
        assert!(SecretPath::parse(&"x".repeat(255)).is_ok());
        assert!(SecretPath::parse("a\u{7f}b").is_err());
        assert!(SecretPath::parse("a\u{85}b").is_err());
    }

    #[test]
    fn depth_is_bounded_at_max_tree_depth() {
        let deepest = vec!["d"; MAX_TREE_DEPTH].join("/");
        assert!(SecretPath::parse(&deepest).is_ok());
        let err = SecretPath::parse(&format!("{deepest}/x")).unwrap_err();
        assert!(err.to_string().contains("deeper"), "{err}");
    }

    #[test]
    fn segments_follow_the_one_rule() {
        for bad in [
            &b""[..],
            b".",
            b"..",
            b".Git",
            b"a/b",
            b"a\\b",
            b"a\x00",
            b"\xff",
        ] {
            assert!(check_segment(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_segment("caf\u{e9}".as_bytes()).unwrap(), "caf\u{e9}");
    }
}
