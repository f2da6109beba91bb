//! Applying parsed PATCH operations to user and group documents.
//!
//! Documents are SCIM JSON with the schema's key spelling; extension
//! attributes live under their extension's URN key. Every request runs on a
//! working copy that replaces the caller's document only when all operations
//! succeeded, so helpers may leave the copy half-edited when they fail.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::filter::{parse_patch_path, Filter, PatchPath};
use crate::schema::{
    common_attribute, group_resource, user_resource, AttrType, AttributeDef, Mutability,
    ResourceSchema, Schema,
};
use crate::ScimError;

use super::members::{member_ids, member_values, plain_ids, MemberOp};
use super::{element_filter, PatchOpKind, PatchOperation};

/// Applies `ops` to a user document, in order, all or nothing.
///
/// `doc` is the stored user (canonical keys; the enterprise extension under
/// its URN key); `id`, `meta`, `schemas` and `groups` are read-only. On
/// error `doc` is unchanged. When an extension attribute is first set, its
/// URN is added to `schemas`; when the extension's last attribute is
/// removed, its object and URN go away.
pub fn apply_to_user(doc: &mut Value, ops: &[PatchOperation]) -> Result<(), ScimError> {
    let mut engine = Engine::new(user_resource(), doc, false)?;
    for op in ops {
        engine.apply(op)?;
    }
    *doc = Value::Object(engine.doc);
    Ok(())
}

/// Applies `ops` to a group document that does not hold its members, in
/// order, all or nothing.
///
/// Operations on `members` are not applied to `doc`; they come back, in
/// request order, as [`MemberOp`]s for [`super::plan_membership`]. On error
/// `doc` is unchanged and no member operation is returned.
pub fn apply_to_group(doc: &mut Value, ops: &[PatchOperation]) -> Result<Vec<MemberOp>, ScimError> {
    let mut engine = Engine::new(group_resource(), doc, true)?;
    for op in ops {
        engine.apply(op)?;
    }
    *doc = Value::Object(engine.doc);
    Ok(engine.member_ops.unwrap_or_default())
}

/// Where a target came from: an operation's `path`, or a key of a path-less
/// value object. They differ in strictness: an explicit path that names
/// something unknown or read-only is an error; a value object's key that
/// does is skipped, because IdPs echo whole resources back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Path,
    Key,
}

/// A resolved attribute to operate on.
struct Target<'f> {
    /// The extension URN for extension attributes, `None` for core ones.
    ext: Option<&'static str>,
    def: &'static AttributeDef,
    /// The `[valFilter]`, for multi-valued attributes only.
    filter: Option<&'f Filter>,
    /// The sub-attribute: `attr.sub` or `attr[filter].sub`.
    sub: Option<&'static AttributeDef>,
    /// The path as the client wrote it, for messages.
    name: String,
}

