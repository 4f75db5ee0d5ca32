//! `/proc/<pid>/status`: the RSS split (anon, file, shmem), swap and peak RSS.

use super::kb_fields;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusFields {
    pub rss_anon: Option<u64>,
    pub rss_file: Option<u64>,
    pub rss_shmem: Option<u64>,
    pub swap: Option<u64>,
    pub hwm: Option<u64>,
}

const KEYS: [&str; 5] = ["RssAnon", "RssFile", "RssShmem", "VmSwap", "VmHWM"];

/// A kernel thread or a zombie has none of these keys: all fields are then `None`, not an error.
pub fn parse(bytes: &[u8]) -> Result<StatusFields, String> {
    let mut v = [None; 5];
    kb_fields::parse(bytes, &KEYS, &mut v)?;
    if !bytes.starts_with(b"Name:") {
        return Err("not a status file (no Name: line first)".into());
    }
    Ok(StatusFields {
        rss_anon: v[0],
        rss_file: v[1],
        rss_shmem: v[2],
        swap: v[3],
        hwm: v[4],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_memory_lines() {
        let text = b"Name:\tnode\nVmHWM:\t   52000 kB\nVmRSS:\t   51200 kB\nRssAnon:\t   30000 kB\nRssFile:\t   21000 kB\nRssShmem:\t     200 kB\nVmSwap:\t       0 kB\n";
        let s = parse(text).unwrap();
        assert_eq!(s.rss_anon, Some(30000 * 1024));
        assert_eq!(s.rss_file, Some(21000 * 1024));
        assert_eq!(s.rss_shmem, Some(200 * 1024));
        assert_eq!(s.swap, Some(0));
        assert_eq!(s.hwm, Some(52000 * 1024));
    }

    #[test]
    fn garbled_is_an_error() {
        assert!(parse(b"Name:\tx\nRssAnon:\tlots kB\n").is_err());
        assert!(parse(b"garbage").is_err());
        assert!(parse(b"").is_err());
    }

    #[test]
    fn the_live_file_parses() {
        let bytes = std::fs::read("/proc/self/status").unwrap();
        let s = parse(&bytes).unwrap();
        assert!(s.rss_anon.unwrap() > 0);
        assert!(s.hwm.unwrap() > 0);
    }
}
