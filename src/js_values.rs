//! Samples and events as JS objects, built with raw napi calls: one object and a property per
//! field, no intermediate serialization.

use std::ffi::CStr;
use std::ptr;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::sys;

use crate::cgroup::{CgroupSample, CgroupVersion};
use crate::sample::Sample;
use crate::sampler::Event;

pub struct JsSample(pub Arc<Sample>);
pub struct EventPayload(pub Event);

pub fn event_name(e: &Event) -> &'static str {
    match e {
        Event::Sample(_) => "sample",
        Event::Threshold { .. } => "threshold",
        Event::Oom { .. } => "oom",
        Event::Leak { ended: false, .. } => "leak",
        Event::Leak { ended: true, .. } => "leak-end",
        Event::Error { .. } => "error",
    }
}

struct Obj {
    env: sys::napi_env,
    raw: sys::napi_value,
}

impl Obj {
    fn new(env: sys::napi_env) -> Result<Obj> {
        let mut raw = ptr::null_mut();
        check(unsafe { sys::napi_create_object(env, &mut raw) })?;
        Ok(Obj { env, raw })
    }

    fn set_raw(&mut self, key: &CStr, value: sys::napi_value) -> Result<()> {
        check(unsafe { sys::napi_set_named_property(self.env, self.raw, key.as_ptr(), value) })
    }

    fn set<V: ToNapiValue>(&mut self, key: &CStr, value: V) -> Result<()> {
        let v = unsafe { V::to_napi_value(self.env, value) }?;
        self.set_raw(key, v)
    }

    /// `None` → `null`.
    fn num(&mut self, key: &CStr, value: Option<f64>) -> Result<()> {
        self.set(key, value)
    }

    fn bytes(&mut self, key: &CStr, value: Option<u64>) -> Result<()> {
        self.set(key, value.map(|v| v as f64))
    }
}

fn check(status: sys::napi_status) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::new(
            Status::from(status),
            "memsentry: napi call failed".to_string(),
        ))
    }
}

fn sample_to_js(env: sys::napi_env, s: &Sample) -> Result<sys::napi_value> {
    let mut o = Obj::new(env)?;
    o.num(c"time", Some(s.time))?;
    o.num(c"pid", Some(f64::from(s.pid)))?;
    o.bytes(c"rss", s.rss)?;
    o.bytes(c"vsz", s.vsz)?;
    o.bytes(c"shared", s.shared)?;
    o.bytes(c"text", s.text)?;
    o.bytes(c"data", s.data)?;
    o.bytes(c"rssAnon", s.rss_anon)?;
    o.bytes(c"rssFile", s.rss_file)?;
    o.bytes(c"rssShmem", s.rss_shmem)?;
    o.bytes(c"swap", s.swap)?;
    o.bytes(c"hwm", s.hwm)?;
    o.num(c"memPercent", s.mem_percent)?;
    o.bytes(c"threads", s.threads)?;
    o.bytes(c"minorFaults", s.minor_faults)?;
    o.bytes(c"majorFaults", s.major_faults)?;
    o.num(c"minorFaultsPerSec", s.minor_faults_per_sec)?;
    o.num(c"majorFaultsPerSec", s.major_faults_per_sec)?;
    if let Some(sm) = s.smaps {
        o.bytes(c"pss", Some(sm.pss))?;
        o.bytes(c"uss", Some(sm.uss))?;
        o.bytes(c"swapPss", Some(sm.swap_pss))?;
    }
    if let Some(h) = s.heap {
        o.num(c"heapUsed", Some(h.heap_used))?;
        o.num(c"heapTotal", Some(h.heap_total))?;
        o.num(c"external", Some(h.external))?;
        o.num(c"arrayBuffers", Some(h.array_buffers))?;
    }
    match &s.cgroup {
        Some(cg) => {
            let v = cgroup_to_js(env, cg)?;
            o.set_raw(c"cgroup", v)?;
        }
        None => o.set(c"cgroup", Null)?,
    }
    Ok(o.raw)
}

fn cgroup_to_js(env: sys::napi_env, c: &CgroupSample) -> Result<sys::napi_value> {
    let mut o = Obj::new(env)?;
    o.num(
        c"version",
        Some(match c.version {
            CgroupVersion::V1 => 1.0,
            CgroupVersion::V2 => 2.0,
        }),
    )?;
    o.bytes(c"usage", c.usage)?;
    o.bytes(c"limit", c.limit)?;
    o.bytes(c"high", c.high)?;
    o.bytes(c"workingSet", c.working_set)?;
    o.bytes(c"inactiveFile", c.inactive_file)?;
    o.bytes(c"anon", c.anon)?;
    o.bytes(c"file", c.file)?;
    o.bytes(c"oomEvents", c.oom_events)?;
    o.set(c"underOom", c.under_oom)?;
    match c.pressure {
        Some(p) => {
            let mut po = Obj::new(env)?;
            po.num(c"someAvg10", Some(p.some_avg10))?;
            po.num(c"someAvg60", Some(p.some_avg60))?;
            po.num(c"fullAvg10", p.full_avg10)?;
            o.set_raw(c"pressure", po.raw)?;
        }
        None => o.set(c"pressure", Null)?,
    }
    Ok(o.raw)
}

impl ToNapiValue for JsSample {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        sample_to_js(env, &val.0)
    }
}

impl ToNapiValue for EventPayload {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        match val.0 {
            Event::Sample(s) => sample_to_js(env, &s),
            Event::Threshold {
                name,
                metric,
                threshold,
                value,
                direction,
                sample,
            } => {
                let mut o = Obj::new(env)?;
                o.set(c"name", name)?;
                o.set(c"metric", metric)?;
                o.num(c"threshold", Some(threshold as f64))?;
                o.num(c"value", Some(value as f64))?;
                o.set(c"direction", direction.as_str())?;
                let s = sample_to_js(env, &sample)?;
                o.set_raw(c"sample", s)?;
                Ok(o.raw)
            }
            Event::Leak {
                metric,
                estimate,
                ms_to_limit,
                sample,
                ..
            } => {
                let mut o = Obj::new(env)?;
                o.set(c"metric", metric)?;
                o.num(c"slopeBytesPerSec", Some(estimate.slope_bytes_per_sec))?;
                o.num(c"growthBytes", Some(estimate.growth_bytes))?;
                o.num(c"windowMs", Some(estimate.window_ms as f64))?;
                o.num(c"confidence", Some(estimate.confidence))?;
                o.num(c"msToLimit", ms_to_limit)?;
                o.set(c"suspect", estimate.suspect.as_str())?;
                let s = sample_to_js(env, &sample)?;
                o.set_raw(c"sample", s)?;
                Ok(o.raw)
            }
            Event::Oom { sample } => {
                let mut o = Obj::new(env)?;
                let s = sample_to_js(env, &sample)?;
                if let Some(cg) = &sample.cgroup {
                    o.bytes(c"oomEvents", cg.oom_events)?;
                }
                o.set_raw(c"sample", s)?;
                Ok(o.raw)
            }
            Event::Error { code, message, path } => {
                let mut o = Obj::new(env)?;
                o.set(c"code", code)?;
                o.set(c"message", message)?;
                o.set(c"path", path)?;
                Ok(o.raw)
            }
        }
    }
}