enum Resolved<'f> {
    /// The path names a whole extension, e.g. `urn:…:enterprise:2.0:User`.
    Extension(&'static Schema),
    Attr(Target<'f>),
}

struct Engine {
    schema: &'static ResourceSchema,
    /// The working copy.
    doc: Map<String, Value>,
    /// For groups: membership operations diverted from the document.
    member_ops: Option<Vec<MemberOp>>,
}

impl Engine {
    fn new(
        schema: &'static ResourceSchema,
        doc: &Value,
        divert_members: bool,
    ) -> Result<Self, ScimError> {
        // The document is the server's own; anything but an object is a bug.
        let Some(doc) = doc.as_object() else {
            return Err(ScimError::internal());
        };
        Ok(Self {
            schema,
            doc: doc.clone(),
            member_ops: divert_members.then(Vec::new),
        })
    }

    fn apply(&mut self, op: &PatchOperation) -> Result<(), ScimError> {
        match &op.path {
            None => match (op.op, &op.value) {
                (PatchOpKind::Remove, _) => {
                    Err(ScimError::no_target("\"remove\" needs a \"path\""))
                }
                (kind, Some(Value::Object(fields))) => self.apply_object(kind, fields),
                _ => Err(ScimError::invalid_value(
                    "without a \"path\", \"value\" must be an object of attributes",
                )),
            },
            Some(path) => match self.resolve_path(path)? {
                Resolved::Extension(ext) => self.apply_extension(op.op, ext, op.value.as_ref()),
                Resolved::Attr(target) => {
                    self.apply_target(op.op, &target, op.value.as_ref(), Origin::Path)
                }
            },
        }
    }

    /// A path-less `add`/`replace`: each key of the value object is an
    /// attribute, written plain (`displayName`), dotted (`name.givenName`),
    /// URN-qualified (`urn:…:enterprise:2.0:User:department`), as the
    /// extension URN with an object, or (Entra) as a filtered path
    /// (`emails[type eq "work"].value`). Unknown keys are ignored.
    fn apply_object(
        &mut self,
        kind: PatchOpKind,
        fields: &Map<String, Value>,
    ) -> Result<(), ScimError> {
        for (key, value) in fields {
            if key.eq_ignore_ascii_case("schemas") {
                continue;
            }
            if let Some(ext) = self.schema.extension(key) {
                self.apply_extension(kind, ext, Some(value))?;
                continue;
            }
            if key.contains('[') {
                let Ok(path) = parse_patch_path(key) else {
                    continue;
                };
                match self.resolve_path(&path) {
                    Ok(Resolved::Attr(target)) => {
                        self.apply_target(kind, &target, Some(value), Origin::Key)?;
                    }
                    Ok(Resolved::Extension(ext)) => self.apply_extension(kind, ext, Some(value))?,
                    Err(_) => {}
                }
                continue;
            }
            let Some((ext, def, sub)) = self.resolve_name(key) else {
                continue;
            };
            let target = Target {
                ext,
                def,
                filter: None,
                sub,
                name: key.clone(),
            };
            self.apply_target(kind, &target, Some(value), Origin::Key)?;
        }
        Ok(())
    }

    /// An operation on a whole extension: its value is an object of the
    /// extension's attributes (handled like a path-less value object);
    /// `remove` (or `replace` with null) drops every extension attribute.
    fn apply_extension(
        &mut self,
        kind: PatchOpKind,
        ext: &'static Schema,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        match (kind, value) {
            (PatchOpKind::Remove, _) | (PatchOpKind::Replace, Some(Value::Null)) => self
                .with_container(Some(ext.id), |container| {
                    container.clear();
                    Ok(())
                }),
            (_, Some(Value::Object(fields))) => {
                for (key, value) in fields {
                    let name = format!("{}:{key}", ext.id);
                    let Some((ext, def, sub)) = self.resolve_name(&name) else {
                        continue;
                    };
                    let target = Target {
                        ext,
                        def,
                        filter: None,
                        sub,
                        name,
                    };
                    self.apply_target(kind, &target, Some(value), Origin::Key)?;
                }
                Ok(())
            }
            (_, None | Some(Value::Null)) => Ok(()),
            (_, Some(_)) => Err(ScimError::invalid_value(format!(
                "the value of \"{}\" must be an object of its attributes",
                ext.id
            ))),
        }
    }

    fn apply_target(
        &mut self,
        kind: PatchOpKind,
        target: &Target<'_>,
        value: Option<&Value>,
        origin: Origin,
    ) -> Result<(), ScimError> {
        if target.ext.is_none() && target.def.name == "members" {
            if let Some(member_ops) = &mut self.member_ops {
                if let Some(op) = member_op(kind, target, value, origin)? {
                    member_ops.push(op);
                }
                return Ok(());
            }
        }
        // `password` is accepted so IdPs can send it, checked, and dropped:
        // Roster never stores passwords.
        if target.def.mutability == Mutability::WriteOnly {
            if let (PatchOpKind::Add | PatchOpKind::Replace, Some(value)) = (kind, value) {
                if !value.is_null() {
                    coerce_one(target.def, value, &target.name)?;
                }
            }
            return Ok(());
        }
        if is_read_only(target) {
            return match origin {
                Origin::Path => Err(ScimError::mutability(format!(
                    "\"{}\" is read-only",
                    target.name
                ))),
                Origin::Key => self.check_echoed_read_only(target, value),
            };
        }
        match (kind, value) {
            (PatchOpKind::Remove, list) => self.remove(target, list, true),
            (PatchOpKind::Replace, None | Some(Value::Null)) => self.remove(target, None, false),
            (PatchOpKind::Add, None | Some(Value::Null)) => match origin {
                // `{"nickName": null}` in an add adds nothing.
                Origin::Key => Ok(()),
                Origin::Path => Err(ScimError::invalid_value(format!(
                    "\"add\" to \"{}\" needs a non-null value",
                    target.name
                ))),
            },
            (PatchOpKind::Add, Some(value)) => {
                self.with_container(target.ext, |c| add_in(c, target, value))
            }
            (PatchOpKind::Replace, Some(value)) => {
                self.with_container(target.ext, |c| replace_in(c, target, value))
            }
        }
    }

    /// A read-only attribute inside a path-less value object: ignored,
    /// except that a differing `id` is refused (it would look like a rename
    /// of the resource's identity that Roster silently dropped).
    fn check_echoed_read_only(
        &self,
        target: &Target<'_>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let is_id = target.ext.is_none() && target.sub.is_none() && target.def.name == "id";
        if !is_id {
            return Ok(());
        }
        match (value, self.doc.get("id")) {
            (None | Some(Value::Null), _) => Ok(()),
            (Some(Value::String(given)), Some(Value::String(current))) if given == current => {
                Ok(())
            }
            _ => Err(ScimError::mutability(
                "\"id\" is read-only and cannot be changed",
            )),
        }
    }

    /// `remove`, and `replace` with null. `strict` makes a value filter that
    /// matches nothing a `noTarget` error (an explicit `remove`); unassigning
    /// with `replace: null` is idempotent.
    fn remove(
        &mut self,
        target: &Target<'_>,
        list: Option<&Value>,
        strict: bool,
    ) -> Result<(), ScimError> {
        if target.def.required && target.sub.is_none() && target.filter.is_none() {
            return Err(ScimError::invalid_value(format!(
                "\"{}\" is required and cannot be removed",
                target.def.name
            )));
        }
        self.with_container(target.ext, |c| remove_in(c, target, list, strict))
    }

    /// Runs `f` on the object holding the target's attribute: the document
    /// for core attributes, the extension object for extension ones (created
    /// on demand, dropped with its `schemas` entry when left empty).
    fn with_container<R>(
        &mut self,
        ext: Option<&'static str>,
        f: impl FnOnce(&mut Map<String, Value>) -> Result<R, ScimError>,
    ) -> Result<R, ScimError> {
        let Some(urn) = ext else {
            return f(&mut self.doc);
        };
        normalize_key(&mut self.doc, urn);
        let mut inner = match self.doc.get_mut(urn) {
            Some(Value::Object(inner)) => std::mem::take(inner),
            _ => Map::new(),
        };
        let result = f(&mut inner)?;
        let keep = !inner.is_empty();
        if keep {
            put(&mut self.doc, urn, Value::Object(inner));
        } else {
            self.doc.shift_remove(urn);
        }
        if let Some(Value::Array(schemas)) = self.doc.get_mut("schemas") {
            let listed = |s: &Value| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn));
            if !keep {
                schemas.retain(|s| !listed(s));
            } else if !schemas.iter().any(listed) {
                schemas.push(Value::String(urn.to_string()));
            }
        }
        Ok(result)
    }

    /// Resolves `attr` or `attr.sub`, plain or URN-qualified, to definitions
    /// from the resource's schema. `None` if the attribute or sub-attribute
    /// is unknown.
    fn resolve_name(
        &self,
        name: &str,
    ) -> Option<(
        Option<&'static str>,
        &'static AttributeDef,
        Option<&'static AttributeDef>,
    )> {
        let (resolved, sub) = self.schema.resolve(name)?;
        let ext = resolved.extension;
        // Look the definition up again through the `'static` schema, so it
        // does not borrow `name`.
        let def = match ext {
            Some(urn) => self.schema.extension(urn)?.attribute(resolved.def.name)?,
            None => self
                .schema
                .core
                .attribute(resolved.def.name)
                .or_else(|| common_attribute(resolved.def.name))?,
        };
        let sub = match sub {
            Some(sub) => Some(def.sub(sub)?),
            None => None,
        };
        Some((ext, def, sub))
    }

    fn resolve_path<'f>(&self, path: &'f PatchPath) -> Result<Resolved<'f>, ScimError> {
        let name = path.attr.full_name();
        if path.value_filter.is_none() && path.sub.is_none() {
            if let Some(ext) = self.schema.extension(&name) {
                return Ok(Resolved::Extension(ext));
            }
        }
        let unknown = |what: &str| {
            ScimError::invalid_path(format!(
                "{what} is not an attribute of {}",
                self.schema.name
            ))
        };
        let (ext, def, mut sub) = self
            .resolve_name(&name)
            .ok_or_else(|| unknown(&format!("\"{name}\"")))?;
        let filter = path.value_filter.as_ref();
        if let Some(filter) = filter {
            if sub.is_some() || !def.multi_valued || def.sub_attributes.is_empty() {
                return Err(ScimError::invalid_path(format!(
                    "a value filter must follow a multi-valued complex attribute, not \"{name}\""
                )));
            }
            element_filter::validate(filter, def)?;
        }
        if let Some(path_sub) = &path.sub {
            if sub.is_some() {
                return Err(ScimError::invalid_path(format!(
                    "\"{name}\" cannot have a further sub-attribute"
                )));
            }
            sub = Some(
                def.sub(path_sub)
                    .ok_or_else(|| unknown(&format!("\"{}.{path_sub}\"", def.name)))?,
            );
        }
        let mut display = name;
        if let Some(sub) = sub.filter(|_| filter.is_some()) {
            display = format!("{display}[…].{}", sub.name);
        }
        Ok(Resolved::Attr(Target {
            ext,
            def,
            filter,
            sub,
            name: display,
        }))
    }
}

