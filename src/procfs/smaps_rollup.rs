//! `/proc/<pid>/smaps_rollup`: PSS, USS (private clean + private dirty) and swapped PSS.
//! The kernel walks every mapping to produce it (about 1 ms on a large Node heap), so the
//! sampler reads it only when asked and at a lower cadence.

use super::kb_fields;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SmapsRollupFields {
    pub pss: u64,
    pub uss: u64,
    pub swap_pss: u64,
}

const KEYS: [&str; 4] = ["Pss", "Private_Clean", "Private_Dirty", "SwapPss"];

pub fn parse(bytes: &[u8]) -> Result<SmapsRollupFields, String> {
    let mut v = [None; 4];
    kb_fields::parse(bytes, &KEYS, &mut v)?;
    let (Some(pss), Some(clean), Some(dirty)) = (v[0], v[1], v[2]) else {
        return Err("missing Pss, Private_Clean or Private_Dirty".into());
    };
    Ok(SmapsRollupFields {
        pss,
        uss: clean.saturating_add(dirty),
        // SwapPss appeared in Linux 4.3; older kernels have none.
        swap_pss: v[3].unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pss_uss_and_swap_pss() {
        let text = b"55ee0cf74000-7ffd81b53000 ---p 00000000 00:00 0    [rollup]\nRss:   1712 kB\nPss:   481 kB\nPrivate_Clean:   84 kB\nPrivate_Dirty:  112 kB\nSwapPss:  3 kB\n";
        let s = parse(text).unwrap();
        assert_eq!(s.pss, 481 * 1024);
        assert_eq!(s.uss, (84 + 112) * 1024);
        assert_eq!(s.swap_pss, 3 * 1024);
    }

    #[test]
    fn truncated_is_an_error() {
        assert!(parse(b"55ee0cf74000-7ffd81b53000 ---p 00000000 00:00 0 [rollup]\nRss: 1 kB\n").is_err());
        assert!(parse(b"Pss: x kB\n").is_err());
    }
}
