//! `msToLimit`: when a leak at its slope reaches the memory limit or, for a heap leak, V8's heap
//! limit.

use super::LeakEstimate;

/// Time in ms until `value` reaches `limit` growing at `slope_bytes_per_sec`; None if no limit,
/// the slope is <= 0, or any input or the result is not finite; Some(0.0) if already at/over the
/// limit.
pub fn ms_to_limit(value: f64, limit: Option<f64>, slope_bytes_per_sec: f64) -> Option<f64> {
    let limit = limit?;
    if !value.is_finite() || !limit.is_finite() || !slope_bytes_per_sec.is_finite() {
        return None;
    }
    if slope_bytes_per_sec <= 0.0 {
        return None;
    }
    if value >= limit {
        return Some(0.0);
    }
    Some((limit - value) / slope_bytes_per_sec * 1000.0).filter(|ms| ms.is_finite())
}

/// For a heap leak (the caller knows the episode's suspect), the time in ms until the heap (the
/// newest `heapUsed`, bytes) reaches V8's heap limit (`heap_size_limit`) at the heap's own slope
/// (the metric's if the heap's is unknown); `None` without both figures, or if the heap does not
/// grow. V8 then ends the process ("JavaScript heap out of memory"), and in a container that
/// comes first: Node sizes the heap limit from the cgroup's (259 MiB in a 512 MiB cgroup, 560 MiB
/// in 1 GiB, on Node 24), so a heap leak never reaches the container's limit. The count runs a
/// little long: V8 fails once its old generation is full, and `heap_size_limit` also counts the
/// young generation's reserve. Measured in a real 512 MiB cgroup, a heap leak of ~42 MiB/min
/// reported at 80 s: 10.0 minutes to the cgroup's limit, 4.9 to V8's; V8 aborted it 4.3 minutes
/// later (0.87 of the time counted), at 240 MiB used.
pub fn ms_to_heap_limit(
    estimate: &LeakEstimate,
    heap_used: Option<f64>,
    heap_limit: Option<f64>,
) -> Option<f64> {
    let slope = estimate
        .heap_slope_bytes_per_sec
        .unwrap_or(estimate.slope_bytes_per_sec);
    ms_to_limit(heap_used?, heap_limit, slope)
}

/// The sooner of two times to a limit, either of which may be unknown.
pub fn sooner(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `msToLimit` for an estimate: from `value` (what approaches the memory limit) to `limit` at the
/// estimate's slope, or, for a heap leak (`heap_used` given, the caller knowing the episode's
/// suspect), from there to V8's `heap_limit` ([`ms_to_heap_limit`]), whichever comes first.
pub fn ms_to_any_limit(
    estimate: &LeakEstimate,
    (value, limit): (Option<f64>, Option<f64>),
    (heap_used, heap_limit): (Option<f64>, Option<f64>),
) -> Option<f64> {
    let memory = value.and_then(|v| ms_to_limit(v, limit, estimate.slope_bytes_per_sec));
    sooner(memory, ms_to_heap_limit(estimate, heap_used, heap_limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::leak::Suspect;

    const MIB: f64 = 1024.0 * 1024.0;
    const MB: f64 = 1_000_000.0;

    fn per_min(bytes: f64) -> f64 {
        bytes / 60.0
    }

    #[test]
    fn ms_to_limit_cases() {
        assert_eq!(ms_to_limit(100.0, Some(200.0), 10.0), Some(10_000.0));
        assert_eq!(ms_to_limit(400.0 * MB, Some(800.0 * MB), 2.1 * MB / 60.0), {
            Some(400.0 * MB / (2.1 * MB / 60.0) * 1000.0)
        });
        assert_eq!(ms_to_limit(100.0, None, 10.0), None);
        assert_eq!(ms_to_limit(100.0, Some(200.0), 0.0), None);
        assert_eq!(ms_to_limit(100.0, Some(200.0), -5.0), None);
        assert_eq!(ms_to_limit(100.0, Some(200.0), f64::NAN), None);
        assert_eq!(ms_to_limit(100.0, Some(200.0), f64::INFINITY), None);
        assert_eq!(ms_to_limit(f64::NAN, Some(200.0), 1.0), None);
        assert_eq!(ms_to_limit(100.0, Some(f64::INFINITY), 1.0), None);
        assert_eq!(ms_to_limit(200.0, Some(200.0), 1.0), Some(0.0));
        assert_eq!(ms_to_limit(300.0, Some(200.0), 1.0), Some(0.0));
        assert_eq!(ms_to_limit(-f64::MAX, Some(f64::MAX), f64::MIN_POSITIVE), None);
    }

    #[test]
    fn ms_to_heap_limit_cases() {
        let estimate = |suspect, slope: f64, heap: Option<f64>| LeakEstimate {
            slope_bytes_per_sec: slope,
            growth_bytes: slope * 60.0,
            window_ms: 60_000,
            confidence: 0.99,
            suspect,
            heap_slope_bytes_per_sec: heap,
        };
        let mb_s = MB;
        // Node 24 in a 512 MiB cgroup: V8's heap limit 259 MiB, 65 MiB live, 42 MiB/min.
        let heap = estimate(Suspect::Heap, 3.0 * mb_s, Some(per_min(42.0 * MIB)));
        let ms = ms_to_heap_limit(&heap, Some(65.0 * MIB), Some(259.0 * MIB)).unwrap();
        assert!((ms / 1000.0 - 194.0 / 42.0 * 60.0).abs() < 0.1, "{ms}");
        // Without the heap's own slope, the metric's.
        let no_heap_slope = estimate(Suspect::Heap, 2.0 * mb_s, None);
        assert_eq!(
            ms_to_heap_limit(&no_heap_slope, Some(100.0 * MB), Some(300.0 * MB)),
            Some(100_000.0)
        );
        // A heap that does not grow never gets there, whatever the metric does.
        for flat in [0.0, -mb_s] {
            let e = estimate(Suspect::Heap, mb_s, Some(flat));
            assert_eq!(ms_to_heap_limit(&e, Some(MB), Some(2.0 * MB)), None);
        }
        // Only with both figures.
        assert_eq!(ms_to_heap_limit(&heap, None, Some(259.0 * MIB)), None);
        assert_eq!(ms_to_heap_limit(&heap, Some(65.0 * MIB), None), None);
        assert_eq!(
            ms_to_heap_limit(&heap, Some(300.0 * MIB), Some(259.0 * MIB)),
            Some(0.0)
        );
        // The sooner of the two, either may be unknown.
        assert_eq!(sooner(Some(5.0), Some(3.0)), Some(3.0));
        assert_eq!(sooner(None, Some(3.0)), Some(3.0));
        assert_eq!(sooner(Some(5.0), None), Some(5.0));
        assert_eq!(sooner(None, None), None);
    }
}
