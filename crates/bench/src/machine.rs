//! What the benchmark ran on, and process memory from /proc.

use std::path::Path;

use serde_json::{json, Value};

pub fn nproc() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// Total RAM in KiB, from /proc/meminfo.
pub fn mem_total_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    kib_field(&s, "MemTotal:")
}

fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// (VmRSS, VmHWM) of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let s =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status")).ok()?;
    Some((
        kib_field(&s, "VmRSS:")?,
        kib_field(&s, "VmHWM:").unwrap_or(0),
    ))
}

/// The 1-minute load average, to tell whether something else was using the CPUs.
pub fn loadavg1() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub fn describe() -> Value {
    json!({
        "loadavg_1m_at_end": loadavg1(),
        "nproc": nproc(),
        "cpu_model": cpu_model(),
        "mem_total_kib": mem_total_kib(),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    })
}

pub fn describe_line() -> String {
    let mem = mem_total_kib()
        .map(|k| format!("{:.1} GiB", k as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    let load = loadavg1()
        .map(|l| format!(", load average {l:.2}"))
        .unwrap_or_default();
    format!(
        "machine: {} x {} ({}), RAM {}{load}",
        nproc(),
        cpu_model(),
        std::env::consts::ARCH,
        mem
    )
}
