//! The napi layer (the `node` feature): `binding` is the JS-facing class and its options,
//! `js_values` turns samples and events into JS objects.

pub mod binding;
pub mod js_values;
