//! The cgroup files read every tick, one parser per format: bytes in, no allocation, no
//! panics. A parser returns what it found or a short reason, which `read_parsed` turns into a
//! [`ReadError`](crate::procfs::read_error::ReadError).

use super::{Parsed, Pressure, V1_UNLIMITED};
use crate::procfs::decimal::parse_u64;

/// A file holding one number (surrounding whitespace allowed).
pub(super) fn parse_u64_file(b: &[u8]) -> Parsed<u64> {
    parse_u64(b.trim_ascii()).ok_or("expected a decimal number")
}

/// v2 `memory.max` / `memory.high`: a number or "max" (None).
pub(super) fn parse_max_file(b: &[u8]) -> Parsed<Option<u64>> {
    let b = b.trim_ascii();
    if b == b"max" {
        return Ok(None);
    }
    parse_u64(b)
        .map(Some)
        .ok_or("expected a decimal number or \"max\"")
}

/// v1 `memory.limit_in_bytes`: values at or above 2^62 mean unlimited (None).
pub(super) fn parse_v1_limit(b: &[u8]) -> Parsed<Option<u64>> {
    let n = parse_u64_file(b)?;
    Ok((n < V1_UNLIMITED).then_some(n))
}

/// The lines of `b` split at '\n' (as `b.split(|&c| c == b'\n')`), found with memchr: v1
/// `memory.stat` has ~35 lines and is read every tick.
pub(super) fn lines(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(b);
    std::iter::from_fn(move || {
        let r = rest?;
        Some(match memchr::memchr(b'\n', r) {
            Some(nl) => {
                rest = Some(&r[nl + 1..]);
                &r[..nl]
            }
            None => {
                rest = None;
                r
            }
        })
    })
}

/// Looks up `keys` in "key value" lines. Lines with other keys are ignored whatever they hold;
/// a wanted key whose value is not a number fails the whole file. A later duplicate wins.
pub(super) fn scan_kv<const N: usize>(b: &[u8], keys: [&[u8]; N]) -> Parsed<[Option<u64>; N]> {
    let mut out = [None; N];
    for line in lines(b) {
        let (key, value) = match memchr::memchr(b' ', line) {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &line[line.len()..]),
        };
        if let Some(i) = keys.iter().position(|k| *k == key) {
            out[i] = Some(parse_u64(value.trim_ascii()).ok_or("a value is not a decimal number")?);
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stat {
    pub(super) anon: u64,
    pub(super) file: u64,
    pub(super) inactive_file: u64,
    /// v1 `hierarchical_memory_limit`: the smallest limit of the cgroup and its ancestors, None
    /// when unlimited (at or above 2^62) or absent.
    pub(super) hierarchical_limit: Option<u64>,
}

pub(super) fn parse_stat_v2(b: &[u8]) -> Parsed<Stat> {
    let [anon, file, inactive_file] = scan_kv(b, [b"anon", b"file", b"inactive_file"])?;
    Ok(Stat {
        anon: anon.ok_or("missing anon")?,
        file: file.ok_or("missing file")?,
        inactive_file: inactive_file.ok_or("missing inactive_file")?,
        hierarchical_limit: None,
    })
}

pub(super) fn parse_stat_v1(b: &[u8]) -> Parsed<Stat> {
    let [t_inactive, inactive, t_rss, rss, t_cache, cache, hierarchical_limit] = scan_kv(
        b,
        [
            b"total_inactive_file",
            b"inactive_file",
            b"total_rss",
            b"rss",
            b"total_cache",
            b"cache",
            b"hierarchical_memory_limit",
        ],
    )?;
    Ok(Stat {
        anon: t_rss.or(rss).ok_or("missing total_rss and rss")?,
        file: t_cache.or(cache).ok_or("missing total_cache and cache")?,
        inactive_file: t_inactive
            .or(inactive)
            .ok_or("missing total_inactive_file and inactive_file")?,
        hierarchical_limit: hierarchical_limit.filter(|&n| n < V1_UNLIMITED),
    })
}

/// v2 `memory.events` → (`oom_kill`, `oom`). Kernels before 4.13 have no `oom_kill`; `need_kill`:
/// its absence is an error (the kernel was seen to have it). A file with neither is an error.
pub(super) fn parse_events_v2(b: &[u8], need_kill: bool) -> Parsed<(Option<u64>, Option<u64>)> {
    let [oom_kill, oom] = scan_kv(b, [b"oom_kill", b"oom"])?;
    match (oom_kill, oom) {
        (None, _) if need_kill => Err("missing oom_kill"),
        (None, None) => Err("missing oom_kill and oom"),
        found => Ok(found),
    }
}

/// v1 `memory.oom_control` → (`under_oom`, `oom_kill` if present). `need_kill`: a missing
/// `oom_kill` is an error (the kernel was seen to have it).
pub(super) fn parse_oom_control(b: &[u8], need_kill: bool) -> Parsed<(bool, Option<u64>)> {
    let [under_oom, oom_kill] = scan_kv(b, [b"under_oom", b"oom_kill"])?;
    let under_oom = match under_oom {
        Some(0) => false,
        Some(1) => true,
        Some(_) => return Err("under_oom is not 0 or 1"),
        None => return Err("missing under_oom"),
    };
    if need_kill && oom_kill.is_none() {
        return Err("missing oom_kill");
    }
    Ok((under_oom, oom_kill))
}

/// A PSI average: digits and dots only (no sign, exponent, inf or nan), finite.
pub(super) fn parse_avg(b: &[u8]) -> Option<f64> {
    if b.is_empty() || !b.iter().all(|&c| c.is_ascii_digit() || c == b'.') {
        return None;
    }
    // Only ASCII here, so from_utf8 cannot fail; a second dot fails parse.
    let v: f64 = std::str::from_utf8(b).ok()?.parse().ok()?;
    v.is_finite().then_some(v)
}

/// (avg10, avg60) of the fields after "some"/"full".
pub(super) fn parse_psi_fields(rest: &[u8]) -> Parsed<(f64, f64)> {
    let (mut avg10, mut avg60) = (None, None);
    for field in rest.split(|c| c.is_ascii_whitespace()) {
        if let Some(v) = field.strip_prefix(b"avg10=") {
            avg10 = Some(parse_avg(v).ok_or("bad avg10")?);
        } else if let Some(v) = field.strip_prefix(b"avg60=") {
            avg60 = Some(parse_avg(v).ok_or("bad avg60")?);
        }
    }
    Ok((avg10.ok_or("missing avg10")?, avg60.ok_or("missing avg60")?))
}

/// `memory.pressure` / `/proc/pressure/memory`. The "some" line is required, "full" optional.
pub(super) fn parse_pressure(b: &[u8]) -> Parsed<Pressure> {
    let (mut some, mut full) = (None, None);
    for line in lines(b) {
        if let Some(rest) = line.strip_prefix(b"some ") {
            some = Some(parse_psi_fields(rest)?);
        } else if let Some(rest) = line.strip_prefix(b"full ") {
            full = Some(parse_psi_fields(rest)?);
        }
    }
    let (some_avg10, some_avg60) = some.ok_or("missing \"some\" line")?;
    Ok(Pressure {
        some_avg10,
        some_avg60,
        full_avg10: full.map(|(avg10, _)| avg10),
    })
}