/// Whether the client may not write the target: read-only attributes and
/// sub-attributes (`id`, `meta`, `groups`, `manager.displayName`), and
/// immutable ones, which a PATCH can only ever target once they exist.
fn is_read_only(target: &Target<'_>) -> bool {
    let locked = |m: Mutability| matches!(m, Mutability::ReadOnly | Mutability::Immutable);
    locked(target.def.mutability) || target.sub.is_some_and(|sub| locked(sub.mutability))
}

/// Turns an operation on a group's `members` into a [`MemberOp`].
/// `Ok(None)` means "nothing to do" (a path-less value with something
/// Roster ignores).
fn member_op(
    kind: PatchOpKind,
    target: &Target<'_>,
    value: Option<&Value>,
    origin: Origin,
) -> Result<Option<MemberOp>, ScimError> {
    let reject_in_path = |err: ScimError| match origin {
        Origin::Path => Err(err),
        Origin::Key => Ok(None),
    };
    if target.sub.is_some() {
        return reject_in_path(ScimError::mutability(
            "the sub-attributes of \"members\" cannot be changed; add or remove members instead",
        ));
    }
    let op = match (kind, target.filter, value) {
        (PatchOpKind::Add | PatchOpKind::Replace, Some(_), _) => {
            return reject_in_path(ScimError::invalid_path(format!(
                "\"{}\" on members takes the path \"members\"; remove members with \
                 \"members[value eq \\\"id\\\"]\"",
                kind.as_str()
            )))
        }
        (PatchOpKind::Add, None, None | Some(Value::Null)) => {
            return reject_in_path(ScimError::invalid_value(
                "\"add\" to \"members\" needs a list of members",
            ))
        }
        (PatchOpKind::Add, None, Some(value)) => MemberOp::Add(member_values(value)?),
        (PatchOpKind::Replace, None, None | Some(Value::Null)) => MemberOp::Clear,
        (PatchOpKind::Replace, None, Some(value)) => MemberOp::Replace(member_values(value)?),
        (PatchOpKind::Remove, Some(filter), _) => match plain_ids(filter) {
            Some(ids) => MemberOp::Remove(ids),
            None => MemberOp::RemoveMatching(filter.clone()),
        },
        // Entra: `{"op":"Remove","path":"members","value":[{"value":"id"}]}`.
        (PatchOpKind::Remove, None, Some(value)) if !value.is_null() => {
            MemberOp::Remove(member_ids(value)?)
        }
        // RFC 7644 §3.5.2.2: remove with path "members" clears the group.
        (PatchOpKind::Remove, None, _) => MemberOp::Clear,
    };
    Ok(Some(op))
}

