//! A `Sample`: one reading of the process (and, when watched, its children and cgroup), the
//! unit the history stores and the detectors consume. Bytes are bytes; `None` means the read
//! behind that field failed (it reaches JS as `null`).

use crate::cgroup::CgroupSample;
use crate::children::ChildSample;
use crate::procfs::smaps_rollup::SmapsRollupFields;

/// V8 heap figures recorded by the JS side right after a GC (`heap: true`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HeapFigures {
    pub heap_used: f64,
    pub heap_total: f64,
    pub external: f64,
    pub array_buffers: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Wall clock, epoch milliseconds.
    pub time: f64,
    /// Monotonic milliseconds since the sampler's clock origin: rates and trends use this, so a
    /// wall-clock jump cannot make a negative interval.
    pub mono_ms: u64,
    pub pid: u32,
    pub rss: Option<u64>,
    pub vsz: Option<u64>,
    pub shared: Option<u64>,
    pub text: Option<u64>,
    pub data: Option<u64>,
    pub rss_anon: Option<u64>,
    pub rss_file: Option<u64>,
    pub rss_shmem: Option<u64>,
    pub swap: Option<u64>,
    pub hwm: Option<u64>,
    pub mem_percent: Option<f64>,
    pub threads: Option<u64>,
    pub minor_faults: Option<u64>,
    pub major_faults: Option<u64>,
    pub minor_faults_per_sec: Option<f64>,
    pub major_faults_per_sec: Option<f64>,
    /// `None` when smaps is off, or on a tick that skipped it (`smaps: { everyN }`).
    pub smaps: Option<SmapsRollupFields>,
    pub heap: Option<HeapFigures>,
    /// The process's memory cgroup; `None` when it has none that can be found.
    pub cgroup: Option<CgroupSample>,
    /// Watched children (`None` with `children: 'none'`). Only the newest sample keeps the
    /// per-child list; the history keeps the sums below, which bounds its memory.
    pub children: Option<Vec<ChildSample>>,
    /// Sum of the children's RSS. Shared pages are counted once per process that maps them.
    pub children_rss: Option<u64>,
    /// Own RSS plus `children_rss`.
    pub tree_rss: Option<u64>,
    /// Own PSS plus the children's (smaps on): shared pages split, not double-counted.
    pub tree_pss: Option<u64>,
}

/// A byte figure a threshold or the leak detector can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Rss,
    Vsz,
    Shared,
    Text,
    Data,
    RssAnon,
    RssFile,
    RssShmem,
    Swap,
    Hwm,
    Pss,
    Uss,
    SwapPss,
    HeapUsed,
    HeapTotal,
    External,
    ArrayBuffers,
    /// The cgroup's usage minus inactive file pages: what the kubelet evicts on.
    WorkingSet,
    CgroupUsage,
    ChildrenRss,
    TreeRss,
    TreePss,
}

impl Metric {
    pub const ALL: [Metric; 22] = [
        Metric::Rss,
        Metric::Vsz,
        Metric::Shared,
        Metric::Text,
        Metric::Data,
        Metric::RssAnon,
        Metric::RssFile,
        Metric::RssShmem,
        Metric::Swap,
        Metric::Hwm,
        Metric::Pss,
        Metric::Uss,
        Metric::SwapPss,
        Metric::HeapUsed,
        Metric::HeapTotal,
        Metric::External,
        Metric::ArrayBuffers,
        Metric::WorkingSet,
        Metric::CgroupUsage,
        Metric::ChildrenRss,
        Metric::TreeRss,
        Metric::TreePss,
    ];

    /// The name used in options and events (the Sample field's JS name).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Rss => "rss",
            Metric::Vsz => "vsz",
            Metric::Shared => "shared",
            Metric::Text => "text",
            Metric::Data => "data",
            Metric::RssAnon => "rssAnon",
            Metric::RssFile => "rssFile",
            Metric::RssShmem => "rssShmem",
            Metric::Swap => "swap",
            Metric::Hwm => "hwm",
            Metric::Pss => "pss",
            Metric::Uss => "uss",
            Metric::SwapPss => "swapPss",
            Metric::HeapUsed => "heapUsed",
            Metric::HeapTotal => "heapTotal",
            Metric::External => "external",
            Metric::ArrayBuffers => "arrayBuffers",
            Metric::WorkingSet => "workingSet",
            Metric::CgroupUsage => "cgroupUsage",
            Metric::ChildrenRss => "childrenRss",
            Metric::TreeRss => "treeRss",
            Metric::TreePss => "treePss",
        }
    }

    /// Whether the metric adds the children's memory to the process's own: its growth may be a
    /// child's.
    pub fn covers_children(self) -> bool {
        matches!(self, Metric::ChildrenRss | Metric::TreeRss | Metric::TreePss)
    }

    /// Whether the metric is read from the process's memory cgroup.
    pub fn from_cgroup(self) -> bool {
        matches!(self, Metric::WorkingSet | Metric::CgroupUsage)
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl Sample {
    /// A copy without the per-child list (the children's sums stay).
    pub fn without_children(&self) -> Sample {
        Sample {
            children: None,
            cgroup: self.cgroup.clone(),
            ..*self
        }
    }

    /// The value of `metric` in this sample, `None` when its read failed or it is not collected.
    pub fn metric(&self, metric: Metric) -> Option<u64> {
        let heap = |f: fn(&HeapFigures) -> f64| self.heap.as_ref().map(|h| f(h) as u64);
        match metric {
            Metric::Rss => self.rss,
            Metric::Vsz => self.vsz,
            Metric::Shared => self.shared,
            Metric::Text => self.text,
            Metric::Data => self.data,
            Metric::RssAnon => self.rss_anon,
            Metric::RssFile => self.rss_file,
            Metric::RssShmem => self.rss_shmem,
            Metric::Swap => self.swap,
            Metric::Hwm => self.hwm,
            Metric::Pss => self.smaps.map(|s| s.pss),
            Metric::Uss => self.smaps.map(|s| s.uss),
            Metric::SwapPss => self.smaps.map(|s| s.swap_pss),
            Metric::HeapUsed => heap(|h| h.heap_used),
            Metric::HeapTotal => heap(|h| h.heap_total),
            Metric::External => heap(|h| h.external),
            Metric::ArrayBuffers => heap(|h| h.array_buffers),
            Metric::WorkingSet => self.cgroup.as_ref().and_then(|c| c.working_set),
            Metric::CgroupUsage => self.cgroup.as_ref().and_then(|c| c.usage),
            Metric::ChildrenRss => self.children_rss,
            Metric::TreeRss => self.tree_rss,
            Metric::TreePss => self.tree_pss,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_name_round_trips() {
        for m in Metric::ALL {
            assert_eq!(Metric::from_name(m.name()), Some(m));
        }
        assert_eq!(Metric::from_name("rsss"), None);
    }

    #[test]
    fn a_missing_group_reads_as_none() {
        let s = Sample {
            rss: Some(5),
            ..Sample::default()
        };
        assert_eq!(s.metric(Metric::Rss), Some(5));
        assert_eq!(s.metric(Metric::Pss), None);
        assert_eq!(s.metric(Metric::HeapUsed), None);
    }
}
