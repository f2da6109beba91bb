//! The SCIM filter language (RFC 7644 §3.4.2.2): its syntax tree, a parser
//! and an evaluator over resource documents.

mod eval;
mod parse;

pub use parse::parse;

/// An attribute path as written in a filter: an optional schema URN, an
/// attribute name and an optional sub-attribute, e.g.
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`.
/// Names keep the client's spelling; comparisons are case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub attr: String,
    pub sub: Option<String>,
}

impl AttrPath {
    /// The path as one string, URN-qualified when it was written so.
    pub fn full_name(&self) -> String {
        let mut out = String::new();
        if let Some(urn) = &self.urn {
            out.push_str(urn);
            out.push(':');
        }
        out.push_str(&self.attr);
        if let Some(sub) = &self.sub {
            out.push('.');
            out.push_str(sub);
        }
        out
    }
}

/// The comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// The literal on the right of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
}

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attrPath op value`
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: Literal,
    },
    /// `attrPath pr`
    Present(AttrPath),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `attrPath[valFilter]`, e.g. `emails[type eq "work" and value co "@x"]`.
    /// Inside `filter`, paths are relative to the multi-valued attribute's
    /// elements (`type` means `emails.type`).
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
    },
}

/// A PATCH operation's `path` (RFC 7644 §3.5.2): `attr`, `attr.sub`,
/// `urn:...:attr`, `attr[valFilter]` or `attr[valFilter].sub`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute, possibly URN-qualified; `attr.sub` is unused here when
    /// the path has a value filter (the sub-attribute is then in `sub`).
    pub attr: AttrPath,
    /// The `[valFilter]` part, relative to the attribute's elements.
    pub value_filter: Option<Filter>,
    /// The `.sub` part that follows a value filter.
    pub sub: Option<String>,
}

pub use parse::parse_patch_path;

#[cfg(test)]
mod tests;