fn add_in(c: &mut Map<String, Value>, t: &Target<'_>, value: &Value) -> Result<(), ScimError> {
    let def = t.def;
    match (def.multi_valued, t.filter, t.sub) {
        (false, _, None) => set_attribute(c, def, coerce_one(def, value, &t.name)?),
        (false, _, Some(sub)) => {
            set_sub(c, def, sub, coerce_one(sub, value, &t.name)?);
            Ok(())
        }
        (true, None, None) => {
            let items = coerce_many(def, value, &t.name)?;
            let mut list = take_list(c, def.name);
            let mut seen: HashSet<String> = list.iter().map(fingerprint).collect();
            let mut touched = Vec::new();
            for item in items {
                if seen.insert(fingerprint(&item)) {
                    list.push(item);
                    touched.push(list.len() - 1);
                }
            }
            fix_primary(&mut list, &touched);
            store_list(c, def.name, list);
            Ok(())
        }
        (true, None, Some(sub)) => {
            set_sub_on_all(c, def, sub, coerce_one(sub, value, &t.name)?);
            Ok(())
        }
        (true, Some(filter), None) => {
            let Value::Object(patch) = coerce_one(def, value, &t.name)? else {
                return Err(ScimError::invalid_value(format!(
                    "\"{}\" needs an object value",
                    t.name
                )));
            };
            let mut list = take_list(c, def.name);
            let mut touched = matching(&list, filter, def);
            if touched.is_empty() {
                let mut element = created_element(filter, def, &t.name)?;
                element.extend(patch);
                list.push(Value::Object(element));
                touched.push(list.len() - 1);
            } else {
                for &i in &touched {
                    if let Some(Value::Object(element)) = list.get_mut(i) {
                        element.extend(patch.clone());
                    }
                }
            }
            fix_primary(&mut list, &touched);
            store_list(c, def.name, list);
            Ok(())
        }
        (true, Some(filter), Some(sub)) => {
            let value = coerce_one(sub, value, &t.name)?;
            set_sub_on_matching(c, t, filter, sub, value)
        }
    }
}

