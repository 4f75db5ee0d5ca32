//! What accounts for a growth (rule 5 of the module documentation): which part of the process's
//! memory grows with the metric, or V8 sizing its heap, which is never a leak.

use super::envelope::{Analysis, Part};
use super::outlived::Evidence;
use super::{
    LeakDetector, Suspect, EXPLAINS, NATIVE_SHARE, START_RECENT_FRACTION, STEADY_BEYOND_GARBAGE, STEADY_SHARE,
};

/// How a growth is accounted for by the parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cause {
    /// A part that holds memory on purpose grows with the metric: the heap floor, external
    /// memory, or a child.
    Explained(Suspect),
    /// V8's heap grows, not what it keeps alive: it sized itself for a higher allocation rate
    /// and keeps the pages, or holds garbage until a full GC. Not a leak.
    HeapSizing,
    /// The heap figures explain too little of it: native memory outside V8's view (or heap
    /// growth hidden in noise).
    Unexplained(Suspect),
    /// No heap figures to tell.
    Unknown,
}

impl Cause {
    pub(super) fn suspect(self) -> Suspect {
        match self {
            Cause::Explained(s) | Cause::Unexplained(s) => s,
            Cause::HeapSizing => Suspect::Native,
            Cause::Unknown => Suspect::Unknown,
        }
    }
}

impl LeakDetector {
    /// What accounts for the growth (see the module documentation).
    pub(super) fn cause(&self, a: &Analysis) -> Cause {
        if a.slope.is_nan() || a.slope <= 0.0 {
            return Cause::Unknown;
        }
        let parts = self.part_slopes(a);
        let share = |p: Part| parts.get(p).map(|s| s / a.slope);
        if share(Part::Children).is_some_and(|s| s >= EXPLAINS) {
            return Cause::Explained(Suspect::Child);
        }
        let Some(heap_raw) = share(Part::HeapUsed) else {
            return Cause::Unknown;
        };
        // Between full GCs the heap floor rises by the garbage rate, leak or not; a span with a
        // full GC in it has post-GC floors that do not.
        let start_ms = a.first_idx * self.width_ms;
        let garbage = match self.full_gcs.iter().any(|g| g.t >= start_ms) {
            true => 0.0,
            false => self.garbage.rate().unwrap_or(0.0) / a.slope,
        };
        let heap = heap_raw - garbage;
        let external = share(Part::External).unwrap_or(0.0);
        if heap >= EXPLAINS {
            Cause::Explained(Suspect::Heap)
        } else if external >= EXPLAINS {
            Cause::Explained(Suspect::Native)
        } else if heap + external >= EXPLAINS {
            Cause::Explained(if heap >= external {
                Suspect::Heap
            } else {
                Suspect::Native
            })
        } else if heap >= NATIVE_SHARE
            && share(Part::HeapTotal).is_some_and(|t| t + external >= EXPLAINS)
            && self.fresh_full_gc()
        {
            // V8 growing its heap alongside a live heap that grows: on Node 24 it grew (and the
            // RSS with it) three times faster than a heap leak. The heap floor alone cannot say
            // so (promoted garbage raises it as fast after a cache filled); what the full GCs
            // kept can, while the newest is recent: whether they kept rising is for
            // `outlived_full_gcs`.
            Cause::Explained(Suspect::Heap)
        } else {
            let total = share(Part::HeapTotal);
            // What grows outside V8's heap and its Buffers: native memory.
            let outside = total.map(|t| 1.0 - t - external);
            let peak = share(Part::HeapPeak);
            if heap < NATIVE_SHARE
                && (total.is_some_and(|t| t >= EXPLAINS) || peak.is_some_and(|p| p >= EXPLAINS))
            {
                // V8's heap grew, not what it keeps alive: free space, or garbage a full GC takes.
                // Its peak counts too: heavy garbage on Node 22 took heapTotal to new highs
                // (63.6 to 69.0 MiB at 437-484 s) between shrinks that left the RSS where it was,
                // and the RSS rose 1.4 MiB/min with the peak (a 240 s window at 5 s sampling
                // called it native at 570 s). The cost: native growth while V8's heap reaches new
                // highs at half its rate or more waits until they stop; a heap is bounded, so it
                // delays a native leak, it does not hide it.
                Cause::HeapSizing
            } else if heap < NATIVE_SHARE || outside.is_some_and(|o| o >= EXPLAINS) {
                Cause::Unexplained(Suspect::Native)
            } else {
                Cause::Unexplained(Suspect::Unknown)
            }
        }
    }

    /// The part whose growth explains a heap, external or child cause.
    pub(super) fn explaining_part(&self, cause: Cause) -> Option<Part> {
        match cause {
            Cause::Explained(Suspect::Heap) => Some(Part::HeapUsed),
            Cause::Explained(Suspect::Native) => Some(Part::External),
            Cause::Explained(Suspect::Child) => Some(Part::Children),
            _ => None,
        }
    }

    /// The heap's slope (bytes/s) if the full GCs alone show a steady heap leak: the heap's floors
    /// grow at the minimum slope or more, the last rise between full GCs came at `STEADY_SHARE`
    /// of the one before or more, and what the full GCs left rose as the start rule asks (rule
    /// 6) with the rise before as steady too; or the floor since the newest full GC rises
    /// `STEADY_BEYOND_GARBAGE` times the garbage measured. Then the heap is the
    /// cause however fast the metric grows besides: on Node 24 V8 grew the RSS 85-130 MiB/min
    /// while a 40 MiB/min heap leak rose at every full GC 20 s apart, and the growth outside
    /// V8's heap made it "unexplained" until 101 s. An LRU nearing its cap rose 11, then 6 MB/min
    /// (0.54) at the same point; a leak's steps scatter around one rate.
    pub(super) fn steady_heap(&self, a: &Analysis) -> Option<f64> {
        if !self.gc_kinds_known || !self.heap_lives.not_slowing(STEADY_SHARE) {
            return None;
        }
        let min = self.config.min_slope_at(a.level);
        let heap = self
            .part_slope(Part::HeapUsed, a.first_idx, a.end_idx)
            .filter(|&h| h >= min)?;
        let rate = START_RECENT_FRACTION * min;
        let kept = self.heap_lives.steady(STEADY_SHARE)
            && self.outlived_full_gcs(a, Cause::Explained(Suspect::Heap), rate, Evidence::FullGcsOnly)
                == Some(true);
        // Or the floor since the newest full GC, if it rises far beyond the garbage measured.
        let floor = || {
            let since = self.heap_slope_since_full_gc(a);
            since
                .zip(self.garbage.rate())
                .is_some_and(|(s, g)| s >= STEADY_BEYOND_GARBAGE * g + rate)
                && self.beyond_garbage(since, rate, self.heap_lives.noise_margin_or_share())
        };
        (kept || floor()).then_some(heap)
    }
}
