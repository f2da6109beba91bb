//! A hand-written recursive-descent parser for the SCIM filter language
//! (RFC 7644 §3.4.2.2) and for PATCH paths (RFC 7644 §3.5.2), plus the
//! `Display` impls that print a syntax tree back in canonical syntax.
//!
//! The grammar, with the liberties Roster takes noted:
//!
//! ```text
//! filter     = term *( "or" term )                ; "and" binds tighter
//! term       = factor *( "and" factor )
//! factor     = "(" filter ")"
//!            / "not" "(" filter ")"               ; `not` needs parentheses
//!            / attrPath "[" valFilter "]" [ "." subAttr compare ]
//!            / attrPath compare
//! compare    = "pr" / compareOp value
//! valFilter  = filter without value paths         ; nesting is invalid
//! attrPath   = [ URN ":" ] ATTRNAME [ "." ATTRNAME ]
//! ATTRNAME   = ALPHA *( "-" / "_" / DIGIT / ALPHA ) / "$ref"
//! value      = JSON string / JSON number / "true" / "false" / "null"
//! ```
//!
//! Keywords, operators and `true`/`false`/`null` are case-insensitive;
//! whitespace (spaces, tabs, line breaks) may be repeated anywhere between
//! tokens. `attr[valFilter].sub op value` is the form Entra ID sends; it
//! means `attr[valFilter and sub op value]` and parses to exactly that tree.
//!
//! The parser never panics: it walks the input by `char`, slices only at
//! positions it has itself reached, bounds the input length
//! ([`MAX_FILTER_LEN`]) and the nesting depth ([`MAX_NESTING`]).

use std::fmt;

use super::{AttrPath, CompareOp, Filter, Literal, PatchPath};
use crate::ScimError;

/// The longest filter or path accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 8 * 1024;

/// How deeply parentheses, `not (...)` and value filters may nest.
pub const MAX_NESTING: usize = 64;

/// Parses a filter expression (the `filter` query parameter or the
/// `filter` member of a search request).
///
/// Every syntax error is a `400 invalidFilter` whose detail names the
/// character position and what was expected there.
pub fn parse(input: &str) -> Result<Filter, ScimError> {
    Parser::new(input)
        .and_then(|mut p| p.filter_document())
        .map_err(|e| ScimError::invalid_filter(e.render("invalid filter")))
}

/// Parses a PATCH operation's `path`: `attr`, `attr.sub`, `urn:...:attr`,
/// `urn:...:attr.sub`, `attr[valFilter]` or `attr[valFilter].sub`.
///
/// Every syntax error, including one inside the value filter, is a
/// `400 invalidPath`.
pub fn parse_patch_path(input: &str) -> Result<PatchPath, ScimError> {
    Parser::new(input)
        .and_then(|mut p| p.patch_path_document())
        .map_err(|e| ScimError::invalid_path(e.render("invalid path")))
}

/// A syntax error: where (a byte offset into the input, always on a char
/// boundary) and what went wrong.
struct SyntaxError {
    /// The character (1-based) where the problem is, or `None` when it is
    /// about the input as a whole.
    column: Option<usize>,
    message: String,
}

impl SyntaxError {
    fn render(&self, what: &str) -> String {
        match self.column {
            Some(column) => format!("{what} at character {column}: {}", self.message),
            None => format!("{what}: {}", self.message),
        }
    }
}

type PResult<T> = Result<T, SyntaxError>;

struct Parser<'a> {
    src: &'a str,
    /// Byte offset of the next unread character.
    pos: usize,
    /// Current nesting of `(`, `not (` and `[`.
    depth: usize,
}

/// Characters that may appear in an attribute path token (a URN, names,
/// the `.` between attribute and sub-attribute, `$` of `$ref`).
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '$')
}

/// Characters of a single attribute name (and of keywords).
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$')
}

/// `ATTRNAME = ALPHA *(nameChar)`, or `$ref`.
fn is_attr_name(name: &str) -> bool {
    if name.eq_ignore_ascii_case("$ref") {
        return true;
    }
    let mut chars = name.chars();
    match chars.next() {
        Some(first) if first.is_ascii_alphabetic() => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        }
        _ => false,
    }
}

const OPERATORS: &str = "eq, ne, co, sw, ew, gt, ge, lt, le or pr";