fn replace_in(c: &mut Map<String, Value>, t: &Target<'_>, value: &Value) -> Result<(), ScimError> {
    let def = t.def;
    match (def.multi_valued, t.filter, t.sub) {
        // Single-valued: like add (a complex value merges, RFC 7644 §3.5.2.3).
        (false, _, _) | (true, None, Some(_)) | (true, Some(_), Some(_)) => add_in(c, t, value),
        (true, None, None) => {
            let mut list = coerce_many(def, value, &t.name)?;
            let touched: Vec<usize> = (0..list.len()).collect();
            fix_primary(&mut list, &touched);
            // Taking the old list first keeps the attribute's position.
            take_list(c, def.name);
            store_list(c, def.name, list);
            Ok(())
        }
        (true, Some(filter), None) => {
            let replacement = coerce_one(def, value, &t.name)?;
            let mut list = take_list(c, def.name);
            let touched = matching(&list, filter, def);
            if touched.is_empty() {
                return Err(no_match(&t.name));
            }
            for &i in &touched {
                if let Some(element) = list.get_mut(i) {
                    *element = replacement.clone();
                }
            }
            fix_primary(&mut list, &touched);
            dedupe(&mut list);
            store_list(c, def.name, list);
            Ok(())
        }
    }
}

fn remove_in(
    c: &mut Map<String, Value>,
    t: &Target<'_>,
    list_value: Option<&Value>,
    strict: bool,
) -> Result<(), ScimError> {
    let def = t.def;
    match (def.multi_valued, t.filter, t.sub) {
        (false, _, None) => {
            normalize_key(c, def.name);
            c.shift_remove(def.name);
        }
        (false, _, Some(sub)) => {
            let mut object = take_object(c, def.name);
            remove_key(&mut object, sub.name);
            store_object(c, def.name, object);
        }
        (true, None, None) => match list_value {
            // Entra style: remove the listed values.
            Some(value) if !value.is_null() => {
                let given = coerce_many(def, value, &t.name)?;
                let mut list = take_list(c, def.name);
                list.retain(|element| !given.iter().any(|g| describes(g, element, def)));
                store_list(c, def.name, list);
            }
            _ => {
                normalize_key(c, def.name);
                c.shift_remove(def.name);
            }
        },
        (true, filter, sub) => {
            let mut list = take_list(c, def.name);
            let selected = match filter {
                Some(filter) => matching(&list, filter, def),
                None => (0..list.len()).collect(),
            };
            if selected.is_empty() && strict && filter.is_some() {
                return Err(no_match(&t.name));
            }
            let mut hits = vec![false; list.len()];
            for &i in &selected {
                if let Some(hit) = hits.get_mut(i) {
                    *hit = true;
                }
            }
            let mut hits = hits.into_iter();
            list.retain_mut(|element| {
                let hit = hits.next().unwrap_or(false);
                match (hit, sub, element) {
                    (false, _, _) => true,
                    (true, None, _) => false,
                    (true, Some(sub), Value::Object(fields)) => {
                        remove_key(fields, sub.name);
                        !fields.is_empty()
                    }
                    (true, Some(_), _) => true,
                }
            });
            store_list(c, def.name, list);
        }
    }
    Ok(())
}

