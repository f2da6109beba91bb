//! The attribute definitions of the resources Roster serves (RFC 7643 §4, §8.7).
//!
//! One table drives everything schema-aware: filter evaluation (`caseExact`,
//! types), PATCH (mutability, multi-valuedness), key canonicalisation,
//! projection (`returned`) and the `/Schemas` discovery document, so what
//! Roster advertises is what it does.

use serde_json::{json, Map, Value};

use crate::urn;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl AttrType {
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Binary => "binary",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

impl Mutability {
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

impl Returned {
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

/// One attribute of a schema.
#[derive(Debug, Clone)]
pub struct AttributeDef {
    pub name: &'static str,
    pub kind: AttrType,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: &'static str,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub description: &'static str,
    pub sub_attributes: Vec<AttributeDef>,
}

impl AttributeDef {
    fn new(name: &'static str, kind: AttrType, description: &'static str) -> Self {
        Self {
            name,
            kind,
            multi_valued: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: "none",
            canonical_values: &[],
            reference_types: &[],
            description,
            sub_attributes: Vec::new(),
        }
    }

    fn string(name: &'static str, description: &'static str) -> Self {
        Self::new(name, AttrType::String, description)
    }

    fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }

    fn required(mut self) -> Self {
        self.required = true;
        self
    }

    fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }

    fn read_only(mut self) -> Self {
        self.mutability = Mutability::ReadOnly;
        self
    }

    fn immutable(mut self) -> Self {
        self.mutability = Mutability::Immutable;
        self
    }

    fn write_only(mut self) -> Self {
        self.mutability = Mutability::WriteOnly;
        self
    }

    fn returned(mut self, returned: Returned) -> Self {
        self.returned = returned;
        self
    }

    fn unique(mut self, uniqueness: &'static str) -> Self {
        self.uniqueness = uniqueness;
        self
    }

    fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical_values = values;
        self
    }

    fn references(mut self, types: &'static [&'static str]) -> Self {
        self.reference_types = types;
        self
    }

    fn with(mut self, subs: Vec<AttributeDef>) -> Self {
        self.kind = AttrType::Complex;
        self.sub_attributes = subs;
        self
    }

    /// A sub-attribute by name, case-insensitively.
    pub fn sub(&self, name: &str) -> Option<&AttributeDef> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The attribute's definition in the `/Schemas` document.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("name".into(), json!(self.name));
        obj.insert("type".into(), json!(self.kind.as_str()));
        obj.insert("multiValued".into(), json!(self.multi_valued));
        obj.insert("description".into(), json!(self.description));
        obj.insert("required".into(), json!(self.required));
        if self.kind != AttrType::Complex && self.kind != AttrType::Boolean {
            obj.insert("caseExact".into(), json!(self.case_exact));
        }
        if !self.canonical_values.is_empty() {
            obj.insert("canonicalValues".into(), json!(self.canonical_values));
        }
        if !self.reference_types.is_empty() {
            obj.insert("referenceTypes".into(), json!(self.reference_types));
        }
        obj.insert("mutability".into(), json!(self.mutability.as_str()));
        obj.insert("returned".into(), json!(self.returned.as_str()));
        obj.insert("uniqueness".into(), json!(self.uniqueness));
        if !self.sub_attributes.is_empty() {
            obj.insert(
                "subAttributes".into(),
                Value::Array(self.sub_attributes.iter().map(|a| a.to_json()).collect()),
            );
        }
        Value::Object(obj)
    }
}

/// A schema: a URN and its attributes.
#[derive(Debug, Clone)]
pub struct Schema {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: Vec<AttributeDef>,
}

impl Schema {
    pub fn attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The `/Schemas/{id}` document.
    pub fn to_json(&self, base_url: &str) -> Value {
        json!({
            "schemas": [urn::SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": self.attributes.iter().map(|a| a.to_json()).collect::<Vec<_>>(),
            "meta": {
                "resourceType": "Schema",
                "location": format!("{base_url}/Schemas/{}", self.id),
            },
        })
    }
}

/// A resource type: its core schema and the extensions it may carry.
#[derive(Debug)]
pub struct ResourceSchema {
    pub name: &'static str,
    pub endpoint: &'static str,
    pub core: Schema,
    pub extensions: Vec<Schema>,
}

/// Where a (possibly URN-qualified) attribute name resolved to.
#[derive(Debug, Clone, Copy)]
pub struct ResolvedAttr<'a> {
    /// `None` for the core schema, else the extension's URN.
    pub extension: Option<&'static str>,
    pub def: &'a AttributeDef,
}