fn operator(word: &str) -> Option<CompareOp> {
    let op = match word.to_ascii_lowercase().as_str() {
        "eq" => CompareOp::Eq,
        "ne" => CompareOp::Ne,
        "co" => CompareOp::Co,
        "sw" => CompareOp::Sw,
        "ew" => CompareOp::Ew,
        "gt" => CompareOp::Gt,
        "ge" => CompareOp::Ge,
        "lt" => CompareOp::Lt,
        "le" => CompareOp::Le,
        _ => return None,
    };
    Some(op)
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> PResult<Self> {
        if src.len() > MAX_FILTER_LEN {
            return Err(SyntaxError {
                column: None,
                message: format!(
                    "it is {} bytes long; at most {MAX_FILTER_LEN} are accepted",
                    src.len()
                ),
            });
        }
        Ok(Self {
            src,
            pos: 0,
            depth: 0,
        })
    }

    // ---- Documents ------------------------------------------------------

    fn filter_document(&mut self) -> PResult<Filter> {
        self.skip_ws();
        if self.at_end() {
            return Err(
                self.error_here("the filter is empty; expected an attribute path, '(' or 'not'")
            );
        }
        let filter = self.or_expr(false)?;
        self.skip_ws();
        if !self.at_end() {
            return Err(self.error_here(format!(
                "expected 'and', 'or' or the end of the filter, found {}",
                self.describe_here()
            )));
        }
        Ok(filter)
    }

    fn patch_path_document(&mut self) -> PResult<PatchPath> {
        self.skip_ws();
        if self.at_end() {
            return Err(self.error_here("the path is empty; expected an attribute name"));
        }
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() || c == '$' => {}
            _ => {
                return Err(self.error_here(format!(
                    "expected an attribute name, found {}",
                    self.describe_here()
                )))
            }
        }
        let start = self.pos;
        let word = self.eat_while(is_path_char);
        let attr = self.attr_path(word, start)?;
        self.skip_ws();
        let mut patch = PatchPath {
            attr,
            value_filter: None,
            sub: None,
        };
        if self.peek() == Some('[') {
            let filter = self.value_filter(&patch.attr)?;
            patch.value_filter = Some(filter);
            if self.peek() == Some('.') {
                self.bump();
                patch.sub = Some(self.sub_attr_after_filter()?.to_string());
            }
            self.skip_ws();
        }
        if !self.at_end() {
            return Err(self.error_here(format!(
                "expected the end of the path, found {}",
                self.describe_here()
            )));
        }
        Ok(patch)
    }

    // ---- Expressions ----------------------------------------------------

    /// `term *("or" term)`, left-associative.
    fn or_expr(&mut self, in_value_filter: bool) -> PResult<Filter> {
        let mut left = self.and_expr(in_value_filter)?;
        while self.eat_keyword("or") {
            let right = self.and_expr(in_value_filter)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `factor *("and" factor)`, left-associative.
    fn and_expr(&mut self, in_value_filter: bool) -> PResult<Filter> {
        let mut left = self.factor(in_value_filter)?;
        while self.eat_keyword("and") {
            let right = self.factor(in_value_filter)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn factor(&mut self, in_value_filter: bool) -> PResult<Filter> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some('(') => {
                self.bump();
                let inner = self.nested(start, |p| p.or_expr(in_value_filter))?;
                self.close(')', "'('", start)?;
                Ok(inner)
            }
            Some(c) if c.is_ascii_alphabetic() || c == '$' => {
                let word = self.eat_while(is_path_char);
                if word.eq_ignore_ascii_case("not") {
                    return self.not_expr(start, in_value_filter);
                }
                if word.eq_ignore_ascii_case("and") || word.eq_ignore_ascii_case("or") {
                    return Err(self.error_at(
                        start,
                        format!("expected an attribute path, '(' or 'not', found '{word}'"),
                    ));
                }
                let path = self.attr_path(word, start)?;
                self.skip_ws();
                if self.peek() == Some('[') {
                    if in_value_filter {
                        return Err(self.error_here("value filters cannot be nested"));
                    }
                    self.value_path(path)
                } else {
                    self.comparison(path)
                }
            }
            _ => Err(self.error_here(format!(
                "expected an attribute path, '(' or 'not', found {}",
                self.describe_here()
            ))),
        }
    }

    /// After the keyword `not`: `"(" filter ")"`.
    fn not_expr(&mut self, start: usize, in_value_filter: bool) -> PResult<Filter> {
        self.skip_ws();
        if self.peek() != Some('(') {
            return Err(self.error_here(format!(
                "expected '(' after 'not' (write `not (expression)`), found {}",
                self.describe_here()
            )));
        }
        let open = self.pos;
        self.bump();
        let inner = self.nested(start, |p| p.or_expr(in_value_filter))?;
        self.close(')', "'('", open)?;
        Ok(Filter::Not(Box::new(inner)))
    }

    /// `attrPath "[" valFilter "]" ["." subAttr compare]`, at the `[`.
    fn value_path(&mut self, path: AttrPath) -> PResult<Filter> {
        let mut filter = self.value_filter(&path)?;
        if self.peek() == Some('.') {
            // Entra ID's `emails[type eq "work"].value eq "x"`: the
            // comparison applies to the same element as the value filter.
            self.bump();
            let sub = self.sub_attr_after_filter()?;
            let relative = AttrPath {
                urn: None,
                attr: sub.to_string(),
                sub: None,
            };
            let compare = self.comparison(relative)?;
            filter = Filter::And(Box::new(filter), Box::new(compare));
        }
        Ok(Filter::ValuePath {
            path,
            filter: Box::new(filter),
        })
    }

    /// `"[" valFilter "]"`, at the `[`; shared by filters and PATCH paths.
    fn value_filter(&mut self, path: &AttrPath) -> PResult<Filter> {
        let open = self.pos;
        if path.sub.is_some() {
            return Err(self.error_here(format!(
                "a value filter must follow an attribute, not the sub-attribute '{}'",
                path.full_name()
            )));
        }
        self.bump();
        self.skip_ws();
        if self.peek() == Some(']') {
            return Err(self.error_here("the value filter is empty; expected an expression"));
        }
        let filter = self.nested(open, |p| p.or_expr(true))?;
        self.close(']', "the value filter '['", open)?;
        Ok(filter)
    }

    /// The `subAttr` after `]` and a `.` (already consumed).
    fn sub_attr_after_filter(&mut self) -> PResult<&'a str> {
        let found = self.describe_here();
        let start = self.pos;
        let name = self.eat_while(is_name_char);
        if !is_attr_name(name) {
            return Err(self.error_at(
                start,
                format!("expected a sub-attribute name after '].', found {found}"),
            ));
        }
        if self.peek() == Some('.') {
            return Err(
                self.error_here("only one level of sub-attribute is allowed after a value filter")
            );
        }
        Ok(name)
    }

    /// `"pr" / compareOp value`, after an attribute path.
    fn comparison(&mut self, path: AttrPath) -> PResult<Filter> {
        self.skip_ws();
        let start = self.pos;
        let word = self.eat_while(is_name_char);
        if word.is_empty() {
            return Err(self.error_here(format!(
                "expected an operator ({OPERATORS}) after '{}', found {}",
                path.full_name(),
                self.describe_here()
            )));
        }
        if word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let Some(op) = operator(word) else {
            return Err(self.error_at(
                start,
                format!("unknown operator '{word}'; expected {OPERATORS}"),
            ));
        };
        self.skip_ws();
        let value = self.literal(word)?;
        Ok(Filter::Compare { path, op, value })
    }

    // ---- Attribute paths ------------------------------------------------

    /// Splits and checks an attribute path token that started at `start`.
    fn attr_path(&self, word: &str, start: usize) -> PResult<AttrPath> {
        let (urn, rest) = match word.rsplit_once(':') {
            Some((urn, rest)) => {
                let well_formed = urn.len() > 4
                    && urn
                        .get(..4)
                        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("urn:"))
                    && urn.split(':').all(|part| !part.is_empty());
                if !well_formed {
                    return Err(self.error_at(
                        start,
                        format!(
                            "'{word}' is not an attribute path: a schema prefix must be a URN \
                             such as urn:ietf:params:scim:schemas:core:2.0:User"
                        ),
                    ));
                }
                (Some(urn.to_string()), rest)
            }
            None => (None, word),
        };
        let mut parts = rest.split('.');
        let attr = parts.next().unwrap_or_default();
        let sub = parts.next();
        if parts.next().is_some() {
            return Err(self.error_at(
                start,
                format!("'{word}' has more than one '.': SCIM allows one level of sub-attribute"),
            ));
        }
        for name in std::iter::once(attr).chain(sub) {
            if !is_attr_name(name) {
                return Err(self.error_at(
                    start,
                    format!(
                        "'{word}' is not a valid attribute path: '{name}' is not an attribute \
                         name (a letter followed by letters, digits, '-' or '_')"
                    ),
                ));
            }
        }
        Ok(AttrPath {
            urn,
            attr: attr.to_string(),
            sub: sub.map(str::to_string),
        })
    }

    // ---- Literals -------------------------------------------------------

    /// A comparison value, after the operator `op`.
    fn literal(&mut self, op: &str) -> PResult<Literal> {
        match self.peek() {
            Some('"') => self.string().map(Literal::String),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number().map(Literal::Number),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                let word = self.eat_while(is_name_char);
                match word.to_ascii_lowercase().as_str() {
                    "true" => Ok(Literal::Bool(true)),
                    "false" => Ok(Literal::Bool(false)),
                    "null" => Ok(Literal::Null),
                    _ => Err(self.error_at(
                        start,
                        format!(
                            "expected a value after '{op}', found '{word}' (strings must be in \
                             double quotes)"
                        ),
                    )),
                }
            }
            _ => Err(self.error_here(format!(
                "expected a value (a string in double quotes, a number, true, false or null) \
                 after '{op}', found {}",
                self.describe_here()
            ))),
        }
    }

    /// A JSON string, at its opening quote.
    fn string(&mut self) -> PResult<String> {
        let open = self.pos;
        self.bump();
        let mut out = String::new();
        loop {
            let here = self.pos;
            let Some(c) = self.bump() else {
                return Err(self.error_at(
                    open,
                    "unterminated string: expected a closing '\"'".to_string(),
                ));
            };
            match c {
                '"' => return Ok(out),
                '\\' => out.push(self.escape(here)?),
                c if (c as u32) < 0x20 => {
                    return Err(self.error_at(
                        here,
                        format!(
                            "control character U+{:04X} in a string must be escaped",
                            c as u32
                        ),
                    ))
                }
                c => out.push(c),
            }
        }
    }

    /// One escape sequence, after its backslash (which was at `at`).
    fn escape(&mut self, at: usize) -> PResult<char> {
        let c = match self.bump() {
            Some('"') => '"',
            Some('\\') => '\\',
            Some('/') => '/',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('u') => {
                let unit = self.hex4(at)?;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        // A high surrogate must be followed by `\u` and a
                        // low surrogate; together they are one character.
                        let low_at = self.pos;
                        let low = if self.bump() == Some('\\') && self.bump() == Some('u') {
                            self.hex4(low_at)?
                        } else {
                            0
                        };
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(self.error_at(
                                at,
                                format!(
                                    "\\u{unit:04X} is a high surrogate and must be followed by \
                                     a low surrogate escape (\\uDC00 to \\uDFFF)"
                                ),
                            ));
                        }
                        0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    }
                    0xDC00..=0xDFFF => {
                        return Err(
                            self.error_at(at, format!("\\u{unit:04X} is a lone low surrogate"))
                        )
                    }
                    other => other,
                };
                return char::from_u32(code).ok_or_else(|| {
                    self.error_at(at, format!("\\u escape yields invalid character {code:#X}"))
                });
            }
            Some(other) => {
                return Err(self.error_at(
                    at,
                    format!(
                        "invalid escape '\\{other}' in string; valid escapes are \
                         \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX"
                    ),
                ))
            }
            None => {
                return Err(self.error_at(
                    at,
                    "unterminated string: it ends in the middle of an escape".to_string(),
                ))
            }
        };
        Ok(c)
    }

    /// Four hex digits of a `\u` escape that started at `at`.
    fn hex4(&mut self, at: usize) -> PResult<u32> {
        let mut value = 0u32;
        for _ in 0..4 {
            let digit = self.peek().and_then(|c| c.to_digit(16)).ok_or_else(|| {
                self.error_at(at, "\\u must be followed by four hex digits".to_string())
            })?;
            self.bump();
            value = value * 16 + digit;
        }
        Ok(value)
    }

    /// A JSON number.
    fn number(&mut self) -> PResult<serde_json::Number> {
        let start = self.pos;
        let text = self.eat_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'));
        if !is_json_number(text) {
            return Err(self.error_at(
                start,
                format!(
                    "'{text}' is not a number (JSON syntax: an optional '-', digits without \
                     leading zeros, an optional fraction and exponent)"
                ),
            ));
        }
        let number = if let Ok(i) = text.parse::<i64>() {
            Some(serde_json::Number::from(i))
        } else if let Ok(u) = text.parse::<u64>() {
            Some(serde_json::Number::from(u))
        } else {
            text.parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
        };
        number.ok_or_else(|| self.error_at(start, format!("the number '{text}' is out of range")))
    }

    // ---- Lexical helpers ------------------------------------------------

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\r' | '\n')) {
            self.bump();
        }
    }

    fn eat_while(&mut self, pred: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let len = rest.find(|c: char| !pred(c)).unwrap_or(rest.len());
        self.pos += len;
        rest.get(..len).unwrap_or_default()
    }

    /// Consumes the keyword `kw` (case-insensitive, a whole word) after
    /// optional whitespace; leaves the input untouched otherwise.
    fn eat_keyword(&mut self, kw: &str) -> bool {
        let saved = self.pos;
        self.skip_ws();
        let word = self.eat_while(is_path_char);
        if word.eq_ignore_ascii_case(kw) {
            true
        } else {
            self.pos = saved;
            false
        }
    }

    /// Expects the closing `close` for an opener (described by `what`) at
    /// byte offset `open`.
    fn close(&mut self, close: char, what: &str, open: usize) -> PResult<()> {
        self.skip_ws();
        if self.peek() == Some(close) {
            self.bump();
            return Ok(());
        }
        Err(self.error_here(format!(
            "expected '{close}' to close {what} at character {}, found {}",
            self.column(open),
            self.describe_here()
        )))
    }

    /// Runs `f` one nesting level deeper, refusing to go past
    /// [`MAX_NESTING`] so hostile input cannot exhaust the stack.
    fn nested<T>(&mut self, at: usize, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        if self.depth >= MAX_NESTING {
            return Err(self.error_at(
                at,
                format!("the filter nests more than {MAX_NESTING} levels deep"),
            ));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    /// The 1-based character position of byte offset `pos`.
    fn column(&self, pos: usize) -> usize {
        self.src
            .get(..pos)
            .map_or(self.src.chars().count(), |before| before.chars().count())
            + 1
    }

    fn error_at(&self, pos: usize, message: String) -> SyntaxError {
        SyntaxError {
            column: Some(self.column(pos)),
            message,
        }
    }

    fn error_here(&self, message: impl Into<String>) -> SyntaxError {
        self.error_at(self.pos, message.into())
    }

    /// What is at the current position, for "found ..." in messages.
    fn describe_here(&self) -> String {
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return "the end of the input".to_string();
        };
        if is_path_char(c) {
            let len = rest.find(|c: char| !is_path_char(c)).unwrap_or(rest.len());
            let word = rest.get(..len).unwrap_or_default();
            let shown: String = word.chars().take(40).collect();
            let ellipsis = if shown.len() < word.len() { "..." } else { "" };
            format!("'{shown}{ellipsis}'")
        } else if c == '"' {
            "a string".to_string()
        } else {
            format!("'{}'", c.escape_debug())
        }
    }
}