/// Writes a single-valued attribute. A complex value is merged
/// sub-attribute by sub-attribute (RFC 7644 §3.5.2.1 and §3.5.2.3), except
/// that a new `value` replaces the whole object: its other sub-attributes
/// (`$ref`, `displayName` of a manager) describe the old value.
fn set_attribute(
    c: &mut Map<String, Value>,
    def: &AttributeDef,
    value: Value,
) -> Result<(), ScimError> {
    match value {
        Value::Object(fields) if def.kind == AttrType::Complex => {
            let mut object = if fields.contains_key("value") {
                Map::new()
            } else {
                take_object(c, def.name)
            };
            object.extend(fields);
            store_object(c, def.name, object);
        }
        value => put(c, def.name, value),
    }
    Ok(())
}

fn set_sub(c: &mut Map<String, Value>, def: &AttributeDef, sub: &AttributeDef, value: Value) {
    let mut object = take_object(c, def.name);
    remove_key(&mut object, sub.name);
    object.insert(sub.name.to_string(), value);
    store_object(c, def.name, object);
}

/// `attr.sub` on a multi-valued attribute without a filter: every element.
/// With no elements, one is created holding just the sub-attribute.
fn set_sub_on_all(
    c: &mut Map<String, Value>,
    def: &AttributeDef,
    sub: &AttributeDef,
    value: Value,
) {
    let mut list = take_list(c, def.name);
    if list.is_empty() {
        let mut element = Map::new();
        element.insert(sub.name.to_string(), value);
        list.push(Value::Object(element));
    } else {
        for element in &mut list {
            if let Value::Object(fields) = element {
                remove_key(fields, sub.name);
                fields.insert(sub.name.to_string(), value.clone());
            }
        }
    }
    let touched: Vec<usize> = (0..list.len()).collect();
    fix_primary(&mut list, &touched);
    store_list(c, def.name, list);
}

/// `attr[filter].sub`: set `sub` on every matching element. Without a match,
/// an element is created from the filter's equalities (Entra's
/// `emails[type eq "work"].value` on a user with no work email).
fn set_sub_on_matching(
    c: &mut Map<String, Value>,
    t: &Target<'_>,
    filter: &Filter,
    sub: &AttributeDef,
    value: Value,
) -> Result<(), ScimError> {
    let def = t.def;
    let mut list = take_list(c, def.name);
    let mut touched = matching(&list, filter, def);
    if touched.is_empty() {
        let mut element = created_element(filter, def, &t.name)?;
        element.insert(sub.name.to_string(), value);
        list.push(Value::Object(element));
        touched.push(list.len() - 1);
    } else {
        for &i in &touched {
            if let Some(Value::Object(fields)) = list.get_mut(i) {
                remove_key(fields, sub.name);
                fields.insert(sub.name.to_string(), value.clone());
            }
        }
    }
    fix_primary(&mut list, &touched);
    dedupe(&mut list);
    store_list(c, def.name, list);
    Ok(())
}

