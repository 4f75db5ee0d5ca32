//! The `Key:   1234 kB` line format shared by `status`, `smaps_rollup` and `meminfo`.
//!
//! The `procfs` crate parses these files into a `HashMap<String, _>` of every line, which
//! allocates about a hundred strings per read of `status`; the sampler needs five keys every
//! tick, so it scans for just those (see `benches` in the README for the measured difference).

/// Fills `out[i]` with the value of `keys[i]` in bytes (the `kB` suffix multiplies by 1024; a
/// bare number is kept as is). Keys not present stay `None`. A present key whose value does not
/// parse is an error naming the key.
///
/// On the sampler's hot path (`status` every tick, ~1.4 KB, ~55 lines, for each watched child
/// too): a line's key is compared with the wanted ones only when its length and first byte are
/// those of some wanted key, so most lines cost a scan for ':' and '\n' and nothing more.
pub fn parse(bytes: &[u8], keys: &[&str], out: &mut [Option<u64>]) -> Result<(), String> {
    debug_assert_eq!(keys.len(), out.len());
    for slot in out.iter_mut() {
        *slot = None;
    }
    let filter = Prefilter::new(keys);
    let mut rest = bytes;
    loop {
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(nl) => (&rest[..nl], Some(&rest[nl + 1..])),
            None => (rest, None),
        };
        if let Some(colon) = memchr::memchr(b':', line) {
            let key = &line[..colon];
            if filter.may_match(key) {
                if let Some(i) = keys.iter().position(|k| k.as_bytes() == key) {
                    out[i] = Some(parse_value(&line[colon + 1..]).ok_or_else(|| {
                        format!(
                            "bad value for {}: {:?}",
                            keys[i],
                            String::from_utf8_lossy(&line[colon + 1..]).trim()
                        )
                    })?);
                }
            }
        }
        match next {
            Some(n) => rest = n,
            None => return Ok(()),
        }
    }
}

/// The lengths and first bytes of the wanted keys: a key with another length or first byte is
/// none of them. Lengths of 63 and more share one bit.
struct Prefilter {
    lengths: u64,
    firsts: [u64; 4],
}

impl Prefilter {
    fn new(keys: &[&str]) -> Prefilter {
        let mut f = Prefilter {
            lengths: 0,
            firsts: [0; 4],
        };
        for k in keys {
            let k = k.as_bytes();
            f.lengths |= 1 << k.len().min(63);
            if let Some(&b) = k.first() {
                f.firsts[usize::from(b >> 6)] |= 1 << (b & 63);
            }
        }
        f
    }

    fn may_match(&self, key: &[u8]) -> bool {
        self.lengths & (1 << key.len().min(63)) != 0
            && key
                .first()
                .is_none_or(|&b| self.firsts[usize::from(b >> 6)] & (1 << (b & 63)) != 0)
    }
}

/// `   1234 kB` → 1234 * 1024; `  42` → 42. The kernel writes these in ASCII: any other byte,
/// Unicode whitespace included, makes the value garbled.
fn parse_value(rest: &[u8]) -> Option<u64> {
    let mut parts = rest.split(u8::is_ascii_whitespace).filter(|p| !p.is_empty());
    let number = super::decimal::parse_u64(parts.next()?)?;
    match (parts.next(), parts.next()) {
        (None, _) => Some(number),
        (Some(b"kB"), None) => number.checked_mul(1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_requested_keys_in_bytes() {
        let text = b"Name:\tnode\nVmRSS:\t  1000 kB\nThreads:\t7\nRssAnon:\t 10 kB\n";
        let mut out = [None; 3];
        parse(text, &["RssAnon", "Threads", "VmSwap"], &mut out).unwrap();
        assert_eq!(out, [Some(10 * 1024), Some(7), None]);
    }

    #[test]
    fn a_garbled_value_is_an_error_naming_the_key() {
        let mut out = [None; 1];
        let err = parse(b"VmHWM:\t12x kB\n", &["VmHWM"], &mut out).unwrap_err();
        assert!(err.contains("VmHWM"), "{err}");
        let err = parse(b"VmHWM:\t12 MB\n", &["VmHWM"], &mut out).unwrap_err();
        assert!(err.contains("VmHWM"), "{err}");
    }

    #[test]
    fn values_with_and_without_a_unit() {
        let cases: [(&[u8], Option<u64>); 16] = [
            (b" 12 kB", Some(12 * 1024)),
            (b"\t 12 kB \n", Some(12 * 1024)),
            (b"12\x0ckB", Some(12 * 1024)),
            (b"\r12\rkB\r", Some(12 * 1024)),
            (b" 12  kB", Some(12 * 1024)),
            (b" 12", Some(12)),
            (b" 18014398509481983 kB", Some(18014398509481983 * 1024)),
            (b" 18014398509481984 kB", None),
            (b" 12 kB x", None),
            (b" 12 MB", None),
            (b"", None),
            (b"   ", None),
            (b" kB", None),
            (b" -1 kB", None),
            (b" 1 2", None),
            // Vertical tab and no-break space: not what the kernel writes.
            ("\x0b12\u{a0}kB".as_bytes(), None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_value(text), want, "{:?}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn keys_of_any_length_or_first_byte_are_found() {
        let long = "K".repeat(70);
        let text = format!("{long}: 3\n:\t4\n\u{e9}t\u{e9}: 5\nK: 6\n");
        let mut out = [None; 4];
        parse(text.as_bytes(), &[&long, "", "\u{e9}t\u{e9}", "K"], &mut out).unwrap();
        assert_eq!(out, [Some(3), Some(4), Some(5), Some(6)]);
    }

    #[test]
    fn overflow_and_non_utf8_do_not_panic() {
        let mut out = [None; 1];
        assert!(parse(b"VmHWM:\t99999999999999999999 kB\n", &["VmHWM"], &mut out).is_err());
        assert!(parse(b"VmHWM:\t18014398509481984 kB\n", &["VmHWM"], &mut out).is_err());
        assert!(parse(b"VmHWM:\t\xff\xfe kB\n", &["VmHWM"], &mut out).is_err());
        assert!(parse(b"\xff:\n:::\n", &["VmHWM"], &mut out).is_ok());
        assert_eq!(out, [None]);
    }
}
