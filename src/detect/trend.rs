//! Trend statistics for short, noisy series: the Theil–Sen slope, the Mann–Kendall trend test
//! with its normal-approximation p-value, medians, and lower-envelope helpers.
//!
//! Everything here is pure, allocation-light and total: any input (empty, NaN, infinite, huge)
//! gives `None` or a finite number, never a panic. The series the leak detector feeds in are
//! short (at most a few dozen points), so the O(n²) pairwise methods are cheap.
//!
//! References: Sen (1968) and Theil (1950) for the slope; Mann (1945) and Kendall (1975) for the
//! test, with the tie-corrected variance and continuity correction as given by Gilbert (1987),
//! "Statistical Methods for Environmental Pollution Monitoring", ch. 16.

use std::cmp::Ordering;

/// The median of `values` (the mean of the two middle values for an even count).
///
/// Reorders `values`. `None` if empty or if any value is NaN. The mean of the two middle values is
/// computed as `a / 2 + b / 2`, so it cannot overflow.
pub fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mid = n / 2;
    let (below, upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        return Some(upper);
    }
    let lower = below.iter().copied().max_by(f64::total_cmp)?;
    Some(lower / 2.0 + upper / 2.0)
}

/// The Theil–Sen slope of `points` (x, y): the median of the slopes of all pairs with distinct x.
///
/// Robust to outliers (breakdown point about 29%). Points need not be sorted. `None` if fewer than
/// two distinct x values, if any coordinate is not finite, or if the median is not finite (values
/// so large that the slopes overflow).
pub fn theil_sen(points: &[(f64, f64)]) -> Option<f64> {
    theil_sen_with(points, &mut Vec::new())
}

/// [`theil_sen`] with a caller-owned scratch buffer for the n(n-1)/2 pairwise slopes, so that a
/// caller evaluating many times does not allocate each time.
pub fn theil_sen_with(points: &[(f64, f64)], slopes: &mut Vec<f64>) -> Option<f64> {
    if points.iter().any(|&(x, y)| !x.is_finite() || !y.is_finite()) {
        return None;
    }
    slopes.clear();
    for (i, &(xi, yi)) in points.iter().enumerate() {
        for &(xj, yj) in &points[i + 1..] {
            let dx = xj - xi;
            if dx == 0.0 || !dx.is_finite() {
                continue;
            }
            let s = (yj - yi) / dx;
            if !s.is_nan() {
                slopes.push(s);
            }
        }
    }
    median(slopes).filter(|m| m.is_finite())
}

/// The result of a Mann–Kendall trend test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannKendall {
    /// S = Σ_{i<j} sign(x_j − x_i): positive for an upward trend, at most n(n−1)/2.
    pub s: i64,
    /// The normal score of S, with the tie-corrected variance and a continuity correction of 1.
    pub z: f64,
    /// One-sided p-value against "no trend" for the alternative "increasing": P(Z ≥ z).
    pub p_increasing: f64,
}

impl MannKendall {
    /// 1 − p for an increasing trend, clamped to 0..=1.
    pub fn confidence_increasing(&self) -> f64 {
        let c = 1.0 - self.p_increasing;
        if c.is_nan() {
            0.0
        } else {
            c.clamp(0.0, 1.0)
        }
    }
}

/// The Mann–Kendall test on `values` taken in time order.
///
/// Uses the normal approximation with the tie correction
/// `Var(S) = [n(n−1)(2n+5) − Σ t(t−1)(2t+5)] / 18` (t = size of each group of equal values) and a
/// continuity correction `z = (S − sign S) / √Var(S)`. The approximation is usable from n ≈ 8
/// (Gilbert 1987 tabulates exact values below 10; the error at n = 8..10 is a few thousandths of p).
/// `None` if fewer than 3 values or any value is not finite.
pub fn mann_kendall(values: &[f64]) -> Option<MannKendall> {
    let n = values.len();
    if n < 3 || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut s: i64 = 0;
    for (i, &a) in values.iter().enumerate() {
        for &b in &values[i + 1..] {
            s += match b.partial_cmp(&a) {
                Some(Ordering::Greater) => 1,
                Some(Ordering::Less) => -1,
                _ => 0,
            };
        }
    }
    let var = kendall_variance(values);
    let z = if var <= 0.0 || s == 0 {
        // All values equal (var = 0) or no net direction.
        0.0
    } else {
        (s - s.signum()) as f64 / var.sqrt()
    };
    Some(MannKendall {
        s,
        z,
        p_increasing: 1.0 - normal_cdf(z),
    })
}

