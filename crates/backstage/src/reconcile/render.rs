//! The report for people (an aligned table), for programs (JSON) and for
//! spreadsheets (CSV, one row per finding).

use std::fmt::Write as _;
use std::io;

use super::{FindingKind, Report};

/// An aligned table: one line per finding, its evidence and instructions
/// indented beneath, and the counts at the end.
pub fn render_table(report: &Report) -> String {
    let mut out = String::new();
    if report.findings.is_empty() {
        out.push_str("No findings: the catalog agrees with the directory.\n");
    } else {
        let rows: Vec<[String; 4]> = report
            .findings
            .iter()
            .map(|finding| {
                [
                    finding.kind.to_string(),
                    finding.subject.to_string(),
                    finding.fix.action.to_string(),
                    if finding.fix.applicable { "yes" } else { "no" }.to_owned(),
                ]
            })
            .collect();
        let header = ["KIND", "SUBJECT", "FIX", "APPLY"];
        let mut widths = header.map(|title| title.chars().count());
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |out: &mut String, cells: [&str; 4]| {
            let mut text = String::new();
            for (n, (cell, width)) in cells.iter().zip(widths).enumerate() {
                if n + 1 == cells.len() {
                    text.push_str(cell);
                } else {
                    let _ = write!(text, "{cell:<width$}  ");
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&mut out, header);
        let indent = " ".repeat(widths[0] + 2);
        for (finding, row) in report.findings.iter().zip(&rows) {
            line(&mut out, [&row[0], &row[1], &row[2], &row[3]]);
            for fact in &finding.evidence {
                let _ = writeln!(out, "{indent}- {fact}");
            }
            if let Some(instructions) = &finding.fix.instructions {
                let _ = writeln!(out, "{indent}> {instructions}");
            }
        }
        out.push('\n');
    }
    let summary = &report.summary;
    let _ = writeln!(
        out,
        "Directory: {} users, {} groups. Catalog: {} entities.",
        summary.directory_users, summary.directory_groups, summary.catalog_entities
    );
    let counts: Vec<String> = FindingKind::ALL
        .iter()
        .map(|kind| format!("{kind} {}", summary.count(*kind)))
        .collect();
    let _ = writeln!(
        out,
        "Findings: {} ({}).",
        summary.findings(),
        counts.join(", ")
    );
    let _ = writeln!(
        out,
        "Fixes: {} Roster can apply, {} need a person.",
        summary.applicable_fixes, summary.manual_fixes
    );
    out
}

/// The report as pretty-printed JSON: `{findings: [...], summary: {...}}`.
pub fn render_json(report: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(report)
}

/// The CSV columns, in order.
const CSV_HEADER: [&str; 9] = [
    "kind",
    "subject",
    "uid",
    "directory_id",
    "fix",
    "fix_action",
    "applicable",
    "instructions",
    "evidence",
];

/// One row per finding; the evidence sentences joined with ` | `.
pub fn write_csv<W: io::Write>(report: &Report, writer: W) -> Result<(), csv::Error> {
    let mut csv = csv::Writer::from_writer(writer);
    csv.write_record(CSV_HEADER)?;
    for finding in &report.findings {
        let subject = &finding.subject;
        csv.write_record([
            finding.kind.as_str(),
            &subject.to_string(),
            subject.uid.as_deref().unwrap_or_default(),
            subject.directory_id.as_deref().unwrap_or_default(),
            &finding.fix.action.to_string(),
            finding.fix.action.name(),
            if finding.fix.applicable {
                "true"
            } else {
                "false"
            },
            finding.fix.instructions.as_deref().unwrap_or_default(),
            &finding.evidence.join(" | "),
        ])?;
    }
    csv.flush()?;
    Ok(())
}

/// [`write_csv`] into a string.
pub fn render_csv(report: &Report) -> Result<String, csv::Error> {
    let mut buffer = Vec::new();
    write_csv(report, &mut buffer)?;
    // The writer only ever receives UTF-8 strings.
    Ok(String::from_utf8_lossy(&buffer).into_owned())
}
