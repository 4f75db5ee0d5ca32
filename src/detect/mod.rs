//! Detectors fed one sample at a time on the sampler thread: threshold rules with hysteresis,
//! the leak episode, and the robust trend line the leak detector fits.

pub mod leak;
pub mod replay;
pub mod thresholds;
pub mod trend;