/// Var(S) of the Mann–Kendall statistic under "no trend", tie-corrected:
/// `[n(n−1)(2n+5) − Σ t(t−1)(2t+5)] / 18`, t = size of each group of equal values.
fn kendall_variance(values: &[f64]) -> f64 {
    let n = values.len();
    let nf = n as f64;
    let mut var = nf * (nf - 1.0) * (2.0 * nf + 5.0);
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && sorted[j] == sorted[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        var -= t * (t - 1.0) * (2.0 * t + 5.0);
        i = j;
    }
    var / 18.0
}

/// Confidence bounds of the Theil–Sen slope (Sen 1968; Gilbert 1987 §16.5): with N ordered
/// pairwise slopes and `C = z·√Var(S)`, the lower bound is the `(N − C)/2`-th smallest slope and
/// the upper bound the `(N + C)/2 + 1`-th. `z` = 1.645 gives one-sided 95% bounds, 1.96 a
/// two-sided 95% interval. Returns `(lower, upper)`; `None` if the series is too short for that
/// confidence (fewer than about 8 points at z = 1.645), `z` is not a positive number, or a
/// coordinate is not finite.
pub fn theil_sen_bounds(points: &[(f64, f64)], z: f64, slopes: &mut Vec<f64>) -> Option<(f64, f64)> {
    if z.is_nan() || z <= 0.0 || points.iter().any(|&(x, y)| !x.is_finite() || !y.is_finite()) {
        return None;
    }
    slopes.clear();
    for (i, &(xi, yi)) in points.iter().enumerate() {
        for &(xj, yj) in &points[i + 1..] {
            let dx = xj - xi;
            if dx != 0.0 && dx.is_finite() {
                let s = (yj - yi) / dx;
                if !s.is_nan() {
                    slopes.push(s);
                }
            }
        }
    }
    let n = slopes.len() as f64;
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    let c = z * kendall_variance(&values).max(0.0).sqrt();
    let m1 = ((n - c) / 2.0).round();
    let m2 = ((n + c) / 2.0).round();
    if !m1.is_finite() || m1 < 1.0 || !m2.is_finite() || m2 >= n {
        return None;
    }
    slopes.sort_unstable_by(f64::total_cmp);
    let lower = slopes[m1 as usize - 1];
    let upper = slopes[m2 as usize];
    (lower.is_finite() && upper.is_finite()).then_some((lower, upper))
}

/// The standard normal cumulative distribution function Φ(z), accurate to about 1e-7.
/// NaN gives NaN; ±∞ give 1 and 0.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// The complementary error function (Numerical Recipes' `erfcc`, fractional error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// The lower envelope of a series split into sub-windows: for each run of consecutive points that
/// share a key (a sub-window id), the point with the smallest value, as `(key, t, value)`.
///
/// Points are `(key, t, value)` in time order; the key is typically `floor(t / sub_window)` or a
/// bucket id. Points whose value is not finite are skipped. On a garbage-collected heap the minimum
/// of each sub-window longer than a GC cycle is a post-GC floor, which is what a leak moves.
pub fn lower_envelope<K, I>(points: I) -> Vec<(K, f64, f64)>
where
    K: PartialEq + Copy,
    I: IntoIterator<Item = (K, f64, f64)>,
{
    let mut out: Vec<(K, f64, f64)> = Vec::new();
    for (k, t, v) in points {
        if !v.is_finite() {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.0 == k => {
                if v < last.2 {
                    *last = (k, t, v);
                }
            }
            _ => out.push((k, t, v)),
        }
    }
    out
}

/// Sum of absolute deviations of `points` (x, y) from the line of slope `slope` through them
/// (intercept = median of y − slope·x): how well a straight trend explains the points.
/// `None` if empty or not finite.
pub fn line_l1_cost(points: &[(f64, f64)], slope: f64) -> Option<f64> {
    let mut residuals: Vec<f64> = points.iter().map(|&(x, y)| y - slope * x).collect();
    let intercept = median(&mut residuals)?;
    let cost: f64 = residuals.iter().map(|r| (r - intercept).abs()).sum();
    cost.is_finite().then_some(cost)
}

