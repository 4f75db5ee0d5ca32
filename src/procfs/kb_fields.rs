//! The `Key:   1234 kB` line format shared by `status`, `smaps_rollup` and `meminfo`.
//!
//! The `procfs` crate parses these files into a `HashMap<String, _>` of every line, which
//! allocates about a hundred strings per read of `status`; the sampler needs five keys every
//! tick, so it scans for just those (see `benches` in the README for the measured difference).

/// Fills `out[i]` with the value of `keys[i]` in bytes (the `kB` suffix multiplies by 1024; a
/// bare number is kept as is). Keys not present stay `None`. A present key whose value does not
/// parse is an error naming the key.
pub fn parse(bytes: &[u8], keys: &[&str], out: &mut [Option<u64>]) -> Result<(), String> {
    debug_assert_eq!(keys.len(), out.len());
    for slot in out.iter_mut() {
        *slot = None;
    }
    for line in bytes.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let key = &line[..colon];
        let Some(i) = keys.iter().position(|k| k.as_bytes() == key) else {
            continue;
        };
        out[i] = Some(parse_value(&line[colon + 1..]).ok_or_else(|| {
            format!(
                "bad value for {}: {:?}",
                keys[i],
                String::from_utf8_lossy(&line[colon + 1..]).trim()
            )
        })?);
    }
    Ok(())
}

/// `   1234 kB` → 1234 * 1024; `  42` → 42.
fn parse_value(rest: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(rest).ok()?.trim();
    let mut parts = text.split_ascii_whitespace();
    let number = super::decimal::parse_u64(parts.next()?.as_bytes())?;
    match (parts.next(), parts.next()) {
        (None, _) => Some(number),
        (Some("kB"), None) => number.checked_mul(1024),
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
    fn overflow_and_non_utf8_do_not_panic() {
        let mut out = [None; 1];
        assert!(parse(b"VmHWM:\t99999999999999999999 kB\n", &["VmHWM"], &mut out).is_err());
        assert!(parse(b"VmHWM:\t18014398509481984 kB\n", &["VmHWM"], &mut out).is_err());
        assert!(parse(b"VmHWM:\t\xff\xfe kB\n", &["VmHWM"], &mut out).is_err());
        assert!(parse(b"\xff:\n:::\n", &["VmHWM"], &mut out).is_ok());
        assert_eq!(out, [None]);
    }
}