impl ResourceSchema {
    /// Resolves an attribute name as a client may write it: plain
    /// (`userName`), or qualified by its schema URN
    /// (`urn:ietf:params:scim:schemas:core:2.0:User:userName`,
    /// `urn:...:enterprise:2.0:User:manager`). Case-insensitive.
    ///
    /// Returns the attribute and any remaining `.sub` part of `name`.
    pub fn resolve<'s>(&'s self, name: &'s str) -> Option<(ResolvedAttr<'s>, Option<&'s str>)> {
        let (extension, schema, rest) = self.split_urn(name)?;
        let (attr, sub) = match rest.split_once('.') {
            Some((attr, sub)) => (attr, Some(sub)),
            None => (rest, None),
        };
        let def = schema.attribute(attr).or_else(|| common_attribute(attr))?;
        Some((ResolvedAttr { extension, def }, sub))
    }

    /// Splits a URN prefix off an attribute name. An unqualified name
    /// belongs to the core schema.
    fn split_urn<'s>(
        &'s self,
        name: &'s str,
    ) -> Option<(Option<&'static str>, &'s Schema, &'s str)> {
        let lower = name.to_ascii_lowercase();
        if !lower.starts_with("urn:") {
            return Some((None, &self.core, name));
        }
        if lower.starts_with(&format!("{}:", self.core.id.to_ascii_lowercase())) {
            return Some((None, &self.core, &name[self.core.id.len() + 1..]));
        }
        for ext in &self.extensions {
            if lower.starts_with(&format!("{}:", ext.id.to_ascii_lowercase())) {
                return Some((Some(ext.id), ext, &name[ext.id.len() + 1..]));
            }
        }
        None
    }

    /// The extension schema with this URN, case-insensitively.
    pub fn extension(&self, urn: &str) -> Option<&Schema> {
        self.extensions
            .iter()
            .find(|e| e.id.eq_ignore_ascii_case(urn))
    }

    /// The `/ResourceTypes/{name}` document.
    pub fn resource_type_json(&self, base_url: &str) -> Value {
        json!({
            "schemas": [urn::RESOURCE_TYPE],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.core.description,
            "schema": self.core.id,
            "schemaExtensions": self.extensions.iter()
                .map(|e| json!({"schema": e.id, "required": false}))
                .collect::<Vec<_>>(),
            "meta": {
                "resourceType": "ResourceType",
                "location": format!("{base_url}/ResourceTypes/{}", self.name),
            },
        })
    }
}

/// `id`, `externalId` and `meta` (RFC 7643 §3.1), common to every resource.
pub fn common_attribute(name: &str) -> Option<&'static AttributeDef> {
    common_attributes()
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
}

fn common_attributes() -> &'static [AttributeDef] {
    static COMMON: std::sync::OnceLock<Vec<AttributeDef>> = std::sync::OnceLock::new();
    COMMON.get_or_init(|| {
        use AttributeDef as A;
        vec![
            A::string("id", "Unique identifier assigned by the service provider.")
                .case_exact()
                .read_only()
                .returned(Returned::Always)
                .unique("server"),
            A::string(
                "externalId",
                "Identifier assigned by the provisioning client.",
            )
            .case_exact(),
            A::new("meta", AttrType::Complex, "Resource metadata.")
                .read_only()
                .with(vec![
                    A::string("resourceType", "The resource type.")
                        .case_exact()
                        .read_only(),
                    A::new(
                        "created",
                        AttrType::DateTime,
                        "When the resource was created.",
                    )
                    .read_only(),
                    A::new(
                        "lastModified",
                        AttrType::DateTime,
                        "When the resource last changed.",
                    )
                    .read_only(),
                    A::new("location", AttrType::Reference, "The resource's URI.")
                        .case_exact()
                        .read_only()
                        .references(&["uri"]),
                    A::string("version", "The resource's entity tag.")
                        .case_exact()
                        .read_only(),
                ]),
        ]
    })
}

