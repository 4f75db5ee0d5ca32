//! `/proc/<pid>/statm`: sizes in pages. Parsed with the `procfs` crate's `StatM`.

use procfs::process::StatM;
use procfs::FromRead;

/// `statm` in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatmBytes {
    pub vsz: u64,
    pub rss: u64,
    pub shared: u64,
    pub text: u64,
    pub data: u64,
}

pub fn parse(bytes: &[u8], page_size: u64) -> Result<StatmBytes, String> {
    let m = StatM::from_read(bytes).map_err(|e| e.to_string())?;
    let b = |pages: u64| pages.checked_mul(page_size).ok_or("value overflows");
    Ok(StatmBytes {
        vsz: b(m.size)?,
        rss: b(m.resident)?,
        shared: b(m.shared)?,
        text: b(m.text)?,
        data: b(m.data)?,
    })
}

/// The resident pages only: the second number. Used by `rss()`, the cheapest read there is.
pub fn parse_resident_pages(bytes: &[u8]) -> Option<u64> {
    let mut fields = bytes.split(|&b| b == b' ');
    fields.next()?;
    super::decimal::parse_u64(fields.next()?)
}

/// Resident bytes of the calling process: one `pread` of a `/proc/self/statm` kept open per
/// thread (each JS thread, main or worker, gets its own fd, so no lock is taken).
pub fn own_rss() -> Result<u64, std::io::Error> {
    use std::cell::RefCell;
    thread_local! {
        static STATM: RefCell<crate::procfs::proc_file::ProcFile> =
            RefCell::new(crate::procfs::proc_file::ProcFile::new("/proc/self/statm"));
    }
    STATM.with(|f| {
        let mut f = f.borrow_mut();
        let bytes = f.read()?;
        parse_resident_pages(bytes)
            .and_then(|pages| pages.checked_mul(super::page_size::page_size()))
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "garbled /proc/self/statm"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_real_line() {
        let s = parse(b"277712 12800 6400 11030 0 41000 0\n", 4096).unwrap();
        assert_eq!(s.vsz, 277712 * 4096);
        assert_eq!(s.rss, 12800 * 4096);
        assert_eq!(s.shared, 6400 * 4096);
        assert_eq!(s.text, 11030 * 4096);
        assert_eq!(s.data, 41000 * 4096);
        assert_eq!(
            parse_resident_pages(b"277712 12800 6400 11030 0 41000 0\n"),
            Some(12800)
        );
    }

    #[test]
    fn garbled_and_truncated_are_errors() {
        assert!(parse(b"", 4096).is_err());
        assert!(parse(b"12 34", 4096).is_err());
        assert!(parse(b"a b c d e f g", 4096).is_err());
        assert!(parse(b"18446744073709551615 1 1 1 0 1 0", 4096).is_err());
        assert_eq!(parse_resident_pages(b"12"), None);
        assert_eq!(parse_resident_pages(b"12 x4 5"), None);
        assert_eq!(parse_resident_pages(b"12 99999999999999999999 5"), None);
    }

    #[test]
    fn own_rss_matches_the_statm_parse() {
        let a = own_rss().unwrap();
        let bytes = std::fs::read("/proc/self/statm").unwrap();
        let b = parse(&bytes, super::super::page_size::page_size()).unwrap().rss;
        assert!(a.abs_diff(b) < 8 << 20, "{a} vs {b}");
    }
}
