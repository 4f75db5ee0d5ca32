//! Which child process grows fastest, for a leak whose suspect is a child.

use std::collections::{HashMap, HashSet};

/// Which child grows fastest, for a leak whose suspect is a child: each child's RSS now against
/// what it was between half a window and a window ago (two baselines, rotated every half window,
/// so a child's start-up is soon out of the comparison).
#[derive(Debug, Clone, Default)]
pub struct ChildGrowth {
    rotated_at: u64,
    old: HashMap<u32, (u64, f64)>,
    new: HashMap<u32, (u64, f64)>,
}

impl ChildGrowth {
    /// The children's RSS at `t_ms`: (pid, rss bytes).
    pub fn observe(&mut self, t_ms: u64, window_ms: u64, children: impl Iterator<Item = (u32, f64)>) {
        let mut seen = HashSet::new();
        for (pid, rss) in children {
            seen.insert(pid);
            self.new.entry(pid).or_insert((t_ms, rss));
        }
        // Exited children leave; pids are reused.
        self.new.retain(|pid, _| seen.contains(pid));
        self.old.retain(|pid, _| seen.contains(pid));
        if t_ms.saturating_sub(self.rotated_at) >= window_ms / 2 {
            self.old = std::mem::take(&mut self.new);
            self.rotated_at = t_ms;
        }
    }

    /// The child that grew fastest up to `t_ms`, given each child's RSS now: (pid, bytes/s).
    pub fn fastest(&self, t_ms: u64, children: impl Iterator<Item = (u32, f64)>) -> Option<(u32, f64)> {
        children
            .filter_map(|(pid, rss)| {
                let &(t0, rss0) = self.old.get(&pid).or_else(|| self.new.get(&pid))?;
                let dt = t_ms.checked_sub(t0).filter(|&dt| dt > 0)? as f64 / 1000.0;
                Some((pid, (rss - rss0) / dt))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: f64 = 1_000_000.0;

    #[test]
    fn child_growth_names_the_fastest_child() {
        let mut g = ChildGrowth::default();
        for i in 0..=60u64 {
            let t = i * 1000;
            let f = i as f64;
            g.observe(
                t,
                60_000,
                [
                    (10, 5.0 * MB),
                    (11, 5.0 * MB + f * MB),
                    (12, 9.0 * MB + f * 0.1 * MB),
                ]
                .into_iter(),
            );
        }
        let now = [(10, 5.0 * MB), (11, 65.0 * MB), (12, 15.0 * MB)];
        let (pid, rate) = g.fastest(60_000, now.into_iter()).unwrap();
        assert_eq!(pid, 11);
        assert!((rate - MB).abs() < 0.1 * MB, "{rate}");
        // Exited children are forgotten.
        g.observe(61_000, 60_000, [(10, 5.0 * MB)].into_iter());
        assert_eq!(g.fastest(61_000, [(11, 70.0 * MB)].into_iter()), None);
    }
}