/// `-? (0 | [1-9][0-9]*) ("." [0-9]+)? ([eE] [+-]? [0-9]+)?`
fn is_json_number(text: &str) -> bool {
    fn digits(bytes: &[u8], mut i: usize) -> usize {
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    if bytes.first() == Some(&b'-') {
        i += 1;
    }
    match bytes.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(bytes, i),
        _ => return false,
    }
    if bytes.get(i) == Some(&b'.') {
        let end = digits(bytes, i + 1);
        if end == i + 1 {
            return false;
        }
        i = end;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = digits(bytes, i);
        if end == i {
            return false;
        }
        i = end;
    }
    i == bytes.len()
}

// ---- Printing ---------------------------------------------------------------

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.attr)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl CompareOp {
    /// The operator as written in a filter (lower case).
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("null"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Number(n) => write!(f, "{n}"),
            Literal::String(s) => write_json_string(f, s),
        }
    }
}

/// Writes `s` as a JSON string literal.
fn write_json_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// Prints a filter in canonical syntax: lower-case keywords, single spaces,
/// and parentheses only where needed to keep the tree's shape, so that
/// `parse(&filter.to_string()) == Ok(filter)`.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::Present(path) => write!(f, "{path} pr"),
            // `and` binds tighter than `or` and both associate to the left:
            // an `or` operand of `and` needs parentheses, and so does any
            // right operand of the same operator.
            Filter::And(left, right) => {
                write_operand(f, left, matches!(**left, Filter::Or(..)))?;
                f.write_str(" and ")?;
                write_operand(
                    f,
                    right,
                    matches!(**right, Filter::Or(..) | Filter::And(..)),
                )
            }
            Filter::Or(left, right) => {
                write!(f, "{left} or ")?;
                write_operand(f, right, matches!(**right, Filter::Or(..)))
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, operand: &Filter, parenthesize: bool) -> fmt::Result {
    if parenthesize {
        write!(f, "({operand})")
    } else {
        write!(f, "{operand}")
    }
}

/// Prints a PATCH path as `parse_patch_path` reads it.
impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.value_filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}