fn multi_value(
    name: &'static str,
    description: &'static str,
    types: &'static [&'static str],
) -> AttributeDef {
    use AttributeDef as A;
    A::new(name, AttrType::Complex, description)
        .multi()
        .with(vec![
            A::string("value", "The attribute's value."),
            A::string(
                "display",
                "A human-readable name, primarily used for display purposes.",
            ),
            A::string("type", "A label indicating the attribute's function.").canonical(types),
            A::new(
                "primary",
                AttrType::Boolean,
                "Whether this is the preferred value.",
            ),
        ])
}

fn user_schema() -> Schema {
    use AttributeDef as A;
    let mut x509 = multi_value(
        "x509Certificates",
        "A list of certificates issued to the User.",
        &[],
    );
    if let Some(value) = x509.sub_attributes.first_mut() {
        value.kind = AttrType::Binary;
        value.case_exact = true;
    }
    let mut photos = multi_value(
        "photos",
        "URLs of photos of the User.",
        &["photo", "thumbnail"],
    );
    if let Some(value) = photos.sub_attributes.first_mut() {
        value.kind = AttrType::Reference;
        value.case_exact = true;
        value.reference_types = &["external"];
    }
    Schema {
        id: urn::USER,
        name: "User",
        description: "User Account",
        attributes: vec![
            A::string(
                "userName",
                "Unique identifier for the User, used to sign in.",
            )
            .required()
            .unique("server"),
            A::new(
                "name",
                AttrType::Complex,
                "The components of the user's real name.",
            )
            .with(vec![
                A::string("formatted", "The full name, formatted for display."),
                A::string("familyName", "The family name."),
                A::string("givenName", "The given name."),
                A::string("middleName", "The middle name(s)."),
                A::string("honorificPrefix", "The honorific prefix(es)."),
                A::string("honorificSuffix", "The honorific suffix(es)."),
            ]),
            A::string("displayName", "The name of the User, suitable for display."),
            A::string("nickName", "The casual way to address the user."),
            A::new(
                "profileUrl",
                AttrType::Reference,
                "A URI of the User's online profile.",
            )
            .references(&["external"]),
            A::string("title", "The user's title, such as \"Vice President\"."),
            A::string(
                "userType",
                "The relationship between the organization and the user.",
            ),
            A::string(
                "preferredLanguage",
                "The User's preferred written or spoken language.",
            ),
            A::string("locale", "The User's default location for localization."),
            A::string(
                "timezone",
                "The User's time zone in the Olson database format.",
            ),
            A::new(
                "active",
                AttrType::Boolean,
                "The User's administrative status.",
            ),
            A::string(
                "password",
                "The User's cleartext password. Never stored or returned.",
            )
            .write_only()
            .returned(Returned::Never),
            multi_value(
                "emails",
                "Email addresses for the user.",
                &["work", "home", "other"],
            ),
            multi_value(
                "phoneNumbers",
                "Phone numbers for the User.",
                &["work", "home", "mobile", "fax", "pager", "other"],
            ),
            multi_value(
                "ims",
                "Instant messaging addresses for the User.",
                &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
            ),
            photos,
            A::new(
                "addresses",
                AttrType::Complex,
                "Physical mailing addresses.",
            )
            .multi()
            .with(vec![
                A::string("formatted", "The full mailing address."),
                A::string("streetAddress", "The full street address component."),
                A::string("locality", "The city or locality component."),
                A::string("region", "The state or region component."),
                A::string("postalCode", "The zip code or postal code component."),
                A::string("country", "The country name component."),
                A::string("type", "A label indicating the attribute's function.")
                    .canonical(&["work", "home", "other"]),
                A::new(
                    "primary",
                    AttrType::Boolean,
                    "Whether this is the preferred address.",
                ),
            ]),
            A::new(
                "groups",
                AttrType::Complex,
                "Groups the user belongs to, directly.",
            )
            .multi()
            .read_only()
            .with(vec![
                A::string("value", "The id of the group.").read_only(),
                A::new("$ref", AttrType::Reference, "The URI of the group.")
                    .read_only()
                    .references(&["Group"]),
                A::string("display", "The group's displayName.").read_only(),
                A::string("type", "How the membership was derived.")
                    .read_only()
                    .canonical(&["direct", "indirect"]),
            ]),
            multi_value("entitlements", "A list of entitlements for the User.", &[]),
            multi_value("roles", "A list of roles for the User.", &[]),
            x509,
        ],
    }
}

