//! The bounded history: a ring buffer of the newest `capacity` samples, oldest first.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::sample::Sample;

#[derive(Debug)]
pub struct History {
    samples: VecDeque<Arc<Sample>>,
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

    pub fn push(&mut self, sample: Arc<Sample>) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn latest(&self) -> Option<&Arc<Sample>> {
        self.samples.back()
    }

    /// Samples whose wall-clock `time` is at or after `since_ms` (epoch ms), oldest first.
    pub fn since(&self, since_ms: f64) -> Vec<Arc<Sample>> {
        // Times are non-decreasing in practice, but a wall-clock step back must not hide
        // samples, so filter rather than binary-search.
        self.samples
            .iter()
            .filter(|s| s.time >= since_ms)
            .cloned()
            .collect()
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
            h.push(at(t as f64));
        }
        let times: Vec<f64> = h.since(0.0).iter().map(|s| s.time).collect();
        assert_eq!(times, vec![3.0, 4.0, 5.0]);
        assert_eq!(h.latest().unwrap().time, 5.0);
    }

    #[test]
    fn since_filters_by_time() {
        let mut h = History::new(10);
        for t in 1..=5 {
            h.push(at(t as f64 * 1000.0));
        }
        assert_eq!(h.since(3000.0).len(), 3);
        assert_eq!(h.since(9000.0).len(), 0);
    }

    #[test]
    fn capacity_one_and_zero_hold_one() {
        let mut h = History::new(0);
        h.push(at(1.0));
        h.push(at(2.0));
        assert_eq!(h.len(), 1);
    }
}
