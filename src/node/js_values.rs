//! Samples and events as JS objects, built with raw napi calls: one object and a property per
//! field, no intermediate serialization.

use std::ffi::CStr;
use std::ptr;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::sys;

use crate::cgroup::{CgroupSample, CgroupVersion};
use crate::children::{ChildChange, ChildSample};
use crate::sample::Sample;
use crate::sampler::Event;

pub struct JsSample(pub Arc<Sample>);
pub struct EventPayload(pub Event);

pub fn event_name(e: &Event) -> &'static str {
    match e {
        Event::Sample(_) => "sample",
        Event::Threshold { .. } => "threshold",
        Event::Oom { .. } => "oom",
        Event::Child(_) => "child",
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
    if let Some(children) = &s.children {
        let mut arr = ptr::null_mut();
        check(unsafe { sys::napi_create_array_with_length(env, children.len(), &mut arr) })?;
        for (i, c) in children.iter().enumerate() {
            let v = child_to_js(env, c)?;
            check(unsafe { sys::napi_set_element(env, arr, i as u32, v) })?;
        }
        o.set_raw(c"children", arr)?;
    }
    if s.children_rss.is_some() {
        o.bytes(c"childrenRss", s.children_rss)?;
        o.bytes(c"treeRss", s.tree_rss)?;
        if s.smaps.is_some() {
            o.bytes(c"treePss", s.tree_pss)?;
        }
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

fn child_to_js(env: sys::napi_env, c: &ChildSample) -> Result<sys::napi_value> {
    let mut o = Obj::new(env)?;
    o.num(c"pid", Some(f64::from(c.pid)))?;
    o.num(c"ppid", Some(f64::from(c.ppid)))?;
    o.set(c"comm", c.comm.as_str())?;
    o.set(c"cmdline", c.cmdline.as_str())?;
    o.bytes(c"rss", c.rss)?;
    o.bytes(c"vsz", c.vsz)?;
    o.bytes(c"rssAnon", c.rss_anon)?;
    o.bytes(c"swap", c.swap)?;
    o.bytes(c"minorFaults", c.minor_faults)?;
    o.bytes(c"majorFaults", c.major_faults)?;
    if c.pss.is_some() {
        o.bytes(c"pss", c.pss)?;
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
                child,
                threshold,
                value,
                direction,
                sample,
            } => {
                let mut o = Obj::new(env)?;
                o.set(c"name", name)?;
                o.set(c"metric", metric)?;
                if let Some((pid, comm)) = child {
                    o.num(c"pid", Some(f64::from(pid)))?;
                    o.set(c"comm", comm)?;
                }
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
                child,
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
                match child {
                    Some((pid, comm, slope)) => {
                        let mut c = Obj::new(env)?;
                        c.set(c"pid", pid)?;
                        c.set(c"comm", comm)?;
                        c.num(c"slopeBytesPerSec", Some(slope))?;
                        o.set_raw(c"child", c.raw)?;
                    }
                    None => o.set(c"child", Null)?,
                }
                let s = sample_to_js(env, &sample)?;
                o.set_raw(c"sample", s)?;
                Ok(o.raw)
            }
            Event::Child(change) => {
                let mut o = Obj::new(env)?;
                match change {
                    ChildChange::Spawn { pid, ppid, comm } => {
                        o.set(c"type", "spawn")?;
                        o.num(c"pid", Some(f64::from(pid)))?;
                        o.num(c"ppid", Some(f64::from(ppid)))?;
                        o.set(c"comm", comm)?;
                    }
                    ChildChange::Exit {
                        pid,
                        ppid,
                        comm,
                        last_rss,
                        seen_ms,
                    } => {
                        o.set(c"type", "exit")?;
                        o.num(c"pid", Some(f64::from(pid)))?;
                        o.num(c"ppid", Some(f64::from(ppid)))?;
                        o.set(c"comm", comm)?;
                        o.bytes(c"rss", last_rss)?;
                        o.num(c"seenMs", Some(seen_ms as f64))?;
                    }
                }
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
