//! Threshold rules with hysteresis: `'up'` once when the value rises above `above`, then
//! re-armed and `'down'` once it falls below `above - hysteresis`. The gap keeps a value that
//! hovers at the line from firing on every tick.

use crate::sample::{Metric, Sample};

#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdRule {
    pub name: String,
    pub metric: Metric,
    /// Bytes.
    pub above: u64,
    /// Bytes; `down` fires below `above - hysteresis`.
    pub hysteresis: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Crossing {
    /// Index of the rule in the detector.
    pub rule: usize,
    pub value: u64,
    pub direction: Direction,
}

#[derive(Debug)]
pub struct ThresholdDetector {
    rules: Vec<ThresholdRule>,
    /// Per rule: true while the value is above (an `up` fired and no `down` yet).
    above: Vec<bool>,
}

impl ThresholdDetector {
    pub fn new(rules: Vec<ThresholdRule>) -> Self {
        let above = vec![false; rules.len()];
        ThresholdDetector { rules, above }
    }

    pub fn rules(&self) -> &[ThresholdRule] {
        &self.rules
    }

    /// Whether each rule is currently past its line (for a Prometheus state gauge).
    pub fn states(&self) -> &[bool] {
        &self.above
    }

    /// Checks every rule against `sample`; a metric that is `None` this tick changes nothing.
    pub fn observe(&mut self, sample: &Sample, out: &mut Vec<Crossing>) {
        for (i, rule) in self.rules.iter().enumerate() {
            let Some(value) = sample.metric(rule.metric) else {
                continue;
            };
            let was_above = self.above[i];
            if !was_above && value > rule.above {
                self.above[i] = true;
                out.push(Crossing {
                    rule: i,
                    value,
                    direction: Direction::Up,
                });
            } else if was_above && value < rule.above.saturating_sub(rule.hysteresis) {
                self.above[i] = false;
                out.push(Crossing {
                    rule: i,
                    value,
                    direction: Direction::Down,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn rss(v: u64) -> Sample {
        Sample {
            rss: Some(v),
            ..Sample::default()
        }
    }

    fn run(det: &mut ThresholdDetector, values: &[Option<u64>]) -> Vec<(usize, Direction)> {
        let mut out = Vec::new();
        let mut events = Vec::new();
        for (tick, v) in values.iter().enumerate() {
            out.clear();
            det.observe(
                &Sample {
                    rss: *v,
                    ..Sample::default()
                },
                &mut out,
            );
            events.extend(out.iter().map(|c| (tick, c.direction)));
        }
        events
    }

    fn rule(above: u64, hysteresis: u64) -> ThresholdRule {
        ThresholdRule {
            name: "warn".into(),
            metric: Metric::Rss,
            above,
            hysteresis,
        }
    }

    #[test]
    fn fires_up_once_and_down_once_below_the_hysteresis_band() {
        let mut det = ThresholdDetector::new(vec![rule(100 * MIB, 10 * MIB)]);
        let v = |m: u64| Some(m * MIB);
        let events = run(
            &mut det,
            &[v(90), v(101), v(120), v(95), v(91), v(89), v(80), v(101)],
        );
        assert_eq!(
            events,
            vec![(1, Direction::Up), (5, Direction::Down), (7, Direction::Up)]
        );
    }

    #[test]
    fn hovering_at_the_line_fires_once() {
        let mut det = ThresholdDetector::new(vec![rule(100 * MIB, 5 * MIB)]);
        let values: Vec<_> = (0..50).map(|i| Some((99 + (i % 3)) * MIB)).collect();
        assert_eq!(run(&mut det, &values).len(), 1);
    }

    #[test]
    fn a_failed_read_neither_fires_nor_rearms() {
        let mut det = ThresholdDetector::new(vec![rule(100 * MIB, 0)]);
        let events = run(&mut det, &[Some(101 * MIB), None, Some(101 * MIB), None]);
        assert_eq!(events, vec![(0, Direction::Up)]);
        assert_eq!(det.states(), &[true]);
    }

    #[test]
    fn rules_are_independent() {
        let mut det = ThresholdDetector::new(vec![rule(100 * MIB, 0), rule(200 * MIB, 0)]);
        let mut out = Vec::new();
        det.observe(&rss(150 * MIB), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rule, 0);
        out.clear();
        det.observe(&rss(250 * MIB), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rule, 1);
    }
}
