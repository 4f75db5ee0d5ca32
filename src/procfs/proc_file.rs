//! A procfs file opened once and re-read with `pread` at offset 0.
//!
//! Re-reading an open procfs file from offset 0 is legal and skips the path walk and the
//! open/close pair, which is most of the cost for small files such as `statm`.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::read_error::ReadError;

/// An open file plus a reusable read buffer.
#[derive(Debug)]
pub struct ProcFile {
    path: PathBuf,
    file: Option<File>,
    /// Initialized to its full length (zeroed once, when it grows), so a read writes into it
    /// without clearing it first; the last read's bytes are `buf[..len]`.
    buf: Vec<u8>,
    len: usize,
}

/// The buffer's first size; it doubles (at least) whenever less than `MIN_FREE` is left.
const INITIAL_BUF: usize = 1024;
const MIN_FREE: usize = 512;

impl ProcFile {
    /// Does not open yet: the first `read` opens, so a missing file is an error of that read.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ProcFile {
            path: path.into(),
            file: None,
            buf: Vec::new(),
            len: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the whole file from offset 0 and returns its bytes. On an error the file is closed,
    /// so the next call opens it afresh (a cgroup directory recreated, say).
    pub fn read(&mut self) -> io::Result<&[u8]> {
        if self.file.is_none() {
            self.file = Some(File::open(&self.path)?);
        }
        match Self::pread_all(self.file.as_ref().unwrap(), &mut self.buf, &mut self.len) {
            Ok(()) => Ok(&self.buf[..self.len]),
            Err(e) => {
                self.file = None;
                Err(e)
            }
        }
    }

    /// [`read`](Self::read) then `parse`: an io failure or the parser's complaint becomes a
    /// [`ReadError`] naming this file.
    pub fn read_parsed<T, E: fmt::Display>(
        &mut self,
        parse: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Result<T, ReadError> {
        let parsed = match self.read() {
            Ok(bytes) => parse(bytes),
            Err(e) => return Err(ReadError::io(&self.path, &e)),
        };
        parsed.map_err(|what| ReadError::parse(&self.path, what))
    }

    /// Reads from offset 0 until a read returns 0, into `buf`, growing it as the old
    /// `Vec`-based loop did (so the reads ask for the same sizes) but never clearing it: a
    /// memset of the whole buffer before every `pread` was most of this function's own cost.
    fn pread_all(file: &File, buf: &mut Vec<u8>, len: &mut usize) -> io::Result<()> {
        *len = 0;
        if buf.is_empty() {
            buf.resize(INITIAL_BUF, 0);
        }
        loop {
            if buf.len() - *len < MIN_FREE {
                let grown = (buf.len() * 2).max(*len + buf.len().max(INITIAL_BUF));
                buf.resize(grown, 0);
            }
            let n = match file.read_at(&mut buf[*len..], *len as u64) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    *len = 0;
                    return Err(e);
                }
            };
            if n == 0 {
                return Ok(());
            }
            *len += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn rereads_from_offset_zero_and_sees_new_content() {
        let dir = std::env::temp_dir().join(format!("memsentry-procfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, b"first").unwrap();
        let mut f = ProcFile::new(&path);
        assert_eq!(f.read().unwrap(), b"first");
        assert_eq!(f.read().unwrap(), b"first");
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        w.write_all(b"second, longer").unwrap();
        assert_eq!(f.read().unwrap(), b"second, longer");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_files_larger_than_the_initial_buffer() {
        let dir = std::env::temp_dir().join(format!("memsentry-procfile-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big");
        let content = vec![b'x'; 10_000];
        std::fs::write(&path, &content).unwrap();
        let mut f = ProcFile::new(&path);
        assert_eq!(f.read().unwrap().len(), 10_000);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_file_is_an_error_then_recovers_when_it_appears() {
        let dir = std::env::temp_dir().join(format!("memsentry-procfile-miss-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("later");
        let mut f = ProcFile::new(&path);
        assert_eq!(f.read().unwrap_err().kind(), io::ErrorKind::NotFound);
        std::fs::write(&path, b"now").unwrap();
        assert_eq!(f.read().unwrap(), b"now");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn statm_of_self_reads_twice() {
        let mut f = ProcFile::new("/proc/self/statm");
        let a = f.read().unwrap().to_vec();
        let b = f.read().unwrap().to_vec();
        assert!(!a.is_empty() && !b.is_empty());
    }
}
