//! The bounded history: a ring buffer of the newest `capacity` samples, oldest first.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::cgroup::{CgroupSample, CgroupVersion, Pressure};
use crate::procfs::smaps_rollup::SmapsRollupFields;
use crate::sample::{HeapFigures, Sample};

/// A sample as the history keeps it: every figure inline, `None` as a sentinel instead of an
/// `Option` tag, no per-child list, no allocation of its own. About half the size of a
/// `Sample` behind an `Arc`, which keeps 3,600 samples of history under the 2 MiB budget.
#[derive(Debug, Clone, Copy)]
struct Packed {
    time: f64,
    mono_ms: u64,
    pid: u32,
    /// rss, vsz, shared, text, data, rss_anon, rss_file, rss_shmem, swap, hwm, threads,
    /// minor_faults, major_faults, children_rss, tree_rss, tree_pss.
    ints: [u64; 16],
    /// mem_percent, minor_faults_per_sec, major_faults_per_sec.
    rates: [f64; 3],
    /// pss, uss, swap_pss; `None` as a whole when smaps was not read.
    smaps: [u64; 3],
    heap: [f64; 4],
    /// usage, limit, high, working_set, inactive_file, anon, file, oom_events.
    cgroup: [u64; 8],
    /// some_avg10, some_avg60, full_avg10.
    pressure: [f64; 3],
    /// Bit flags: which optional groups are present (see the consts below).
    flags: u16,
}

const NONE: u64 = u64::MAX;
const HAS_SMAPS: u16 = 1;
const HAS_HEAP: u16 = 1 << 1;
const HAS_CGROUP: u16 = 1 << 2;
const CGROUP_V2: u16 = 1 << 3;
const HAS_PRESSURE: u16 = 1 << 4;
const UNDER_OOM_KNOWN: u16 = 1 << 5;
const UNDER_OOM: u16 = 1 << 6;

fn pack(v: Option<u64>) -> u64 {
    // u64::MAX bytes is not a figure a process can have: it stands for "read failed".
    v.unwrap_or(NONE)
}

fn unpack(v: u64) -> Option<u64> {
    (v != NONE).then_some(v)
}