/// The best "growth, then a plateau" fit of `points` (x, y) in time order: a continuous hinge
/// `y = a + b·min(x, x_k)` whose knot `x_k` is one of the points, leaving at least `min_tail`
/// points on the flat part. `b` is the Theil–Sen slope on the regressor `min(x, x_k)`, `a` the
/// median intercept. Returns `(k, cost)` with the smallest sum of absolute deviations.
///
/// Compared with [`line_l1_cost`] it tells growth that stopped (a warm-up ramp, a cache that
/// filled) from a steady trend, on which the flat part misfits by the growth it should show.
/// `None` if there are fewer than `min_tail + 2` points or a coordinate is not finite. O(n³).
pub fn hinge_l1_cost(points: &[(f64, f64)], min_tail: usize) -> Option<(usize, f64)> {
    let n = points.len();
    if n < min_tail.saturating_add(2) || points.iter().any(|&(x, y)| !x.is_finite() || !y.is_finite()) {
        return None;
    }
    let mut scratch = Vec::new();
    let mut bent = Vec::with_capacity(n);
    let mut best: Option<(usize, f64)> = None;
    // Knot at point k: points k+1.. form the flat tail.
    for k in 1..n.saturating_sub(min_tail) {
        let knot = points[k].0;
        bent.clear();
        bent.extend(points.iter().map(|&(x, y)| (x.min(knot), y)));
        let slope = theil_sen_with(&bent, &mut scratch).unwrap_or(0.0);
        let Some(cost) = line_l1_cost(&bent, slope) else {
            continue;
        };
        if best.is_none_or(|(_, c)| cost < c) {
            best = Some((k, cost));
        }
    }
    best
}

