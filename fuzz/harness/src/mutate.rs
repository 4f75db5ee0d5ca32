//! Structured mutations of seed files, for the tests that run on a stable toolchain (libFuzzer
//! does its own). Positions are taken modulo the input's length, so any `Mutation` applies to any
//! input, and proptest can shrink a failing list of them.

use std::fs;
use std::path::Path;

/// Bytes and words the parsers look for, and edge values around them.
pub const TOKENS: &[&[u8]] = &[
    b"\n",
    b" ",
    b"  ",
    b"\t",
    b"\r",
    b"\0",
    b":",
    b"(",
    b")",
    b")(",
    b"-",
    b" - ",
    b",",
    b".",
    b"/",
    b"/..",
    b"/.",
    b"//",
    b"\\",
    b"\\040",
    b"\\134",
    b"\\012",
    b"\\4",
    b"\\777",
    b"0",
    b"00",
    b"1",
    b"-1",
    b"+1",
    b"1e5",
    b"inf",
    b"NaN",
    b"4294967295",
    b"4294967296",
    b"2147483647",
    b"2147483648",
    b"-2147483648",
    b"9223372036854771712",
    b"4611686018427387903",
    b"4611686018427387904",
    b"18014398509481983",
    b"18014398509481984",
    b"18446744073709551615",
    b"18446744073709551616",
    b"99999999999999999999999",
    b"0.00",
    b"1.2.3",
    b"999999999999999999999999999999999999999999.5",
    b" kB",
    b" kB kB",
    b" MB",
    b"max",
    b"Name:",
    b"RssAnon:",
    b"VmSwap:",
    b"VmHWM:",
    b"Pss:",
    b"Private_Clean:",
    b"Private_Dirty:",
    b"SwapPss:",
    b"MemTotal:",
    b"some ",
    b"full ",
    b"avg10=",
    b"avg60=",
    b"avg300=",
    b"total=",
    b"anon ",
    b"file ",
    b"inactive_file ",
    b"total_inactive_file ",
    b"total_rss ",
    b"rss ",
    b"total_cache ",
    b"cache ",
    b"oom_kill ",
    b"under_oom ",
    b"0::/",
    b"4:memory:/",
    b"memory",
    b",memory",
    b"cgroup",
    b"cgroup2",
    b"rw,memory",
    b"/sys/fs/cgroup",
    b"/sys/fs/cgroup/memory",
    b"100",
    b"101",
    b"102",
    b"103",
    b"104",
    b"105",
    b"\xff",
    b"\xc3\xa9",
    b"\xc3",
    b"\xe2\x82",
    crate::SEP,
    crate::ABSENT,
];

/// One edit. `at` and `len` are reduced modulo the input's length when applied.
#[derive(Debug, Clone)]
pub enum Mutation {
    SetByte {
        at: usize,
        byte: u8,
    },
    FlipBit {
        at: usize,
        bit: u8,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    InsertToken {
        at: usize,
        token: usize,
    },
    ReplaceWithToken {
        at: usize,
        len: usize,
        token: usize,
    },
    Delete {
        at: usize,
        len: usize,
    },
    Duplicate {
        at: usize,
        len: usize,
    },
    Truncate {
        at: usize,
    },
    /// Replace a run of digits starting at or after `at` with another number.
    Number {
        at: usize,
        value: u64,
    },
    /// Swap two lines (split at '\n').
    SwapLines {
        a: usize,
        b: usize,
    },
}

pub fn apply(data: &mut Vec<u8>, m: &Mutation) {
    let n = data.len();
    let pos = |at: usize| if n == 0 { 0 } else { at % (n + 1) };
    match *m {
        Mutation::SetByte { at, byte } => {
            if n > 0 {
                data[at % n] = byte;
            }
        }
        Mutation::FlipBit { at, bit } => {
            if n > 0 {
                data[at % n] ^= 1 << (bit % 8);
            }
        }
        Mutation::Insert { at, ref bytes } => {
            let p = pos(at);
            data.splice(p..p, bytes.iter().copied());
        }
        Mutation::InsertToken { at, token } => {
            let p = pos(at);
            data.splice(p..p, TOKENS[token % TOKENS.len()].iter().copied());
        }
        Mutation::ReplaceWithToken { at, len, token } => {
            let p = pos(at);
            let end = (p + len % 24).min(n);
            data.splice(p..end, TOKENS[token % TOKENS.len()].iter().copied());
        }
        Mutation::Delete { at, len } => {
            let p = pos(at);
            let end = (p + 1 + len % 64).min(n);
            data.drain(p..end);
        }
        Mutation::Duplicate { at, len } => {
            let p = pos(at);
            let end = (p + 1 + len % 256).min(n);
            let copy = data[p..end].to_vec();
            data.splice(end..end, copy);
        }
        Mutation::Truncate { at } => data.truncate(pos(at)),
        Mutation::Number { at, value } => {
            let Some(start) = (pos(at)..n).find(|&i| data[i].is_ascii_digit()) else {
                return;
            };
            let end = (start..n).find(|&i| !data[i].is_ascii_digit()).unwrap_or(n);
            data.splice(start..end, value.to_string().into_bytes());
        }
        Mutation::SwapLines { a, b } => {
            let mut lines: Vec<Vec<u8>> = data.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
            let k = lines.len();
            lines.swap(a % k, b % k);
            *data = lines.join(&b"\n"[..]);
        }
    }
}

/// xorshift64*: a fixed-seed generator for the deterministic tests.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    /// A random mutation, with numbers skewed to the edges.
    pub fn mutation(&mut self) -> Mutation {
        let at = self.next_u64() as usize;
        match self.below(10) {
            0 => Mutation::SetByte {
                at,
                byte: self.next_u64() as u8,
            },
            1 => Mutation::FlipBit {
                at,
                bit: self.next_u64() as u8,
            },
            2 => {
                let len = 1 + self.below(8);
                Mutation::Insert {
                    at,
                    bytes: self.bytes(len),
                }
            }
            3 => Mutation::InsertToken {
                at,
                token: self.below(TOKENS.len()),
            },
            4 => Mutation::ReplaceWithToken {
                at,
                len: self.below(24),
                token: self.below(TOKENS.len()),
            },
            5 => Mutation::Delete {
                at,
                len: self.below(64),
            },
            6 => Mutation::Duplicate {
                at,
                len: self.below(256),
            },
            7 => Mutation::Truncate { at },
            8 => {
                let value = match self.below(4) {
                    0 => self.next_u64(),
                    1 => u64::MAX - self.below(3) as u64,
                    2 => (1u64 << self.below(64)).wrapping_sub(self.below(3) as u64),
                    _ => self.below(1000) as u64,
                };
                Mutation::Number { at, value }
            }
            _ => Mutation::SwapLines {
                a: self.next_u64() as usize,
                b: self.next_u64() as usize,
            },
        }
    }
}

/// The files of a folder (sorted by name; none if it does not exist).
pub fn load_dir(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter_map(|e| {
            let bytes = fs::read(e.path()).ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), bytes))
        })
        .collect();
    files.sort();
    files
}

/// `fuzz/seeds/<target>/*`.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    load_dir(&crate::fuzz_dir().join("seeds").join(target))
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect()
}
