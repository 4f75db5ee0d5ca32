//! The error a reader returns when a file cannot be read or parsed.
//!
//! The sampler turns it into a `null` field and reports it once per distinct `key()`, so the
//! key must be stable from tick to tick for the same failure (path plus kind, no offsets).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadErrorKind {
    /// open/read failed: the io error kind (NotFound, PermissionDenied, ...).
    Io(io::ErrorKind),
    /// the bytes were read but did not parse.
    Parse,
    /// Children past [`crate::children::MAX_CHILDREN`] are not read: the children's sums leave
    /// them out.
    TooManyChildren,
}

#[derive(Debug, Clone)]
pub struct ReadError {
    pub path: PathBuf,
    pub kind: ReadErrorKind,
    /// The errno of an io failure, when the io error carried one (`ESRCH` of a reaped process,
    /// `ENODEV` of a removed cgroup file): finer than `kind`, which has no variant for most.
    pub os_error: Option<i32>,
    pub message: String,
}

impl ReadError {
    pub fn io(path: &Path, err: &io::Error) -> Self {
        ReadError {
            path: path.to_path_buf(),
            kind: ReadErrorKind::Io(err.kind()),
            os_error: err.raw_os_error(),
            message: format!("cannot read {}: {}", path.display(), err),
        }
    }

    pub fn parse(path: &Path, what: impl fmt::Display) -> Self {
        ReadError {
            path: path.to_path_buf(),
            kind: ReadErrorKind::Parse,
            os_error: None,
            message: format!("cannot parse {}: {}", path.display(), what),
        }
    }

    /// Identifies the failure for once-only reporting: the file. A file that goes away often
    /// fails one way and then another (a kept-open fd gives ENODEV, reopening it ENOENT): that
    /// is one failure to the user, reported once until the file reads again.
    pub fn key(&self) -> String {
        self.path.display().to_string()
    }

    /// A short code for JS (`err.code`).
    pub fn code(&self) -> &'static str {
        match &self.kind {
            ReadErrorKind::Io(io::ErrorKind::NotFound) => "ENOENT",
            ReadErrorKind::Io(io::ErrorKind::PermissionDenied) => "EACCES",
            ReadErrorKind::Io(io::ErrorKind::TimedOut) => "ETIMEDOUT",
            ReadErrorKind::Io(_) => "EIO",
            ReadErrorKind::Parse => "EPARSE",
            ReadErrorKind::TooManyChildren => "ERR_MEMSENTRY_TOO_MANY_CHILDREN",
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ReadError {}
