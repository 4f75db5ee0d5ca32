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

/// The most a read takes from one file. Real ones are far smaller (`status` ~1.5 KiB, a busy
/// host's `mountinfo` some hundreds of KiB), but a fixture root (`procRoot`, `cgroupRoot`) can
/// point anywhere, and a read of `/dev/zero` must not take the process's memory with it.
pub const MAX_FILE_BYTES: usize = 16 << 20;

fn too_large() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "file larger than 16 MiB")
}

/// The first `max` bytes of the file at `path` (all of it if shorter), for files read once (not
/// kept open).
pub fn read_prefix(path: &Path, max: usize) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    File::open(path)?.take(max as u64).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `std::fs::read` with the [`MAX_FILE_BYTES`] bound, for files read once (not kept open).
pub fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    let bytes = read_prefix(path, MAX_FILE_BYTES + 1)?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

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
            if *len > MAX_FILE_BYTES {
                // Not kept for the next read: a file this large is not a procfs file.
                *len = 0;
                *buf = Vec::new();
                return Err(too_large());
            }
            if buf.len() - *len < MIN_FREE {
                let grown = (buf.len() * 2).max(*len + buf.len().max(INITIAL_BUF));
                let target = grown.min(MAX_FILE_BYTES + 1).max(buf.len());
                // Exact: an amortized reserve would double past the bound.
                buf.reserve_exact(target - buf.len());
                buf.resize(target, 0);
            }
            // The buffer stops one byte past the bound: enough to tell that the file is larger.
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
    fn an_endless_file_is_an_error_after_the_bound_not_all_memory() {
        let zero = Path::new("/dev/zero");
        let mut f = ProcFile::new(zero);
        let e = f.read().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        assert_eq!(f.buf.capacity(), 0, "the buffer is let go");
        let e = read_bounded(zero).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        assert!(read_bounded(Path::new("/proc/self/stat")).unwrap()[0].is_ascii_digit());
    }

    #[test]
    fn the_bound_is_exact_and_so_is_the_buffer() {
        let dir = std::env::temp_dir().join(format!("memsentry-procfile-bound-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sparse");
        let file = File::create(&path).unwrap();
        file.set_len(MAX_FILE_BYTES as u64).unwrap();
        let mut f = ProcFile::new(&path);
        assert_eq!(f.read().unwrap().len(), MAX_FILE_BYTES);
        assert!(
            f.buf.capacity() <= MAX_FILE_BYTES + 1,
            "capacity {}",
            f.buf.capacity()
        );
        assert_eq!(read_bounded(&path).unwrap().len(), MAX_FILE_BYTES);
        file.set_len(MAX_FILE_BYTES as u64 + 1).unwrap();
        assert_eq!(f.read().unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            read_bounded(&path).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
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
