//! Per-operation counters and latency histograms.

use std::time::Duration;

use anyhow::{anyhow, Result};
use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// How many failure messages are kept per operation, to show what went wrong.
const MAX_SAMPLES: usize = 5;

/// Counters of one operation kind, for one worker or merged over all of them.
#[derive(Clone)]
pub struct OpStats {
    /// Latencies of the verified responses, in microseconds.
    pub hist: Histogram<u64>,
    pub ok: u64,
    pub errors: u64,
    pub samples: Vec<String>,
}

impl OpStats {
    pub fn new() -> Result<Self> {
        // 1 µs .. 120 s, 3 significant digits.
        let hist = Histogram::new_with_bounds(1, 120_000_000, 3)
            .map_err(|e| anyhow!("cannot create histogram: {e:?}"))?;
        Ok(Self {
            hist,
            ok: 0,
            errors: 0,
            samples: Vec::new(),
        })
    }

    pub fn success(&mut self, latency: Duration) {
        self.ok += 1;
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.hist.saturating_record(micros);
    }

    pub fn failure(&mut self, message: String) {
        self.errors += 1;
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(message);
        }
    }

    pub fn merge(&mut self, other: &OpStats) -> Result<()> {
        self.hist
            .add(&other.hist)
            .map_err(|e| anyhow!("cannot merge histograms: {e:?}"))?;
        self.ok += other.ok;
        self.errors += other.errors;
        for s in &other.samples {
            if self.samples.len() < MAX_SAMPLES {
                self.samples.push(s.clone());
            }
        }
        Ok(())
    }

    fn ms(micros: u64) -> f64 {
        micros as f64 / 1000.0
    }

    pub fn p50_ms(&self) -> f64 {
        Self::ms(self.hist.value_at_quantile(0.50))
    }

    pub fn p99_ms(&self) -> f64 {
        Self::ms(self.hist.value_at_quantile(0.99))
    }

    pub fn max_ms(&self) -> f64 {
        Self::ms(self.hist.max())
    }

    pub fn mean_ms(&self) -> f64 {
        self.hist.mean() / 1000.0
    }
}

/// Verdict on one operation kind after a scenario.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// Every response verified.
    Ok,
    /// Some responses failed verification.
    Errors,
    /// No response verified (and `--peer` was given): the server does not support it.
    Unsupported,
    /// Never attempted (a prerequisite was missing).
    NotRun,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Errors => "errors",
            Verdict::Unsupported => "unsupported",
            Verdict::NotRun => "not_run",
        }
    }

    pub fn of(stats: &OpStats, peer_mode: bool) -> Self {
        match (stats.ok, stats.errors) {
            (0, 0) => Verdict::NotRun,
            (0, _) if peer_mode => Verdict::Unsupported,
            (_, 0) => Verdict::Ok,
            _ => Verdict::Errors,
        }
    }

    /// Whether this verdict makes the run fail.
    pub fn fails(self) -> bool {
        self == Verdict::Errors
    }
}

/// Result of one operation kind within one scenario.
pub struct OpResult {
    pub op: &'static str,
    pub stats: OpStats,
    pub elapsed: Duration,
    pub verdict: Verdict,
    pub note: Option<String>,
}

impl OpResult {
    pub fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.stats.ok as f64 / secs
        } else {
            0.0
        }
    }

    pub fn to_json(&self) -> Value {
        let has_samples = self.stats.ok > 0;
        json!({
            "op": self.op,
            "status": self.verdict.as_str(),
            "ok": self.stats.ok,
            "errors": self.stats.errors,
            "elapsed_secs": round3(self.elapsed.as_secs_f64()),
            "ops_per_sec": round3(self.ops_per_sec()),
            "p50_ms": if has_samples { json!(round3(self.stats.p50_ms())) } else { Value::Null },
            "p99_ms": if has_samples { json!(round3(self.stats.p99_ms())) } else { Value::Null },
            "max_ms": if has_samples { json!(round3(self.stats.max_ms())) } else { Value::Null },
            "mean_ms": if has_samples { json!(round3(self.stats.mean_ms())) } else { Value::Null },
            "error_samples": self.stats.samples,
            "note": self.note,
        })
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Header of the per-operation table.
pub fn table_header() -> String {
    format!(
        "  {:<20} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9}  {}",
        "op", "ok", "errors", "ops/s", "p50 ms", "p99 ms", "max ms", "status"
    )
}

pub fn table_row(r: &OpResult) -> String {
    let status = match r.verdict {
        Verdict::Unsupported => "UNSUPPORTED by peer".to_string(),
        Verdict::NotRun => format!(
            "not run{}",
            r.note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ),
        Verdict::Errors => "FAILED VERIFICATION".to_string(),
        Verdict::Ok => "ok".to_string(),
    };
    if r.stats.ok == 0 {
        return format!(
            "  {:<20} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9}  {}",
            r.op, 0, r.stats.errors, "-", "-", "-", "-", status
        );
    }
    format!(
        "  {:<20} {:>9} {:>7} {:>10.1} {:>9.3} {:>9.3} {:>9.3}  {}",
        r.op,
        r.stats.ok,
        r.stats.errors,
        r.ops_per_sec(),
        r.stats.p50_ms(),
        r.stats.p99_ms(),
        r.stats.max_ms(),
        status
    )
}
