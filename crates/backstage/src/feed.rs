//! The catalog feed: every published entity as one multi-document YAML file
//! (what a Backstage `url` location reads) or as a JSON array.
//!
//! Pure pieces the server streams with: [`GroupIndex`] (what is known about
//! every group before the walk starts: names, the parent tree),
//! [`GroupIndex::user_document`] and [`GroupIndex::group_document`] (one
//! entity each, both sides of every membership from the same state), and
//! [`Encoder`] (entities to bytes, chunk by chunk, so a body of 100,000
//! users is never held whole).

use std::collections::HashMap;

use roster_domain::{Group, GroupId, User};

use crate::entity::{group_entity, user_entity, Entity, PublishConfig};
use crate::names::EntityName;

/// The two representations of the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// YAML documents separated by `---`: what Backstage reads.
    Yaml,
    /// One JSON array of entities.
    Json,
}

impl Format {
    /// Picks the representation an `Accept` header asks for: JSON when it
    /// prefers `application/json` to every YAML type, YAML otherwise
    /// (including no header and `*/*`).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Yaml;
        };
        let mut json = 0.0f32;
        let mut yaml = 0.0f32;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/json" => json = json.max(q),
                "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => {
                    yaml = yaml.max(q)
                }
                _ => {}
            }
        }
        if json > 0.0 && json > yaml {
            Format::Json
        } else {
            Format::Yaml
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Yaml => "application/yaml; charset=utf-8",
            Format::Json => "application/json",
        }
    }

    /// A short tag for entity tags and logs.
    pub fn tag(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
        }
    }
}

/// Encoding an entity failed (only JSON can, and only on a serializer bug).
#[derive(Debug, thiserror::Error)]
#[error("encoding an entity as JSON failed: {0}")]
pub struct EncodeError(#[from] serde_json::Error);

/// Writes entities in a [`Format`], appending to whatever buffer the caller
/// hands it, so the caller decides when a chunk is big enough to send.
#[derive(Debug)]
pub struct Encoder {
    format: Format,
    written: u64,
    /// Reused for each YAML document.
    scratch: String,
}

impl Encoder {
    pub fn new(format: Format) -> Self {
        Self {
            format,
            written: 0,
            scratch: String::new(),
        }
    }

    /// How many entities were written so far.
    pub fn count(&self) -> u64 {
        self.written
    }

    /// What comes before the first entity.
    pub fn start(&self, out: &mut Vec<u8>) {
        if self.format == Format::Json {
            out.push(b'[');
        }
    }

    /// Appends one entity.
    pub fn entity(&mut self, entity: &Entity, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self.format {
            Format::Yaml => {
                self.scratch.clear();
                self.scratch.push_str("---\n");
                yaml::entity(&mut self.scratch, entity);
                out.extend_from_slice(self.scratch.as_bytes());
            }
            Format::Json => {
                if self.written > 0 {
                    out.push(b',');
                }
                out.push(b'\n');
                serde_json::to_writer(&mut *out, entity)?;
            }
        }
        self.written += 1;
        Ok(())
    }

    /// What comes after the last entity.
    pub fn finish(&self, out: &mut Vec<u8>) {
        if self.format == Format::Json {
            if self.written > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(b"]\n");
        }
    }
}

/// Encodes `entities` whole (for tests and small directories).
pub fn encode_all<'a>(
    format: Format,
    entities: impl IntoIterator<Item = &'a Entity>,
) -> Result<Vec<u8>, EncodeError> {
    let mut encoder = Encoder::new(format);
    let mut out = Vec::new();
    encoder.start(&mut out);
    for entity in entities {
        encoder.entity(entity, &mut out)?;
    }
    encoder.finish(&mut out);
    Ok(out)
}

/// Everything about the groups that a single user or group document needs:
/// each group's name and creation order, and the parent tree. Built once per
/// feed from the (small) group graph, before users and groups are streamed.
///
/// Backstage groups form a tree: one `spec.parent`, and `spec.children`
/// listing exactly the groups whose parent it is. SCIM groups may be members
/// of several groups, so each group's parent is the *oldest* group it is a
/// member of whose own ancestry does not lead back to it (so the tree has no
/// cycles). A group's memberships in its other parents are not in the
/// catalog's tree.
#[derive(Debug, Clone, Default)]
pub struct GroupIndex {
    /// Creation order and name (if it has one yet) of every group.
    groups: HashMap<GroupId, (usize, Option<EntityName>)>,
    parent: HashMap<GroupId, GroupId>,
    /// Children in creation order.
    children: HashMap<GroupId, Vec<GroupId>>,
}