/// The element a filter of `eq` comparisons describes, or `noTarget`.
fn created_element(
    filter: &Filter,
    def: &AttributeDef,
    name: &str,
) -> Result<Map<String, Value>, ScimError> {
    element_filter::element_from_equalities(filter, def).ok_or_else(|| no_match(name))
}

fn no_match(name: &str) -> ScimError {
    ScimError::no_target(format!("the value filter of \"{name}\" matches no value"))
}

/// Indices of the elements matching a value filter.
fn matching(list: &[Value], filter: &Filter, def: &AttributeDef) -> Vec<usize> {
    list.iter()
        .enumerate()
        .filter(|(_, element)| element_filter::matches(filter, element, def))
        .map(|(i, _)| i)
        .collect()
}

/// Whether a value given to a `remove` describes `element`: every
/// sub-attribute it names has the element's value (strings compared per the
/// sub-attribute's `caseExact`). An empty description describes nothing.
fn describes(given: &Value, element: &Value, def: &AttributeDef) -> bool {
    let (Value::Object(given), Value::Object(element)) = (given, element) else {
        return given == element;
    };
    !given.is_empty()
        && given.iter().all(|(key, want)| {
            let case_exact = def.sub(key).is_some_and(|sub| sub.case_exact);
            match (element.get(key), want) {
                (Some(Value::String(have)), Value::String(want)) if !case_exact => {
                    have.to_lowercase() == want.to_lowercase()
                }
                (Some(have), want) => have == want,
                (None, _) => false,
            }
        })
}

/// RFC 7644 §3.5.2: setting `primary` to true on a value sets it to false
/// on every other value. The last touched element with `primary: true` wins.
fn fix_primary(list: &mut [Value], touched: &[usize]) {
    let is_primary = |v: &Value| v.get("primary") == Some(&Value::Bool(true));
    let Some(&winner) = touched
        .iter()
        .rev()
        .find(|&&i| list.get(i).is_some_and(is_primary))
    else {
        return;
    };
    for (i, element) in list.iter_mut().enumerate() {
        if i != winner && is_primary(element) {
            if let Value::Object(fields) = element {
                fields.insert("primary".into(), Value::Bool(false));
            }
        }
    }
}

/// Drops exact duplicates, keeping the first.
fn dedupe(list: &mut Vec<Value>) {
    let mut seen = HashSet::new();
    list.retain(|element| seen.insert(fingerprint(element)));
}