fn pack_f(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

fn unpack_f(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

impl Packed {
    fn from_sample(s: &Sample) -> Packed {
        let mut flags = 0;
        let smaps = match s.smaps {
            Some(m) => {
                flags |= HAS_SMAPS;
                [m.pss, m.uss, m.swap_pss]
            }
            None => [NONE; 3],
        };
        let heap = match s.heap {
            Some(h) => {
                flags |= HAS_HEAP;
                [h.heap_used, h.heap_total, h.external, h.array_buffers]
            }
            None => [f64::NAN; 4],
        };
        let (mut cgroup, mut pressure) = ([NONE; 8], [f64::NAN; 3]);
        if let Some(c) = &s.cgroup {
            flags |= HAS_CGROUP;
            if c.version == CgroupVersion::V2 {
                flags |= CGROUP_V2;
            }
            cgroup = [
                c.usage,
                c.limit,
                c.high,
                c.working_set,
                c.inactive_file,
                c.anon,
                c.file,
                c.oom_events,
            ]
            .map(pack);
            if let Some(p) = c.pressure {
                flags |= HAS_PRESSURE;
                pressure = [p.some_avg10, p.some_avg60, pack_f(p.full_avg10)];
            }
            if let Some(u) = c.under_oom {
                flags |= UNDER_OOM_KNOWN | if u { UNDER_OOM } else { 0 };
            }
        }
        Packed {
            time: s.time,
            mono_ms: s.mono_ms,
            pid: s.pid,
            ints: [
                s.rss,
                s.vsz,
                s.shared,
                s.text,
                s.data,
                s.rss_anon,
                s.rss_file,
                s.rss_shmem,
                s.swap,
                s.hwm,
                s.threads,
                s.minor_faults,
                s.major_faults,
                s.children_rss,
                s.tree_rss,
                s.tree_pss,
            ]
            .map(pack),
            rates: [s.mem_percent, s.minor_faults_per_sec, s.major_faults_per_sec].map(pack_f),
            smaps,
            heap,
            cgroup,
            pressure,
            flags,
        }
    }

    fn to_sample(self) -> Sample {
        let i = self.ints.map(unpack);
        let [mem_percent, minor_faults_per_sec, major_faults_per_sec] = self.rates.map(unpack_f);
        let has = |flag: u16| self.flags & flag != 0;
        let cgroup = has(HAS_CGROUP).then(|| {
            let c = self.cgroup.map(unpack);
            CgroupSample {
                version: if has(CGROUP_V2) {
                    CgroupVersion::V2
                } else {
                    CgroupVersion::V1
                },
                usage: c[0],
                limit: c[1],
                high: c[2],
                working_set: c[3],
                inactive_file: c[4],
                anon: c[5],
                file: c[6],
                oom_events: c[7],
                under_oom: has(UNDER_OOM_KNOWN).then(|| has(UNDER_OOM)),
                pressure: has(HAS_PRESSURE).then(|| Pressure {
                    some_avg10: self.pressure[0],
                    some_avg60: self.pressure[1],
                    full_avg10: unpack_f(self.pressure[2]),
                }),
            }
        });
        Sample {
            time: self.time,
            mono_ms: self.mono_ms,
            pid: self.pid,
            rss: i[0],
            vsz: i[1],
            shared: i[2],
            text: i[3],
            data: i[4],
            rss_anon: i[5],
            rss_file: i[6],
            rss_shmem: i[7],
            swap: i[8],
            hwm: i[9],
            threads: i[10],
            minor_faults: i[11],
            major_faults: i[12],
            children_rss: i[13],
            tree_rss: i[14],
            tree_pss: i[15],
            mem_percent,
            minor_faults_per_sec,
            major_faults_per_sec,
            smaps: has(HAS_SMAPS).then(|| SmapsRollupFields {
                pss: self.smaps[0],
                uss: self.smaps[1],
                swap_pss: self.smaps[2],
            }),
            heap: has(HAS_HEAP).then(|| HeapFigures {
                heap_used: self.heap[0],
                heap_total: self.heap[1],
                external: self.heap[2],
                array_buffers: self.heap[3],
            }),
            cgroup,
            children: None,
        }
    }
}

#[derive(Debug)]
pub struct History {
    samples: VecDeque<Packed>,
    capacity: usize,
}

impl History {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        // Reserve lazily past a few thousand: a 1,000,000-sample history should not cost its
        // full size before it fills.
        History {
            samples: VecDeque::with_capacity(capacity.min(4096)),
            capacity,
        }
    }

    /// Keeps the sample's figures; its per-child list is not kept (the sums are).
    pub fn push(&mut self, sample: &Sample) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(Packed::from_sample(sample));
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn latest(&self) -> Option<Sample> {
        self.samples.back().copied().map(Packed::to_sample)
    }

    /// Samples whose wall-clock `time` is at or after `since_ms` (epoch ms), oldest first.
    pub fn since(&self, since_ms: f64) -> Vec<Arc<Sample>> {
        // Times are non-decreasing in practice, but a wall-clock step back must not hide
        // samples, so filter rather than binary-search.
        self.samples
            .iter()
            .filter(|s| s.time >= since_ms)
            .map(|p| Arc::new(p.to_sample()))
            .collect()
    }

    /// [`History::since`] with at most `max_points` samples (at least 1) plus the newest: when
    /// more match, each run of `ceil(n / max_points)` gives its highest-RSS sample, so peaks
    /// survive, and the newest sample is always kept. Only the kept samples are unpacked: a page drawing a
    /// 1,000,000-sample history costs a scan, not a million allocations.
    pub fn since_thinned(&self, since_ms: f64, max_points: usize) -> Vec<Arc<Sample>> {
        let max_points = max_points.max(1);
        let matching: Vec<&Packed> = self.samples.iter().filter(|s| s.time >= since_ms).collect();
        if matching.len() <= max_points {
            return matching.into_iter().map(|p| Arc::new(p.to_sample())).collect();
        }
        let run = matching.len().div_ceil(max_points);
        let rss = |p: &Packed| unpack(p.ints[0]);
        let mut kept: Vec<&Packed> = matching
            .chunks(run)
            .map(|chunk| {
                chunk
                    .iter()
                    .copied()
                    .reduce(|best, p| if rss(p) > rss(best) { p } else { best })
                    .expect("chunks are never empty")
            })
            .collect();
        let newest = matching[matching.len() - 1];
        if !std::ptr::eq(kept[kept.len() - 1], newest) {
            kept.push(newest);
        }
        kept.into_iter().map(|p| Arc::new(p.to_sample())).collect()
    }

    pub fn clear(&mut self) {
        self.samples.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(time: f64) -> Arc<Sample> {
        Arc::new(Sample {
            time,
            ..Sample::default()
        })
    }

    #[test]
    fn keeps_the_newest_capacity_samples_oldest_first() {
        let mut h = History::new(3);
        for t in 1..=5 {
            h.push(&at(t as f64));
        }
        let times: Vec<f64> = h.since(0.0).iter().map(|s| s.time).collect();
        assert_eq!(times, vec![3.0, 4.0, 5.0]);
        assert_eq!(h.latest().unwrap().time, 5.0);
    }

    #[test]
    fn since_filters_by_time() {
        let mut h = History::new(10);
        for t in 1..=5 {
            h.push(&at(t as f64 * 1000.0));
        }
        assert_eq!(h.since(3000.0).len(), 3);
        assert_eq!(h.since(9000.0).len(), 0);
    }

    #[test]
    fn since_thinned_keeps_peaks_and_the_newest_within_the_cap() {
        let mut h = History::new(10_000);
        for i in 0..10_000u64 {
            let rss = if i == 4321 { 900 } else { 100 + i % 3 };
            h.push(&Sample {
                time: i as f64,
                rss: Some(rss),
                ..Sample::default()
            });
        }
        let thin = h.since_thinned(0.0, 100);
        assert!(thin.len() <= 101, "{}", thin.len());
        assert!(thin.iter().any(|s| s.rss == Some(900)), "the peak survives");
        assert_eq!(thin.last().unwrap().time, 9999.0, "the newest survives");
        assert!(thin.windows(2).all(|w| w[0].time < w[1].time), "oldest first");
        assert_eq!(
            h.since_thinned(9990.0, 100).len(),
            10,
            "under the cap: all of them"
        );
        let one = h.since_thinned(0.0, 0);
        assert_eq!(one.len(), 2, "a cap of 0 is 1: the peak, then the newest");
        assert_eq!((one[0].rss, one[1].time), (Some(900), 9999.0));
    }

    #[test]
    fn capacity_one_and_zero_hold_one() {
        let mut h = History::new(0);
        h.push(&at(1.0));
        h.push(&at(2.0));
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn every_figure_survives_packing_and_none_stays_none() {
        let full = Sample {
            time: 1.5,
            mono_ms: 7,
            pid: 42,
            rss: Some(1),
            vsz: Some(2),
            shared: Some(3),
            text: Some(4),
            data: Some(5),
            rss_anon: Some(6),
            rss_file: Some(7),
            rss_shmem: Some(0),
            swap: Some(9),
            hwm: Some(10),
            mem_percent: Some(0.5),
            threads: Some(11),
            minor_faults: Some(12),
            major_faults: Some(13),
            minor_faults_per_sec: Some(1.25),
            major_faults_per_sec: None,
            smaps: Some(SmapsRollupFields {
                pss: 14,
                uss: 15,
                swap_pss: 16,
            }),
            heap: Some(HeapFigures {
                heap_used: 1.0,
                heap_total: 2.0,
                external: 3.0,
                array_buffers: 4.0,
            }),
            cgroup: Some(CgroupSample {
                version: CgroupVersion::V2,
                usage: Some(17),
                limit: None,
                high: Some(18),
                working_set: Some(19),
                inactive_file: Some(20),
                anon: Some(21),
                file: Some(22),
                oom_events: Some(23),
                under_oom: Some(true),
                pressure: Some(Pressure {
                    some_avg10: 0.1,
                    some_avg60: 0.2,
                    full_avg10: None,
                }),
            }),
            children: Some(vec![]),
            children_rss: Some(24),
            tree_rss: Some(25),
            tree_pss: None,
        };
        let mut h = History::new(2);
        h.push(&full);
        h.push(&Sample::default());
        let got = h.since(0.0);
        let expected = Sample {
            children: None,
            ..full
        };
        assert_eq!(format!("{:?}", got[0]), format!("{expected:?}"));
        assert_eq!(format!("{:?}", got[1]), format!("{:?}", Sample::default()));
    }

    #[test]
    fn a_packed_sample_is_far_smaller_than_a_boxed_one() {
        let packed = std::mem::size_of::<Packed>();
        let boxed = std::mem::size_of::<Sample>() + 16;
        assert!(packed * 3 < boxed * 2, "packed {packed} vs boxed {boxed}");
    }
}
