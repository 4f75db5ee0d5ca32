//! One process's hot files (`statm`, `stat`, `status`, `smaps_rollup`), each opened once and
//! re-read with `pread`. Used for the process itself and for each watched child.

use std::path::{Path, PathBuf};

use super::{page_size, smaps_rollup, stat, statm, status};
use crate::procfs::proc_file::ProcFile;
use crate::procfs::read_error::ReadError;

/// What one read of a process produced; a file that failed leaves its part `None`. (`stat.comm`
/// is left empty by [`ProcessReader::read`]: see [`stat::parse_without_comm`].)
#[derive(Debug, Clone, Default)]
pub struct ProcessFigures {
    pub statm: Option<statm::StatmBytes>,
    pub stat: Option<stat::StatFields>,
    pub status: Option<status::StatusFields>,
    pub smaps: Option<smaps_rollup::SmapsRollupFields>,
}

#[derive(Debug)]
pub struct ProcessReader {
    dir: PathBuf,
    statm: ProcFile,
    stat: ProcFile,
    status: ProcFile,
    smaps_rollup: ProcFile,
    page_size: u64,
}

impl ProcessReader {
    /// `pid` is a directory name under the proc root: `"self"` or a number.
    pub fn new(proc_root: &Path, pid: &str) -> Self {
        let dir = proc_root.join(pid);
        ProcessReader {
            statm: ProcFile::new(dir.join("statm")),
            stat: ProcFile::new(dir.join("stat")),
            status: ProcFile::new(dir.join("status")),
            smaps_rollup: ProcFile::new(dir.join("smaps_rollup")),
            dir,
            page_size: page_size::page_size(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn read_statm(&mut self) -> Result<statm::StatmBytes, ReadError> {
        let page_size = self.page_size;
        self.statm.read_parsed(|b| statm::parse(b, page_size))
    }

    pub fn read_stat(&mut self) -> Result<stat::StatFields, ReadError> {
        self.stat.read_parsed(stat::parse)
    }

    pub fn read_status(&mut self) -> Result<status::StatusFields, ReadError> {
        self.status.read_parsed(status::parse)
    }

    pub fn read_smaps_rollup(&mut self) -> Result<smaps_rollup::SmapsRollupFields, ReadError> {
        self.smaps_rollup.read_parsed(smaps_rollup::parse)
    }

    /// Reads `stat` and `status`, and `statm` only when `status` lacks its figures: on the
    /// sampler's hot path every read is a syscall that costs ~10 us more after the thread
    /// slept (cold caches), so the one that adds nothing is skipped. Failures go to `errors`
    /// and leave their part `None`. `stat.comm` is left empty (the sampler does not use it).
    pub fn read(&mut self, with_smaps: bool, errors: &mut Vec<ReadError>) -> ProcessFigures {
        let status = self.read_status().map_err(|e| errors.push(e)).ok();
        let statm = match status.as_ref().and_then(|s| s.as_statm()) {
            Some(m) => Some(m),
            None => self.read_statm().map_err(|e| errors.push(e)).ok(),
        };
        ProcessFigures {
            statm,
            stat: self
                .stat
                .read_parsed(stat::parse_without_comm)
                .map_err(|e| errors.push(e))
                .ok(),
            status,
            smaps: if with_smaps {
                self.read_smaps_rollup().map_err(|e| errors.push(e)).ok()
            } else {
                None
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let mut r = ProcessReader::new(Path::new("/proc"), "self");
        let mut errors = Vec::new();
        let f = r.read(true, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let statm = f.statm.unwrap();
        assert!(statm.rss > 0 && statm.vsz >= statm.rss);
        assert!(f.stat.unwrap().threads >= 1);
        assert!(f.status.unwrap().rss_anon.is_some());
        assert!(f.smaps.unwrap().pss > 0);
    }

    #[test]
    fn a_missing_process_degrades_every_part_with_one_error_each_and_statm_is_tried_too() {
        let mut r = ProcessReader::new(Path::new("/proc"), "999999999");
        let mut errors = Vec::new();
        let f = r.read(false, &mut errors);
        assert!(f.statm.is_none() && f.stat.is_none() && f.status.is_none());
        assert_eq!(errors.len(), 3);
        assert_eq!(errors[0].code(), "ENOENT");
    }
}