fn enterprise_schema() -> Schema {
    use AttributeDef as A;
    Schema {
        id: urn::ENTERPRISE_USER,
        name: "EnterpriseUser",
        description: "Enterprise User",
        attributes: vec![
            A::string(
                "employeeNumber",
                "A numeric or alphanumeric identifier assigned to a person.",
            ),
            A::string("costCenter", "Identifies the name of a cost center."),
            A::string("organization", "Identifies the name of an organization."),
            A::string("division", "Identifies the name of a division."),
            A::string("department", "Identifies the name of a department."),
            A::new("manager", AttrType::Complex, "The User's manager.").with(vec![
                A::string(
                    "value",
                    "The id of the SCIM resource representing the manager.",
                ),
                A::new(
                    "$ref",
                    AttrType::Reference,
                    "The URI of the manager's resource.",
                )
                .references(&["User"]),
                A::string("displayName", "The displayName of the manager.").read_only(),
            ]),
        ],
    }
}

fn group_schema() -> Schema {
    use AttributeDef as A;
    Schema {
        id: urn::GROUP,
        name: "Group",
        description: "Group",
        attributes: vec![
            A::string("displayName", "A human-readable name for the Group.")
                .required()
                .unique("server"),
            A::new(
                "members",
                AttrType::Complex,
                "A list of members of the Group.",
            )
            .multi()
            .with(vec![
                A::string("value", "Identifier of the member of this Group.")
                    .case_exact()
                    .immutable(),
                A::new(
                    "$ref",
                    AttrType::Reference,
                    "The URI of the member resource.",
                )
                .immutable()
                .references(&["User", "Group"]),
                A::string("display", "The member's display name.").read_only(),
                A::string("type", "The type of the member resource.")
                    .immutable()
                    .canonical(&["User", "Group"]),
            ]),
        ],
    }
}

/// The User resource type: core User schema plus the Enterprise extension.
pub fn user_resource() -> &'static ResourceSchema {
    static USER: std::sync::OnceLock<ResourceSchema> = std::sync::OnceLock::new();
    USER.get_or_init(|| ResourceSchema {
        name: "User",
        endpoint: "/Users",
        core: user_schema(),
        extensions: vec![enterprise_schema()],
    })
}

/// The Group resource type.
pub fn group_resource() -> &'static ResourceSchema {
    static GROUP: std::sync::OnceLock<ResourceSchema> = std::sync::OnceLock::new();
    GROUP.get_or_init(|| ResourceSchema {
        name: "Group",
        endpoint: "/Groups",
        core: group_schema(),
        extensions: Vec::new(),
    })
}

/// Every schema Roster serves, for `/Schemas`.
pub fn all_schemas() -> Vec<&'static Schema> {
    let user = user_resource();
    let group = group_resource();
    let mut all = vec![&user.core];
    all.extend(user.extensions.iter());
    all.push(&group.core);
    all
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]
    use super::*;

    #[test]
    fn attribute_names_resolve_plain_qualified_and_case_insensitively() {
        let user = user_resource();
        for (input, expected_name, expected_ext, expected_sub) in [
            ("userName", "userName", None, None),
            ("USERNAME", "userName", None, None),
            ("name.givenName", "name", None, Some("givenName")),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:userName",
                "userName",
                None,
                None,
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                "manager",
                Some(urn::ENTERPRISE_USER),
                None,
            ),
            (
                "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:manager.value",
                "manager",
                Some(urn::ENTERPRISE_USER),
                Some("value"),
            ),
            ("meta.lastModified", "meta", None, Some("lastModified")),
            ("id", "id", None, None),
        ] {
            let (resolved, sub) = user.resolve(input).unwrap_or_else(|| panic!("{input}"));
            assert_eq!(resolved.def.name, expected_name, "{input}");
            assert_eq!(resolved.extension, expected_ext, "{input}");
            assert_eq!(sub, expected_sub, "{input}");
        }
        assert!(user.resolve("nosuch").is_none());
        assert!(user.resolve("urn:example:other:attr").is_none());
    }
}

