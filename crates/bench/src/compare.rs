//! Side-by-side comparison of two JSON results written by `--json-out`.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

pub fn load(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a roster-bench JSON result", path.display()))
}

fn label(v: &Value) -> String {
    v.get("label")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string()
}

/// All per-operation objects of a result, in order.
fn ops(v: &Value) -> Vec<&Value> {
    v.get("scenarios")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(|sc| sc.get("ops").and_then(Value::as_array))
                .flat_map(|o| o.iter())
                .collect()
        })
        .unwrap_or_default()
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn usable(op: &Value) -> bool {
    op.get("ok").and_then(Value::as_u64).unwrap_or(0) > 0
}

fn fmt_opt(x: Option<f64>, prec: usize) -> String {
    x.map(|x| format!("{x:.prec$}"))
        .unwrap_or_else(|| "-".to_string())
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a > 0.0 => format!("{:.2}x", a / b),
        _ => "-".to_string(),
    }
}

/// Print `ours` against `theirs`: throughput ratio ours/theirs (higher is better for ours),
/// latency ratio theirs/ours (higher means ours is faster).
pub fn print(ours: &Value, theirs: &Value) {
    let (a, b) = (label(ours), label(theirs));
    println!();
    println!("comparison: {a} vs {b}  (ops/s ratio = {a}/{b}; latency ratio = {b}/{a}: above 1 means {a} is faster)");
    println!(
        "  {:<20} {:>11} {:>11} {:>8}   {:>9} {:>9} {:>7}   {:>9} {:>9} {:>7}",
        "op", "ops/s A", "ops/s B", "ratio", "p50 A", "p50 B", "ratio", "p99 A", "p99 B", "ratio"
    );
    let their_ops = ops(theirs);
    for op in ops(ours) {
        let name = op.get("op").and_then(Value::as_str).unwrap_or("?");
        let other = their_ops
            .iter()
            .find(|o| o.get("op").and_then(Value::as_str) == Some(name));
        let Some(other) = other else {
            println!("  {name:<20} (not in {b})");
            continue;
        };
        if !usable(other) {
            let status = other.get("status").and_then(Value::as_str).unwrap_or("?");
            let why = if status == "unsupported" {
                "unsupported by peer".to_string()
            } else {
                status.to_string()
            };
            println!(
                "  {:<20} {:>11} {:>11} {:>8}   ({b}: {why})",
                name,
                fmt_opt(num(op, "ops_per_sec"), 1),
                "-",
                "-"
            );
            continue;
        }
        if !usable(op) {
            let status = op.get("status").and_then(Value::as_str).unwrap_or("?");
            println!("  {name:<20} ({a}: {status})");
            continue;
        }
        let (oa, ob) = (num(op, "ops_per_sec"), num(other, "ops_per_sec"));
        let (p50a, p50b) = (num(op, "p50_ms"), num(other, "p50_ms"));
        let (p99a, p99b) = (num(op, "p99_ms"), num(other, "p99_ms"));
        println!(
            "  {:<20} {:>11} {:>11} {:>8}   {:>9} {:>9} {:>7}   {:>9} {:>9} {:>7}",
            name,
            fmt_opt(oa, 1),
            fmt_opt(ob, 1),
            ratio(oa, ob),
            fmt_opt(p50a, 3),
            fmt_opt(p50b, 3),
            ratio(p50b, p50a),
            fmt_opt(p99a, 3),
            fmt_opt(p99b, 3),
            ratio(p99b, p99a),
        );
    }
}