/// The best single-step fit of `values` (in time order): over every split into a non-empty head
/// and tail, the smallest sum of absolute deviations of each part from its own median. Returns
/// `(split, cost)`, `split` being the index of the first value after the step.
///
/// Complements [`hinge_l1_cost`]: a step up (memory jumps once and stays) is a level shift that
/// no continuous hinge fits. `None` if fewer
/// than two values or any value is not finite. O(n² log n).
pub fn step_l1_cost(values: &[f64]) -> Option<(usize, f64)> {
    if values.len() < 2 || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let flat_cost = |part: &[f64]| -> Option<f64> {
        let mut sorted = part.to_vec();
        let m = median(&mut sorted)?;
        Some(part.iter().map(|v| (v - m).abs()).sum())
    };
    let mut best: Option<(usize, f64)> = None;
    for split in 1..values.len() {
        let cost = flat_cost(&values[..split])? + flat_cost(&values[split..])?;
        if cost.is_finite() && best.is_none_or(|(_, c)| cost < c) {
            best = Some((split, cost));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    #[test]
    fn median_odd_even_and_bad_input() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [1.0, f64::NAN]), None);
        assert_eq!(median(&mut [f64::MAX, f64::MAX]), Some(f64::MAX));
    }

    #[test]
    fn theil_sen_exact_lines() {
        let line: Vec<(f64, f64)> = (0..20).map(|i| (i as f64, 3.5 * i as f64 - 7.0)).collect();
        assert!(close(theil_sen(&line).unwrap(), 3.5, 1e-12));
        let falling: Vec<(f64, f64)> = (0..7)
            .map(|i| (i as f64 * 10.0, 1e9 - 2e6 * i as f64 * 10.0))
            .collect();
        assert!(close(theil_sen(&falling).unwrap(), -2e6, 1e-12));
        let flat: Vec<(f64, f64)> = (0..5).map(|i| (i as f64, 42.0)).collect();
        assert_eq!(theil_sen(&flat), Some(0.0));
        // Unsorted input gives the same slope.
        let mut shuffled = line.clone();
        shuffled.reverse();
        shuffled.swap(3, 11);
        assert!(close(theil_sen(&shuffled).unwrap(), 3.5, 1e-12));
    }

    #[test]
    fn theil_sen_ignores_outliers() {
        let mut pts: Vec<(f64, f64)> = (0..30).map(|i| (i as f64, 2.0 * i as f64)).collect();
        for i in [3, 9, 17, 25] {
            pts[i].1 += 1e6;
        }
        assert!(close(theil_sen(&pts).unwrap(), 2.0, 1e-9));
    }

    #[test]
    fn theil_sen_bad_input_is_none() {
        assert_eq!(theil_sen(&[]), None);
        assert_eq!(theil_sen(&[(1.0, 1.0)]), None);
        assert_eq!(theil_sen(&[(1.0, 1.0), (1.0, 5.0)]), None);
        assert_eq!(theil_sen(&[(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0)]), None);
        assert_eq!(theil_sen(&[(0.0, 1.0), (f64::INFINITY, 2.0)]), None);
        // Slopes that overflow to infinity do not panic; a non-finite median is None.
        assert_eq!(theil_sen(&[(0.0, -f64::MAX), (1e-300, f64::MAX)]), None);
        let huge = [(0.0, 1e300), (1.0, 2e300), (2.0, 3e300)];
        assert!(close(theil_sen(&huge).unwrap(), 1e300, 1e-12));
    }

    #[test]
    fn theil_sen_bounds_bracket_the_slope() {
        let mut scratch = Vec::new();
        // A line with alternating noise: the bounds bracket the true slope 2.
        let pts: Vec<(f64, f64)> = (0..20)
            .map(|i| (i as f64, 2.0 * i as f64 + ((i * 7) % 5) as f64 * 1.5 - 3.0))
            .collect();
        let (lo, hi) = theil_sen_bounds(&pts, 1.96, &mut scratch).unwrap();
        let slope = theil_sen(&pts).unwrap();
        assert!(
            lo < 2.0 && 2.0 < hi && lo <= slope && slope <= hi,
            "{lo} {slope} {hi}"
        );
        let (lo90, hi90) = theil_sen_bounds(&pts, 1.645, &mut scratch).unwrap();
        assert!(lo <= lo90 && hi90 <= hi);
        // An exact line: the interval collapses.
        let line: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 7.0 * i as f64)).collect();
        assert_eq!(theil_sen_bounds(&line, 1.645, &mut scratch), Some((7.0, 7.0)));
        // Too short for the confidence, bad z, bad input.
        assert_eq!(theil_sen_bounds(&line[..3], 1.96, &mut scratch), None);
        assert_eq!(theil_sen_bounds(&line, f64::NAN, &mut scratch), None);
        assert_eq!(theil_sen_bounds(&line, -1.0, &mut scratch), None);
        assert_eq!(theil_sen_bounds(&[], 1.0, &mut scratch), None);
        assert_eq!(
            theil_sen_bounds(&[(0.0, f64::NAN), (1.0, 1.0)], 1.0, &mut scratch),
            None
        );
    }

    #[test]
    fn mann_kendall_monotone_vs_shuffled() {
        let up: Vec<f64> = (0..10).map(|i| i as f64).collect();
        let mk = mann_kendall(&up).unwrap();
        assert_eq!(mk.s, 45);
        // Var = 10*9*25/18 = 125, z = 44/sqrt(125) = 3.9355, p ≈ 4.15e-5.
        assert!(close(mk.z, 44.0 / 125f64.sqrt(), 1e-12));
        assert!(mk.p_increasing < 1e-4 && mk.p_increasing > 3e-5);
        assert!(mk.confidence_increasing() > 0.9999);

        let down: Vec<f64> = up.iter().rev().copied().collect();
        let mk = mann_kendall(&down).unwrap();
        assert_eq!(mk.s, -45);
        assert!(mk.p_increasing > 0.9999);
        assert!(mk.confidence_increasing() < 1e-4);

        // A fixed shuffle of 0..10 with no trend.
        let shuffled = [5.0, 2.0, 8.0, 0.0, 9.0, 3.0, 6.0, 1.0, 7.0, 4.0];
        let mk = mann_kendall(&shuffled).unwrap();
        assert!(mk.s.abs() <= 9, "s = {}", mk.s);
        assert!(mk.p_increasing > 0.2 && mk.p_increasing < 0.8);
    }

    #[test]
    fn mann_kendall_ties_and_bad_input() {
        let flat = [7.0; 12];
        let mk = mann_kendall(&flat).unwrap();
        assert_eq!(mk.s, 0);
        assert_eq!(mk.z, 0.0);
        assert!(close(mk.p_increasing, 0.5, 1e-6));
        // Ties reduce the variance: [1,1,2,2,3,3]: S = 12, Var = (6*5*17 - 3*2*1*9)/18 = 25.33.
        let mk = mann_kendall(&[1.0, 1.0, 2.0, 2.0, 3.0, 3.0]).unwrap();
        assert_eq!(mk.s, 12);
        assert!(close(mk.z, 11.0 / (456.0f64 / 18.0).sqrt(), 1e-12));
        assert_eq!(mann_kendall(&[]), None);
        assert_eq!(mann_kendall(&[1.0, 2.0]), None);
        assert_eq!(mann_kendall(&[1.0, f64::NAN, 2.0, 3.0]), None);
        assert_eq!(mann_kendall(&[1.0, f64::INFINITY, 2.0, 3.0]), None);
        let mk = mann_kendall(&[-f64::MAX, 0.0, f64::MAX]).unwrap();
        assert_eq!(mk.s, 3);
    }

    #[test]
    fn normal_cdf_values() {
        assert!(close(normal_cdf(0.0), 0.5, 1e-7));
        assert!(close(normal_cdf(1.644_853_6), 0.95, 1e-6));
        assert!(close(normal_cdf(-1.959_964), 0.025, 1e-5));
        assert!(close(normal_cdf(3.0), 0.998_650_1, 1e-6));
        assert_eq!(normal_cdf(f64::INFINITY), 1.0);
        assert_eq!(normal_cdf(f64::NEG_INFINITY), 0.0);
        assert!(normal_cdf(f64::NAN).is_nan());
    }

    #[test]
    fn lower_envelope_keeps_sub_window_minima() {
        // A sawtooth of period 4 on a rising line, sub-windows of 4 samples: the floors.
        let pts = (0..16).map(|i| {
            let t = i as f64;
            (i / 4, t, 10.0 * t + [0.0, 30.0, 60.0, 90.0][(i % 4) as usize])
        });
        let env = lower_envelope(pts);
        let got: Vec<(f64, f64)> = env.iter().map(|&(_, t, v)| (t, v)).collect();
        assert_eq!(got, vec![(0.0, 0.0), (4.0, 40.0), (8.0, 80.0), (12.0, 120.0)]);
        assert_eq!(theil_sen(&got), Some(10.0));
        let with_nan = lower_envelope([(0u8, 0.0, f64::NAN), (0, 1.0, 5.0), (1, 2.0, f64::INFINITY)]);
        assert_eq!(with_nan, vec![(0, 1.0, 5.0)]);
        assert!(lower_envelope(std::iter::empty::<(u8, f64, f64)>()).is_empty());
    }

    #[test]
    fn line_hinge_and_step_costs() {
        let line: Vec<(f64, f64)> = (0..12).map(|i| (i as f64, 5.0 * i as f64 + 1.0)).collect();
        assert_eq!(line_l1_cost(&line, 5.0), Some(0.0));
        let (_, hinge) = hinge_l1_cost(&line, 4).unwrap();
        assert!(hinge >= 20.0, "{hinge}");

        // A ramp that levels off at x = 3: a perfect hinge, a poor line.
        let ramp: Vec<(f64, f64)> = (0..12).map(|i| (i as f64, 10.0 * (i.min(3) as f64))).collect();
        assert_eq!(hinge_l1_cost(&ramp, 4), Some((3, 0.0)));
        let slope = theil_sen(&ramp).unwrap();
        assert!(line_l1_cost(&ramp, slope).unwrap() > 20.0);

        // A step up after index 5: a perfect two-level fit, a poor line.
        let step: Vec<(f64, f64)> = (0..12)
            .map(|i| (i as f64, if i < 5 { 100.0 } else { 180.0 }))
            .collect();
        let slope = theil_sen(&step).unwrap();
        assert!(slope > 0.0);
        assert!(line_l1_cost(&step, slope).unwrap() > 100.0);
        let values: Vec<f64> = step.iter().map(|p| p.1).collect();
        assert_eq!(step_l1_cost(&values), Some((5, 0.0)));
        let values: Vec<f64> = line.iter().map(|p| p.1).collect();
        assert!(step_l1_cost(&values).unwrap().1 >= 60.0);
        assert_eq!(step_l1_cost(&[1.0]), None);
        assert_eq!(step_l1_cost(&[1.0, f64::NAN]), None);
        assert_eq!(step_l1_cost(&[-f64::MAX, f64::MAX, -f64::MAX]), None);

        assert_eq!(line_l1_cost(&[], 1.0), None);
        assert_eq!(line_l1_cost(&[(0.0, f64::NAN)], 1.0), None);
        assert_eq!(hinge_l1_cost(&line[..5], 4), None);
        assert_eq!(
            hinge_l1_cost(&[(0.0, 1.0), (1.0, f64::INFINITY), (2.0, 1.0)], 1),
            None
        );
        assert_eq!(
            hinge_l1_cost(&[(0.0, -f64::MAX), (1.0, f64::MAX), (2.0, -f64::MAX)], 1),
            None
        );
    }
}