/// Canonicalisation: clients write attribute names in any case and send
/// booleans as `"True"`; the rest of Roster sees one spelling.
impl ResourceSchema {
    /// Rewrites a resource document so every known attribute key has its
    /// schema spelling, extension attributes sit under their extension's URN
    /// key, and boolean attributes sent as `"true"`/`"false"` strings are
    /// booleans. Unknown attributes are dropped (RFC 7644 lets a service
    /// provider ignore what it does not support; IdPs send extras).
    /// `schemas` is kept as sent.
    pub fn canonicalize(&self, doc: &Value) -> Value {
        let mut out = Map::new();
        let Some(obj) = doc.as_object() else {
            return doc.clone();
        };
        for (key, value) in obj {
            if key.eq_ignore_ascii_case("schemas") {
                out.insert("schemas".into(), value.clone());
                continue;
            }
            if let Some(ext) = self.extension(key) {
                let target = out
                    .entry(ext.id.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let (Some(target), Some(fields)) = (target.as_object_mut(), value.as_object()) {
                    for (k, v) in fields {
                        if let Some(def) = ext.attribute(k) {
                            target.insert(def.name.into(), canonicalize_value(def, v));
                        }
                    }
                }
                continue;
            }
            let Some((resolved, sub)) = self.resolve(key) else {
                continue;
            };
            let def = resolved.def;
            let canonical = match sub.and_then(|s| def.sub(s)) {
                // A dotted or URN-qualified key at top level, e.g.
                // `name.givenName`: nest it.
                Some(sub_def) => {
                    let mut inner = Map::new();
                    inner.insert(sub_def.name.into(), canonicalize_value(sub_def, value));
                    Value::Object(inner)
                }
                None if sub.is_some() => continue,
                None => canonicalize_value(def, value),
            };
            let slot = match resolved.extension {
                Some(urn) => {
                    let ext = out
                        .entry(urn.to_string())
                        .or_insert_with(|| Value::Object(Map::new()));
                    match ext.as_object_mut() {
                        Some(ext) => ext,
                        None => continue,
                    }
                }
                None => &mut out,
            };
            merge_into(slot, def.name, canonical);
        }
        Value::Object(out)
    }
}

/// Inserts `value` under `key`, merging objects so that `name` and
/// `name.givenName` given side by side both land.
fn merge_into(target: &mut Map<String, Value>, key: &str, value: Value) {
    match (target.get_mut(key), value) {
        (Some(Value::Object(existing)), Value::Object(new)) => {
            for (k, v) in new {
                existing.insert(k, v);
            }
        }
        (_, value) => {
            target.insert(key.to_string(), value);
        }
    }
}

/// Canonicalises one attribute's value against its definition: sub-attribute
/// keys get their schema spelling (unknown ones are dropped), and boolean
/// strings become booleans.
pub fn canonicalize_value(def: &AttributeDef, value: &Value) -> Value {
    match value {
        Value::Array(items) if def.multi_valued => Value::Array(
            items
                .iter()
                .map(|item| canonicalize_single(def, item))
                .collect(),
        ),
        other => canonicalize_single(def, other),
    }
}

fn canonicalize_single(def: &AttributeDef, value: &Value) -> Value {
    match (def.kind, value) {
        (AttrType::Complex, Value::Object(fields)) => {
            let mut out = Map::new();
            for (k, v) in fields {
                if let Some(sub) = def.sub(k) {
                    out.insert(sub.name.into(), canonicalize_single(sub, v));
                }
            }
            Value::Object(out)
        }
        (AttrType::Boolean, Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => value.clone(),
        },
        _ => value.clone(),
    }
}

#[cfg(test)]
mod canonical_tests {
    use super::*;

    #[test]
    fn canonicalize_fixes_case_nests_dotted_keys_and_coerces_booleans() {
        let doc = json!({
            "schemas": [urn::USER],
            "USERNAME": "jane",
            "Active": "False",
            "name.givenName": "Jane",
            "name": {"FAMILYNAME": "Doe", "bogus": 1},
            "emails": [{"Value": "j@x", "Primary": "true", "TYPE": "work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"Department": "Eng"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42",
            "unknownThing": true,
        });
        assert_eq!(
            user_resource().canonicalize(&doc),
            json!({
                "schemas": [urn::USER],
                "userName": "jane",
                "active": false,
                "name": {"givenName": "Jane", "familyName": "Doe"},
                "emails": [{"value": "j@x", "primary": true, "type": "work"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                    {"department": "Eng", "employeeNumber": "42"},
            })
        );
    }
}