/// A string equal for equal JSON values whatever their key order, so
/// duplicates are found in O(n) rather than by comparing every pair.
fn fingerprint(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(fields) => {
                let mut keys: Vec<&String> = fields.keys().collect();
                keys.sort();
                out.push('{');
                for key in keys {
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    if let Some(v) = fields.get(key) {
                        write(v, out);
                    }
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for item in items {
                    write(item, out);
                    out.push(',');
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// Checks and canonicalises one value of `def` (one element, for a
/// multi-valued attribute): sub-attribute keys get their schema spelling,
/// unknown and read-only sub-attributes and nulls are dropped, `"True"` /
/// `"False"` become booleans, and a plain string given for a complex
/// attribute with a `value` sub-attribute means `{"value": …}` (Entra's
/// enterprise `manager`). Type mismatches are `invalidValue`.
fn coerce_one(def: &AttributeDef, value: &Value, name: &str) -> Result<Value, ScimError> {
    let mismatch = |expected: &str| {
        ScimError::invalid_value(format!(
            "\"{name}\" must be {expected}, not {}",
            json_kind(value)
        ))
    };
    match def.kind {
        AttrType::Complex => match value {
            Value::Object(fields) => {
                let mut out = Map::new();
                for (key, sub_value) in fields {
                    let Some(sub) = def.sub(key) else {
                        continue;
                    };
                    if sub_value.is_null() || sub.mutability == Mutability::ReadOnly {
                        continue;
                    }
                    let sub_name = format!("{name}.{}", sub.name);
                    out.insert(sub.name.to_string(), coerce_one(sub, sub_value, &sub_name)?);
                }
                Ok(Value::Object(out))
            }
            Value::String(s) if def.sub("value").is_some() => {
                let mut out = Map::new();
                out.insert("value".into(), Value::String(s.clone()));
                Ok(Value::Object(out))
            }
            _ => Err(mismatch("an object")),
        },
        AttrType::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err(mismatch("a boolean")),
        },
        AttrType::Integer => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(value.clone()),
            _ => Err(mismatch("an integer")),
        },
        AttrType::Decimal => match value {
            Value::Number(_) => Ok(value.clone()),
            _ => Err(mismatch("a number")),
        },
        AttrType::DateTime => match value {
            Value::String(s)
                if time::OffsetDateTime::parse(
                    s,
                    &time::format_description::well_known::Rfc3339,
                )
                .is_ok() =>
            {
                Ok(value.clone())
            }
            _ => Err(mismatch("an RFC 3339 date-time string")),
        },
        AttrType::String | AttrType::Reference | AttrType::Binary => match value {
            Value::String(s) if def.required && s.trim().is_empty() => Err(
                ScimError::invalid_value(format!("\"{name}\" is required and cannot be empty")),
            ),
            Value::String(_) => Ok(value.clone()),
            _ => Err(mismatch("a string")),
        },
    }
}

/// Checks and canonicalises the values for a multi-valued attribute: an
/// array, or a single value taken as a one-element list. Nulls and values
/// with no known sub-attribute are skipped, exact duplicates collapsed.
fn coerce_many(def: &AttributeDef, value: &Value, name: &str) -> Result<Vec<Value>, ScimError> {
    let items = match value {
        Value::Array(items) => items.as_slice(),
        single => std::slice::from_ref(single),
    };
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    let mut seen = HashSet::new();
    for item in items {
        if item.is_null() {
            continue;
        }
        let item = coerce_one(def, item, name)?;
        if item.as_object().is_some_and(Map::is_empty) || !seen.insert(fingerprint(&item)) {
            continue;
        }
        out.push(item);
    }
    Ok(out)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Renames keys that differ from `name` only in case to `name` (stored
/// documents are canonical; this guards against ones that are not).
fn normalize_key(c: &mut Map<String, Value>, name: &str) {
    let variants: Vec<String> = c
        .keys()
        .filter(|k| k.as_str() != name && k.eq_ignore_ascii_case(name))
        .cloned()
        .collect();
    for key in variants {
        if let Some(value) = c.shift_remove(&key) {
            if !c.contains_key(name) {
                c.insert(name.to_string(), value);
            }
        }
    }
}

/// Sets `name` to `value`, keeping the key's position when it exists.
fn put(c: &mut Map<String, Value>, name: &str, value: Value) {
    normalize_key(c, name);
    match c.get_mut(name) {
        Some(slot) => *slot = value,
        None => {
            c.insert(name.to_string(), value);
        }
    }
}

fn remove_key(c: &mut Map<String, Value>, name: &str) {
    normalize_key(c, name);
    c.shift_remove(name);
}

/// Takes a multi-valued attribute's elements out, leaving an empty slot in
/// place so [`store_list`] keeps the key's position. A non-array value (a
/// corrupt document) counts as no elements.
fn take_list(c: &mut Map<String, Value>, name: &str) -> Vec<Value> {
    normalize_key(c, name);
    match c.get_mut(name) {
        Some(Value::Array(items)) => std::mem::take(items),
        _ => Vec::new(),
    }
}

/// Stores a multi-valued attribute; an empty list is unassigned (removed).
fn store_list(c: &mut Map<String, Value>, name: &str, list: Vec<Value>) {
    if list.is_empty() {
        c.shift_remove(name);
    } else {
        put(c, name, Value::Array(list));
    }
}

fn take_object(c: &mut Map<String, Value>, name: &str) -> Map<String, Value> {
    normalize_key(c, name);
    match c.get_mut(name) {
        Some(Value::Object(fields)) => std::mem::take(fields),
        _ => Map::new(),
    }
}

/// Stores a complex attribute; an empty object is unassigned (removed).
fn store_object(c: &mut Map<String, Value>, name: &str, object: Map<String, Value>) {
    if object.is_empty() {
        c.shift_remove(name);
    } else {
        put(c, name, Value::Object(object));
    }
}
