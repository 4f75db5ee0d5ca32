//! `/proc/meminfo`: `MemTotal`, read once per sentry for `memPercent` (as pidstat's %MEM).

use super::kb_fields;

pub fn parse_mem_total(bytes: &[u8]) -> Result<u64, String> {
    let mut v = [None; 1];
    kb_fields::parse(bytes, &["MemTotal"], &mut v)?;
    match v[0] {
        Some(0) => Err("MemTotal is 0".into()),
        Some(n) => Ok(n),
        None => Err("no MemTotal line".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_total() {
        assert_eq!(
            parse_mem_total(b"MemTotal:  24000000 kB\nMemFree: 1 kB\n").unwrap(),
            24000000 * 1024
        );
        assert!(parse_mem_total(b"MemFree: 1 kB\n").is_err());
        assert!(parse_mem_total(b"MemTotal: 0 kB\n").is_err());
    }
}
