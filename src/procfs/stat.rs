//! `/proc/<pid>/stat`: fault counters, thread count, parent pid, command name, start time.
//!
//! Parsed by hand: the `procfs` crate's `Stat` parser panics on a truncated line (a slice
//! index past the end, found by the truncation test below), and a monitor must not panic on
//! what a dying process leaves behind.

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatFields {
    pub pid: i32,
    pub ppid: i32,
    pub comm: String,
    pub minor_faults: u64,
    pub major_faults: u64,
    pub threads: u64,
    /// Clock ticks after boot; with the pid, identifies a process across pid reuse.
    pub start_time: u64,
}

pub fn parse(bytes: &[u8]) -> Result<StatFields, String> {
    parse_inner(bytes, true)
}

/// [`parse`] with `comm` left empty (the same checks and errors otherwise): the sampler's reading
/// of its own process uses none of it, and a `String` allocated and freed every tick costs about
/// 1.5 us of cold malloc/free on the sampler thread after its sleep.
pub fn parse_without_comm(bytes: &[u8]) -> Result<StatFields, String> {
    parse_inner(bytes, false)
}

fn parse_inner(bytes: &[u8], with_comm: bool) -> Result<StatFields, String> {
    // `comm` may hold spaces and parentheses: it runs from the first '(' to the last ')'.
    let open = bytes
        .iter()
        .position(|&b| b == b'(')
        .ok_or("no '(' before comm")?;
    let close = bytes
        .iter()
        .rposition(|&b| b == b')')
        .ok_or("no ')' after comm")?;
    if close < open {
        return Err("')' before '('".into());
    }
    let pid = parse_pid(bytes[..open].trim_ascii(), "pid")?;
    let comm = if with_comm {
        String::from_utf8_lossy(&bytes[open + 1..close]).into_owned()
    } else {
        String::new()
    };
    // Fields after comm, numbered as in proc(5): the first is field 3 (state). Walked once,
    // without collecting them (this runs every tick, for the process and each child).
    let mut rest = bytes[close + 1..]
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let mut at = 2; // the number of the field `rest` returned last
    let mut field = |n: usize, name: &str| -> Result<&[u8], String> {
        debug_assert!(n > at);
        let f = rest.nth(n - at - 1);
        at = n;
        f.ok_or_else(|| format!("truncated before {name} (field {n})"))
    };
    let ppid = parse_pid(field(4, "ppid")?, "ppid")?;
    let minor_faults = parse_num(field(10, "minflt")?, "minflt")?;
    let major_faults = parse_num(field(12, "majflt")?, "majflt")?;
    let threads = parse_num(field(20, "num_threads")?, "num_threads")?;
    let start_time = parse_num(field(22, "starttime")?, "starttime")?;
    Ok(StatFields {
        pid,
        ppid,
        comm,
        minor_faults,
        major_faults,
        threads,
        start_time,
    })
}

fn parse_num(field: &[u8], name: &str) -> Result<u64, String> {
    super::decimal::parse_u64(field)
        .ok_or_else(|| format!("bad {name}: {:?}", String::from_utf8_lossy(field)))
}

/// A pid or ppid: unsigned in the file, `i32` (`pid_t`) in [`StatFields`].
fn parse_pid(field: &[u8], name: &str) -> Result<i32, String> {
    i32::try_from(parse_num(field, name)?)
        .map_err(|_| format!("bad {name}: {:?}", String::from_utf8_lossy(field)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &[u8] = b"4242 (node worker) S 17 4242 17 0 -1 4194560 15339 0 2 0 67 17 0 0 20 0 11 0 1032 1137483776 12800 18446744073709551615 1 1 0 0 0 0 0 16781312 134234626 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    #[test]
    fn a_comm_with_parentheses_and_spaces_parses() {
        let s = parse(b"7 (a) b (c)) R 1 7 7 0 -1 0 3 0 4 0 0 0 0 0 20 0 2 0 99 0 0").unwrap();
        assert_eq!(s.comm, "a) b (c)");
        assert_eq!(
            (s.ppid, s.minor_faults, s.major_faults, s.threads, s.start_time),
            (1, 3, 4, 2, 99)
        );
    }

    #[test]
    fn without_comm_is_the_same_parse_but_comm() {
        let prefixes = (0..LINE.len()).map(|n| &LINE[..n]);
        for b in prefixes.chain([
            LINE,
            &b"x (y) z"[..],
            b"1 (a) S 1 1 1 0 -1 0 x 0 0 0 0 0 0 0 20 0 1 0 5 1 1",
        ]) {
            let with = parse(b).map(|s| StatFields {
                comm: String::new(),
                ..s
            });
            assert_eq!(parse_without_comm(b), with, "{:?}", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn the_live_file_parses() {
        let s = parse(&std::fs::read("/proc/self/stat").unwrap()).unwrap();
        assert_eq!(s.pid as u32, std::process::id());
        assert!(s.threads >= 1);
    }

    #[test]
    fn parses_faults_threads_and_comm_with_a_space() {
        let s = parse(LINE).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.ppid, 17);
        assert_eq!(s.comm, "node worker");
        assert_eq!(s.minor_faults, 15339);
        assert_eq!(s.major_faults, 2);
        assert_eq!(s.threads, 11);
        assert_eq!(s.start_time, 1032);
    }

    #[test]
    fn garbled_and_truncated_are_errors_not_panics() {
        assert!(parse(b"").is_err());
        assert!(parse(b"4242 (node) S 17").is_err());
        assert!(parse(b"x (y) z").is_err());
        // Cut anywhere before starttime begins: an error, never a panic. (A cut inside a
        // number cannot be told from a shorter number.)
        let starttime_start = LINE.windows(6).position(|w| w == b" 1032 ").unwrap() + 1;
        for n in 0..starttime_start {
            assert!(parse(&LINE[..n]).is_err(), "prefix of {n} bytes parsed");
        }
        assert!(parse(b"1 (a) S 1 1 1 0 -1 0 x 0 0 0 0 0 0 0 20 0 1 0 5 1 1").is_err());
    }
}
