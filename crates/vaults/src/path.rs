use std::fmt;

use crate::error::VaultError;

/// Longest accepted path, in bytes.
pub const MAX_PATH_LEN: usize = 4096;
/// Longest accepted path segment, in bytes.
pub const MAX_SEGMENT_LEN: usize = 255;

/// A validated, normalised secret path like `dir/name`: relative, no empty,
/// `.`, `..` or `.git` segments, no NUL or control characters.
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
        if trimmed.contains('\\') {
            return Err(VaultError::InvalidPath("use '/' to separate directories"));
        }
        for segment in trimmed.split('/') {
            match segment {
                "" => {
                    return Err(VaultError::InvalidPath(
                        "the path has an empty segment ('//')",
                    ))
                }
                "." | ".." => {
                    return Err(VaultError::InvalidPath(
                        "'.' and '..' are not allowed in a path",
                    ))
                }
                s if s.eq_ignore_ascii_case(".git") => {
                    return Err(VaultError::InvalidPath("'.git' is reserved"))
                }
                s if s.len() > MAX_SEGMENT_LEN => {
                    return Err(VaultError::InvalidPath(
                        "a path segment is longer than 255 bytes",
                    ))
                }
                s if s.chars().any(char::is_control) => {
                    return Err(VaultError::InvalidPath(
                        "the path has a NUL or control character",
                    ))
                }
                _ => {}
            }
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
    }
}
