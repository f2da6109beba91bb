//! A YAML writer for exactly the entities Roster emits.
//!
//! Hand-written rather than `serde_yaml` for two reasons. Speed: this is
//! about ten times faster, which matters for a feed of 100,000 users.
//! Safety: a string is written plain only when every YAML reader, 1.1 or
//! 1.2, reads it back as that string; anything else is double-quoted with
//! escapes. (`serde_yaml` leaves `no`, `on`, `y` or `2024-01-01` plain,
//! which YAML 1.1 readers turn into booleans and dates.) Block style
//! throughout, so the feed reads like the catalog's own examples.

use std::fmt::Write as _;

use crate::entity::{Entity, GroupSpec, Kind, Metadata, Profile, Spec, UserSpec};

/// Words that some YAML version reads as something other than a string
/// (compared case-insensitively; anything starting with a digit, sign or
/// dot is quoted anyway).
const SPECIAL_WORDS: &[&str] = &["true", "false", "yes", "no", "on", "off", "y", "n", "null"];

/// Whether a string that starts with a digit cannot be read as a number,
/// date or time by any YAML version: it is not a `0x`/`0o`/`0b` integer,
/// and it has a letter that none of the others use (they use only `e`,
/// `x`, `o`, `b`, `t` and `z`).
fn digits_but_not_a_number(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    type IsDigit = fn(u8) -> bool;
    let radix: [(&str, IsDigit); 3] = [
        ("0x", |b| b.is_ascii_hexdigit()),
        ("0o", |b| matches!(b, b'0'..=b'7')),
        ("0b", |b| matches!(b, b'0' | b'1')),
    ];
    let radix_integer = radix.iter().any(|(prefix, digit)| {
        lower
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.bytes().all(|b| digit(b) || b == b'_'))
    });
    !radix_integer
        && lower.bytes().any(|b| {
            b.is_ascii_lowercase() && !matches!(b, b'e' | b'x' | b'o' | b'b' | b't' | b'z')
        })
}

/// Whether `value` can be written as a plain scalar and read back as the
/// same string by YAML 1.1 and 1.2 readers alike.
fn is_plain_safe(value: &str) -> bool {
    let bytes = value.as_bytes();
    let Some(first) = bytes.first() else {
        return false;
    };
    (first.is_ascii_alphabetic() || (first.is_ascii_digit() && digits_but_not_a_number(value)))
        && !value.ends_with([' ', ':'])
        && !value.contains(": ")
        && bytes.iter().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b' ' | b'.' | b'_' | b'-' | b'/' | b'@' | b'+' | b':')
        })
        && !SPECIAL_WORDS.iter().any(|w| w.eq_ignore_ascii_case(value))
}

/// Appends `value` as a scalar: plain when that is safe, else
/// double-quoted with every character YAML does not allow raw escaped.
pub(super) fn scalar(out: &mut String, value: &str) {
    if is_plain_safe(value) {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // C0 and C1 controls, DEL, the YAML 1.1 line breaks (NEL,
            // LS, PS), the byte order mark and the non-characters.
            '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => {
                let _ = write!(out, "\\x{:02X}", u32::from(c));
            }
            '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}' => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn key(out: &mut String, indent: usize, name: &str) {
    for _ in 0..indent {
        out.push(' ');
    }
    out.push_str(name);
    out.push(':');
}

fn field(out: &mut String, indent: usize, name: &str, value: &str) {
    key(out, indent, name);
    out.push(' ');
    scalar(out, value);
    out.push('\n');
}

fn optional(out: &mut String, indent: usize, name: &str, value: Option<&str>) {
    if let Some(value) = value {
        field(out, indent, name, value);
    }
}

fn sequence(out: &mut String, indent: usize, name: &str, items: &[String]) {
    key(out, indent, name);
    if items.is_empty() {
        out.push_str(" []\n");
        return;
    }
    out.push('\n');
    for item in items {
        for _ in 0..indent + 2 {
            out.push(' ');
        }
        out.push_str("- ");
        scalar(out, item);
        out.push('\n');
    }
}

fn map<'a>(
    out: &mut String,
    indent: usize,
    name: &str,
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    key(out, indent, name);
    out.push('\n');
    for (k, v) in entries {
        for _ in 0..indent + 2 {
            out.push(' ');
        }
        scalar(out, k);
        out.push_str(": ");
        scalar(out, v);
        out.push('\n');
    }
}

fn metadata(out: &mut String, metadata: &Metadata) {
    out.push_str("metadata:\n");
    field(out, 2, "name", metadata.name.as_str());
    field(out, 2, "namespace", metadata.namespace.as_str());
    if !metadata.labels.is_empty() {
        map(
            out,
            2,
            "labels",
            metadata.labels.iter().map(|(k, v)| (*k, v.as_str())),
        );
    }
    if !metadata.annotations.is_empty() {
        map(
            out,
            2,
            "annotations",
            metadata.annotations.iter().map(|(k, v)| (*k, v.as_str())),
        );
    }
}

fn profile(out: &mut String, profile: &Profile) {
    if profile.is_empty() {
        return;
    }
    out.push_str("  profile:\n");
    optional(out, 4, "displayName", profile.display_name.as_deref());
    optional(out, 4, "email", profile.email.as_deref());
    optional(out, 4, "picture", profile.picture.as_deref());
}

fn user_spec(out: &mut String, spec: &UserSpec) {
    profile(out, &spec.profile);
    sequence(out, 2, "memberOf", &spec.member_of);
}

fn group_spec(out: &mut String, spec: &GroupSpec) {
    field(out, 2, "type", spec.group_type.as_str());
    profile(out, &spec.profile);
    optional(out, 2, "parent", spec.parent.as_deref());
    sequence(out, 2, "children", &spec.children);
    sequence(out, 2, "members", &spec.members);
}

/// Appends `entity` as one YAML document (without the `---` before it).
pub(super) fn entity(out: &mut String, entity: &Entity) {
    field(out, 0, "apiVersion", entity.api_version);
    let kind = match entity.kind {
        Kind::User => "User",
        Kind::Group => "Group",
    };
    field(out, 0, "kind", kind);
    metadata(out, &entity.metadata);
    out.push_str("spec:\n");
    match &entity.spec {
        Spec::User(spec) => user_spec(out, spec),
        Spec::Group(spec) => group_spec(out, spec),
    }
}
