//! Readers of one process's procfs files. Each module parses one file format from bytes (so
//! tests and fuzzers feed it fixtures) and `process.rs` ties them to open `ProcFile`s.
//! The infrastructure every reader (here, in `cgroup` and in `children`) shares: `proc_file.rs`
//! (a file kept open and re-read with `pread`), `read_error.rs` (what a failed read or parse
//! becomes) and `decimal.rs` (the digit parser).

pub mod decimal;
pub mod kb_fields;
pub mod meminfo;
pub mod page_size;
pub mod proc_file;
pub mod process;
pub mod read_error;
pub mod smaps_rollup;
pub mod stat;
pub mod statm;
pub mod status;