impl GroupIndex {
    /// `groups` in creation order with their names; `edges` are `(parent,
    /// child)` group memberships in the parent's creation order.
    pub fn new(
        groups: impl IntoIterator<Item = (GroupId, Option<EntityName>)>,
        edges: &[(GroupId, GroupId)],
    ) -> Self {
        let groups: HashMap<GroupId, (usize, Option<EntityName>)> = groups
            .into_iter()
            .enumerate()
            .map(|(position, (id, name))| (id, (position, name)))
            .collect();
        let mut candidates: HashMap<GroupId, Vec<GroupId>> = HashMap::new();
        for (parent, child) in edges {
            if groups.contains_key(parent) && groups.contains_key(child) {
                candidates.entry(*child).or_default().push(*parent);
            }
        }
        // Parents are chosen oldest child first, so the outcome depends only
        // on the directory, never on hash order.
        let mut order: Vec<(&GroupId, &usize)> =
            groups.iter().map(|(id, (pos, _))| (id, pos)).collect();
        order.sort_by_key(|(_, pos)| **pos);
        let mut parent: HashMap<GroupId, GroupId> = HashMap::new();
        for (child, _) in order {
            let Some(options) = candidates.get_mut(child) else {
                continue;
            };
            options.sort_by_key(|p| groups.get(p).map_or(usize::MAX, |(pos, _)| *pos));
            options.dedup();
            let chosen = options
                .iter()
                .find(|p| !leads_to(&parent, **p, *child))
                .copied();
            if let Some(p) = chosen {
                parent.insert(*child, p);
            }
        }
        let mut children: HashMap<GroupId, Vec<GroupId>> = HashMap::new();
        for (child, p) in &parent {
            children.entry(*p).or_default().push(*child);
        }
        for list in children.values_mut() {
            list.sort_by_key(|c| groups.get(c).map_or(usize::MAX, |(pos, _)| *pos));
        }
        Self {
            groups,
            parent,
            children,
        }
    }

    /// The group's entity name, if it has one.
    pub fn name(&self, id: GroupId) -> Option<&EntityName> {
        self.groups.get(&id).and_then(|(_, name)| name.as_ref())
    }

    /// The group's parent in the catalog tree.
    pub fn parent(&self, id: GroupId) -> Option<GroupId> {
        self.parent.get(&id).copied()
    }

    /// The groups whose parent `id` is, in creation order.
    pub fn children(&self, id: GroupId) -> &[GroupId] {
        self.children.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Names of `ids` (unnamed and unknown groups left out), in group
    /// creation order, each once.
    fn names_in_order(&self, ids: impl IntoIterator<Item = GroupId>) -> Vec<EntityName> {
        let mut found: Vec<(usize, &EntityName)> = ids
            .into_iter()
            .filter_map(|id| {
                let (position, name) = self.groups.get(&id)?;
                Some((*position, name.as_ref()?))
            })
            .collect();
        found.sort_by_key(|(position, _)| *position);
        found.dedup_by_key(|(position, _)| *position);
        found.into_iter().map(|(_, name)| name.clone()).collect()
    }

    /// A user's entity (`None` when it is not published): `groups` are its
    /// direct groups, in any order.
    pub fn user_document(
        &self,
        config: &PublishConfig,
        user: &User,
        name: &EntityName,
        groups: &[GroupId],
    ) -> Option<Entity> {
        let member_of = self.names_in_order(groups.iter().copied());
        user_entity(config, user, name, &member_of)
    }

    /// A group's entity. `members` are its user members in order, each with
    /// its entity name (if any) and whether it is active: unnamed members,
    /// and deactivated ones unless they are published, are left out, so
    /// `members` agrees with the users' `memberOf`.
    pub fn group_document<'a>(
        &self,
        config: &PublishConfig,
        group: &Group,
        name: &EntityName,
        members: impl IntoIterator<Item = (Option<&'a EntityName>, bool)>,
    ) -> Entity {
        let parent = self.parent(group.id).and_then(|p| self.name(p));
        let children = self.names_in_order(self.children(group.id).iter().copied());
        let members: Vec<EntityName> = members
            .into_iter()
            .filter(|(_, active)| *active || config.include_deactivated)
            .filter_map(|(name, _)| name.cloned())
            .collect();
        group_entity(config, group, name, parent, &children, &members)
    }
}

/// Whether following chosen parents up from `start` reaches `target`.
fn leads_to(parent: &HashMap<GroupId, GroupId>, start: GroupId, target: GroupId) -> bool {
    let mut at = start;
    // At most one step per group: the chosen parents never form a cycle.
    for _ in 0..=parent.len() {
        if at == target {
            return true;
        }
        match parent.get(&at) {
            Some(next) => at = *next,
            None => return false,
        }
    }
    true
}

mod yaml;

#[cfg(test)]
mod tests;
