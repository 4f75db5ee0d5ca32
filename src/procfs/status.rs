//! `/proc/<pid>/status`: the RSS split (anon, file, shmem), swap and peak RSS, and the sizes
//! `statm` holds too (the kernel prints both from the same counters), so one read of `status`
//! can stand for `statm` + `status` on the sampler's hot path.

use super::kb_fields;
use super::statm::StatmBytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusFields {
    pub rss_anon: Option<u64>,
    pub rss_file: Option<u64>,
    pub rss_shmem: Option<u64>,
    pub swap: Option<u64>,
    pub hwm: Option<u64>,
    vm_size: Option<u64>,
    vm_rss: Option<u64>,
    vm_exe: Option<u64>,
    vm_data: Option<u64>,
    vm_stk: Option<u64>,
}

const KEYS: [&str; 10] = [
    "RssAnon", "RssFile", "RssShmem", "VmSwap", "VmHWM", "VmSize", "VmRSS", "VmExe", "VmData", "VmStk",
];

impl StatusFields {
    /// The `statm` figures from the same counters: VmSize, VmRSS, RssFile + RssShmem, VmExe,
    /// VmData + VmStk. `None` when a line is missing (a kernel thread, a zombie, an old kernel).
    pub fn as_statm(&self) -> Option<StatmBytes> {
        Some(StatmBytes {
            vsz: self.vm_size?,
            rss: self.vm_rss?,
            shared: self.rss_file?.checked_add(self.rss_shmem?)?,
            text: self.vm_exe?,
            data: self.vm_data?.checked_add(self.vm_stk?)?,
        })
    }
}

/// A kernel thread or a zombie has none of these keys: all fields are then `None`, not an error.
pub fn parse(bytes: &[u8]) -> Result<StatusFields, String> {
    let mut v = [None; 10];
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
        vm_size: v[5],
        vm_rss: v[6],
        vm_exe: v[7],
        vm_data: v[8],
        vm_stk: v[9],
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
    fn the_statm_figures_from_status_match_statm_read_at_the_same_moment() {
        let page = super::super::page_size::page_size();
        // Read both twice and keep a pair where statm did not move in between; other test
        // threads allocate at any moment, so a pair that still differs is read again. By time,
        // not a count: while the replay tests run, statm moved between every one of 200 pairs
        // read back to back (1 run in 15 on a 2-core machine); they end within seconds.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut last = String::from("statm moved between every pair of reads");
        while std::time::Instant::now() < deadline {
            let a = std::fs::read("/proc/self/statm").unwrap();
            let st = parse(&std::fs::read("/proc/self/status").unwrap()).unwrap();
            let b = std::fs::read("/proc/self/statm").unwrap();
            if a != b {
                std::thread::sleep(std::time::Duration::from_millis(2));
                continue;
            }
            let m = super::super::statm::parse(&a, page).unwrap();
            let f = st.as_statm().unwrap();
            // statm's text is the page-aligned code range; VmExe caps it at the executable
            // mappings' size: equal for a normal binary, within a page or two otherwise.
            if (f.vsz, f.rss, f.shared, f.data) == (m.vsz, m.rss, m.shared, m.data)
                && f.text.abs_diff(m.text) <= 2 * page
            {
                return;
            }
            last = format!("status {f:?} vs statm {m:?}");
        }
        panic!("status never matched statm read around it: {last}");
    }

    #[test]
    fn without_the_size_lines_there_is_no_statm() {
        let st = parse(b"Name:\tkworker\n").unwrap();
        assert_eq!(st.as_statm(), None);
    }

    #[test]
    fn the_live_file_parses() {
        let bytes = std::fs::read("/proc/self/status").unwrap();
        let s = parse(&bytes).unwrap();
        assert!(s.rss_anon.unwrap() > 0);
        assert!(s.hwm.unwrap() > 0);
    }
}
