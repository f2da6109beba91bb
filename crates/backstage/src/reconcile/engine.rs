//! The rules. Three passes over the inputs, each linear:
//!
//! 1. index the directory and the catalog by lowercase keys;
//! 2. identify every catalog User and Group: the directory record it stands
//!    for, or a ghost;
//! 3. derive the findings from the identities: entity-level findings,
//!    duplicates, missing users, dangling owners.

use std::collections::HashMap;

use super::catalog::{CatalogEntity, EntityRef};
use super::{
    annotations, DirGroup, DirHandover, DirUser, DirectorySnapshot, Finding, FindingKind,
    FixAction, ProposedFix, ReconcileConfig, Report, Subject, Summary,
};

pub(super) fn run(
    directory: &DirectorySnapshot,
    catalog: &[CatalogEntity],
    config: &ReconcileConfig,
) -> Report {
    let reconciler = Reconciler::new(directory, catalog, config);
    let mut findings = Vec::new();
    let flagged = reconciler.entity_findings(&mut findings);
    reconciler.duplicates(&flagged, &mut findings);
    reconciler.missing_users(&mut findings);
    reconciler.dangling_owners(&mut findings);

    // Sorting on the displayed subject and fix makes the report independent
    // of the order the store and the catalog returned records in.
    findings.sort_by_cached_key(|finding| {
        (
            finding.kind,
            finding.subject.to_string().to_lowercase(),
            finding.fix.action.to_string().to_lowercase(),
        )
    });

    let mut summary = Summary {
        directory_users: directory.users.len(),
        directory_groups: directory.groups.len(),
        catalog_entities: catalog.len(),
        ..Summary::default()
    };
    for finding in &findings {
        let count = match finding.kind {
            FindingKind::GhostUser => &mut summary.ghost_users,
            FindingKind::GhostGroup => &mut summary.ghost_groups,
            FindingKind::DeactivatedUser => &mut summary.deactivated_users,
            FindingKind::Duplicate => &mut summary.duplicates,
            FindingKind::MissingUser => &mut summary.missing_users,
            FindingKind::DanglingOwner => &mut summary.dangling_owners,
        };
        *count += 1;
        if finding.fix.applicable {
            summary.applicable_fixes += 1;
        } else {
            summary.manual_fixes += 1;
        }
    }
    Report { findings, summary }
}

/// Case-insensitive key for ids, names and emails.
fn fold(value: &str) -> String {
    value.trim().to_lowercase()
}

/// How a catalog entity was tied to a directory record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchedBy {
    ScimId,
    ExternalId,
    EntityName,
    UserName,
    Email,
}

impl MatchedBy {
    fn describe(self) -> &'static str {
        match self {
            MatchedBy::ScimId => "its roster.dev/scim-id annotation",
            MatchedBy::ExternalId => "its roster.dev/external-id annotation",
            MatchedBy::EntityName => "name (the directory's Backstage name for it)",
            MatchedBy::UserName => "name (the user's userName)",
            MatchedBy::Email => "profile.email",
        }
    }
}

/// What a catalog entity stands for.
#[derive(Debug, Clone, Copy)]
enum Identity<'a> {
    /// Not a User or Group.
    Other,
    User(&'a DirUser, MatchedBy),
    /// A live directory group (how it matched matters to nothing yet).
    Group,
    /// Roster published it (it carries this SCIM id), and the directory no
    /// longer has the record.
    AnnotatedGhost(&'a str),
    /// Not Roster's, and no directory record has its name or email.
    UnmatchedGhost,
}

/// What an owner ref stands for.
#[derive(Debug, Clone, Copy)]
enum OwnerState<'a> {
    /// Exists, or is not Roster's business (another kind, or an entity from
    /// another source that stays).
    Live,
    /// Neither in the catalog nor in the directory.
    Gone,
    Deactivated(&'a DirUser),
    /// A catalog ghost that the proposed fixes delete: the ownership dangles
    /// as soon as they are applied. The index is into the catalog.
    Ghost(usize),
}

/// The fallback owner from the config, parsed once.
enum Fallback {
    NotConfigured,
    Unusable(String),
    Ref(EntityRef),
}

struct Reconciler<'a> {
    directory: &'a DirectorySnapshot,
    catalog: &'a [CatalogEntity],
    config: &'a ReconcileConfig,
    /// `config.namespace`, folded.
    namespace: String,
    fallback: Fallback,

    users_by_id: HashMap<String, &'a DirUser>,
    users_by_external_id: HashMap<String, &'a DirUser>,
    users_by_entity_name: HashMap<String, &'a DirUser>,
    users_by_user_name: HashMap<String, &'a DirUser>,
    users_by_email: HashMap<String, &'a DirUser>,
    groups_by_id: HashMap<String, &'a DirGroup>,
    groups_by_entity_name: HashMap<String, &'a DirGroup>,
    groups_by_display_name: HashMap<String, &'a DirGroup>,
    handovers_by_user_id: HashMap<String, &'a DirHandover>,
    /// By the departed user's folded Backstage name (names are in
    /// `config.namespace`).
    handovers_by_entity_name: HashMap<String, &'a DirHandover>,

    /// Folded ref → catalog index. Refs are unique in a real catalog; if the
    /// input repeats one, the smallest uid wins so the outcome does not
    /// depend on input order.
    by_ref: HashMap<String, usize>,
    /// Folded `roster.dev/scim-id` → catalog User indexes.
    users_by_scim_id: HashMap<String, Vec<usize>>,
    identities: Vec<Identity<'a>>,
}

/// First record wins, which keeps the directory's own order meaningful.
fn index<'a, T>(map: &mut HashMap<String, &'a T>, key: Option<&str>, value: &'a T) {
    if let Some(key) = key.filter(|key| !key.trim().is_empty()) {
        map.entry(fold(key)).or_insert(value);
    }
}

impl<'a> Reconciler<'a> {
    fn new(
        directory: &'a DirectorySnapshot,
        catalog: &'a [CatalogEntity],
        config: &'a ReconcileConfig,
    ) -> Self {
        let namespace = fold(&config.namespace);
        let fallback = match &config.fallback_owner {
            None => Fallback::NotConfigured,
            Some(raw) => match EntityRef::parse(raw, "group", &config.namespace) {
                Some(owner) if matches!(owner.kind(), "user" | "group") => Fallback::Ref(owner),
                _ => Fallback::Unusable(raw.clone()),
            },
        };
        let users = directory.users.len();
        let groups = directory.groups.len();
        let mut reconciler = Self {
            directory,
            catalog,
            config,
            namespace,
            fallback,
            users_by_id: HashMap::with_capacity(users),
            users_by_external_id: HashMap::with_capacity(users),
            users_by_entity_name: HashMap::with_capacity(users),
            users_by_user_name: HashMap::with_capacity(users),
            users_by_email: HashMap::with_capacity(users),
            groups_by_id: HashMap::with_capacity(groups),
            groups_by_entity_name: HashMap::with_capacity(groups),
            groups_by_display_name: HashMap::with_capacity(groups),
            handovers_by_user_id: HashMap::with_capacity(directory.handovers.len()),
            handovers_by_entity_name: HashMap::with_capacity(directory.handovers.len()),
            by_ref: HashMap::with_capacity(catalog.len()),
            users_by_scim_id: HashMap::new(),
            identities: Vec::new(),
        };
        for user in &directory.users {
            index(&mut reconciler.users_by_id, Some(&user.id), user);
            index(
                &mut reconciler.users_by_external_id,
                user.external_id.as_deref(),
                user,
            );
            index(
                &mut reconciler.users_by_entity_name,
                user.entity_name.as_deref(),
                user,
            );
            index(
                &mut reconciler.users_by_user_name,
                Some(&user.user_name),
                user,
            );
            index(&mut reconciler.users_by_email, user.email.as_deref(), user);
        }
        for group in &directory.groups {
            index(&mut reconciler.groups_by_id, Some(&group.id), group);
            index(
                &mut reconciler.groups_by_entity_name,
                group.entity_name.as_deref(),
                group,
            );
            index(
                &mut reconciler.groups_by_display_name,
                Some(&group.display_name),
                group,
            );
        }
        for handover in &directory.handovers {
            index(
                &mut reconciler.handovers_by_user_id,
                Some(&handover.user_id),
                handover,
            );
            index(
                &mut reconciler.handovers_by_entity_name,
                handover.entity_name.as_deref(),
                handover,
            );
        }
        for (i, entity) in catalog.iter().enumerate() {
            let key = entity.entity_ref().key().to_owned();
            reconciler
                .by_ref
                .entry(key)
                .and_modify(|kept| {
                    if entity.uid < catalog[*kept].uid {
                        *kept = i;
                    }
                })
                .or_insert(i);
            if entity.is_kind("user") {
                if let Some(id) = entity.scim_id() {
                    reconciler
                        .users_by_scim_id
                        .entry(fold(id))
                        .or_default()
                        .push(i);
                }
            }
        }
        reconciler.identities = catalog.iter().map(|e| reconciler.identify(e)).collect();
        reconciler
    }

    fn in_roster_namespace(&self, entity: &CatalogEntity) -> bool {
        fold(&entity.namespace) == self.namespace
    }

    fn identify(&self, entity: &'a CatalogEntity) -> Identity<'a> {
        if entity.is_kind("user") {
            self.identify_user(entity)
        } else if entity.is_kind("group") {
            self.identify_group(entity)
        } else {
            Identity::Other
        }
    }

    fn identify_user(&self, entity: &'a CatalogEntity) -> Identity<'a> {
        // Roster's own entities are judged by the id they carry, never by
        // name or email: a new person may reuse a departed person's name.
        if let Some(id) = entity.scim_id() {
            return match self.users_by_id.get(&fold(id)) {
                Some(user) => Identity::User(user, MatchedBy::ScimId),
                None => Identity::AnnotatedGhost(id),
            };
        }
        if let Some(user) = entity
            .annotation(annotations::EXTERNAL_ID)
            .and_then(|external| self.users_by_external_id.get(&fold(external)))
        {
            return Identity::User(user, MatchedBy::ExternalId);
        }
        // Names are unique per namespace only, so a name says something only
        // in the namespace Roster publishes to. An email is the same person
        // anywhere.
        if self.in_roster_namespace(entity) {
            let name = fold(&entity.name);
            if let Some(user) = self.users_by_entity_name.get(&name) {
                return Identity::User(user, MatchedBy::EntityName);
            }
            if let Some(user) = self.users_by_user_name.get(&name) {
                return Identity::User(user, MatchedBy::UserName);
            }
        }
        if let Some(user) = entity
            .profile_email
            .as_deref()
            .and_then(|email| self.users_by_email.get(&fold(email)))
        {
            return Identity::User(user, MatchedBy::Email);
        }
        Identity::UnmatchedGhost
    }

    fn identify_group(&self, entity: &'a CatalogEntity) -> Identity<'a> {
        if let Some(id) = entity.scim_id() {
            return match self.groups_by_id.get(&fold(id)) {
                Some(_) => Identity::Group,
                None => Identity::AnnotatedGhost(id),
            };
        }
        if self.in_roster_namespace(entity) {
            let name = fold(&entity.name);
            if self.groups_by_entity_name.contains_key(&name)
                || self.groups_by_display_name.contains_key(&name)
            {
                return Identity::Group;
            }
        }
        Identity::UnmatchedGhost
    }

    /// Whether `apply` deletes this ghost. An entity of Roster's is deleted
    /// whatever its state (the feed no longer emits it, so it stays gone);
    /// anyone else's only once the catalog has orphaned it, since deleting
    /// what a location still emits just brings it back.
    fn ghost_delete_applies(&self, i: usize) -> bool {
        match self.identities[i] {
            Identity::AnnotatedGhost(_) => true,
            Identity::UnmatchedGhost => self.catalog[i].is_orphan(),
            _ => false,
        }
    }

    fn user_ref(&self, user: &DirUser) -> Option<EntityRef> {
        let name = user.entity_name.as_deref()?;
        Some(EntityRef::new("user", &self.config.namespace, name))
    }

    fn group_ref(&self, group: &DirGroup) -> Option<EntityRef> {
        let name = group.entity_name.as_deref()?;
        Some(EntityRef::new("group", &self.config.namespace, name))
    }

    // ----- entity-level findings: ghosts and deactivated users -----

    /// Ghost and deactivated-user findings. Returns which catalog entities
    /// got one, so that no second fix acts on them.
    fn entity_findings(&self, findings: &mut Vec<Finding>) -> Vec<bool> {
        let mut flagged = vec![false; self.catalog.len()];
        for (i, entity) in self.catalog.iter().enumerate() {
            let finding = match self.identities[i] {
                Identity::AnnotatedGhost(id) => Some(self.annotated_ghost(i, entity, id)),
                Identity::UnmatchedGhost => Some(self.unmatched_ghost(i, entity)),
                Identity::User(user, by) if !user.active => {
                    Some(self.deactivated(entity, user, by))
                }
                _ => None,
            };
            if let Some(finding) = finding {
                findings.push(finding);
                flagged[i] = true;
            }
        }
        flagged
    }

    fn annotated_ghost(&self, i: usize, entity: &CatalogEntity, id: &str) -> Finding {
        let is_user = entity.is_kind("user");
        let record = if is_user { "user" } else { "group" };
        let mut evidence = vec![format!(
            "annotation {} is `{id}`, and the directory has no {record} with this id",
            annotations::SCIM_ID
        )];
        if is_user {
            if let Some((external, user)) =
                entity
                    .annotation(annotations::EXTERNAL_ID)
                    .and_then(|external| {
                        Some((external, self.users_by_external_id.get(&fold(external))?))
                    })
            {
                let published = self
                    .user_ref(user)
                    .map_or_else(|| "not yet".to_owned(), |r| format!("as {r}"));
                evidence.push(format!(
                    "directory user `{}` (id `{}`) has the same {} `{external}`: the identity \
                     provider created this person again, and the feed publishes them {published}",
                    user.user_name,
                    user.id,
                    annotations::EXTERNAL_ID
                ));
            }
        }
        evidence.push(location_evidence(entity));
        let instructions = (!entity.is_orphan()).then(|| {
            "Roster's feed no longer lists it, so the delete holds once Backstage has re-read \
             the feed; if it comes back, something other than Roster emits it: remove it there"
                .to_owned()
        });
        Finding {
            kind: if is_user {
                FindingKind::GhostUser
            } else {
                FindingKind::GhostGroup
            },
            subject: entity_subject(entity, None),
            evidence,
            fix: ProposedFix {
                action: delete(entity),
                applicable: self.ghost_delete_applies(i),
                instructions,
            },
        }
    }

    fn unmatched_ghost(&self, i: usize, entity: &CatalogEntity) -> Finding {
        let is_user = entity.is_kind("user");
        let mut evidence = vec![format!(
            "not managed by Roster: no {} annotation",
            annotations::SCIM_ID
        )];
        if !self.in_roster_namespace(entity) {
            evidence.push(format!(
                "in namespace `{}`, not `{}` where Roster publishes, so its name matches nothing",
                entity.namespace, self.config.namespace
            ));
        } else if is_user {
            evidence.push(format!(
                "no directory user has the Backstage name or userName `{}`",
                entity.name
            ));
        } else {
            evidence.push(format!(
                "no directory group has the Backstage name or display name `{}`",
                entity.name
            ));
        }
        if is_user {
            evidence.push(match &entity.profile_email {
                Some(email) => format!("no directory user has the email `{email}`"),
                None => "no profile.email to match on".to_owned(),
            });
        }
        evidence.push(location_evidence(entity));
        let applicable = self.ghost_delete_applies(i);
        let instructions = (!applicable).then(|| {
            format!(
                "it comes back while {} emits it: remove it there, or leave it if it is not a \
                 person or team from the identity provider (a bot, a service account)",
                location_or_unknown(entity)
            )
        });
        Finding {
            kind: if is_user {
                FindingKind::GhostUser
            } else {
                FindingKind::GhostGroup
            },
            subject: entity_subject(entity, None),
            evidence,
            fix: ProposedFix {
                action: delete(entity),
                applicable,
                instructions,
            },
        }
    }

    fn deactivated(&self, entity: &CatalogEntity, user: &DirUser, by: MatchedBy) -> Finding {
        let mut evidence = vec![
            format!(
                "matches directory user `{}` (id `{}`) by {}",
                user.user_name,
                user.id,
                by.describe()
            ),
            "the directory marks this user deactivated (active: false)".to_owned(),
        ];
        let status = entity.annotation(annotations::STATUS);
        if let Some(status) = status {
            evidence.push(format!("annotation {} is `{status}`", annotations::STATUS));
        }
        evidence.push(location_evidence(entity));
        let fix = if entity.is_orphan() {
            ProposedFix {
                action: delete(entity),
                applicable: true,
                instructions: None,
            }
        } else if entity.scim_id().is_none() {
            ProposedFix {
                action: delete(entity),
                applicable: false,
                instructions: Some(format!(
                    "it is not Roster's: remove it from {}, which Roster cannot edit",
                    location_or_unknown(entity)
                )),
            }
        } else if status.is_some_and(|s| !s.trim().eq_ignore_ascii_case("active")) {
            // The feed published the deactivation itself: the catalog is up
            // to date, and the finding is there so nobody is surprised.
            ProposedFix {
                action: FixAction::None,
                applicable: false,
                instructions: Some(format!(
                    "the catalog already shows the deactivation ({}); entities the user owns \
                     are reported as dangling owners",
                    annotations::STATUS
                )),
            }
        } else {
            ProposedFix {
                action: refresh(entity),
                applicable: true,
                instructions: Some(
                    "the catalog holds what the feed published before the deactivation; a \
                     refresh makes it re-read the feed"
                        .to_owned(),
                ),
            }
        };
        Finding {
            kind: FindingKind::DeactivatedUser,
            subject: entity_subject(entity, Some(&user.id)),
            evidence,
            fix,
        }
    }

    // ----- duplicates -----

    /// Users sharing an email or a SCIM id, among the entities with no other
    /// finding. Grouped with union-find, so that A~B by email and B~C by id
    /// make one group of three with one entity kept.
    fn duplicates(&self, flagged: &[bool], findings: &mut Vec<Finding>) {
        let mut sets = DisjointSets::new(self.catalog.len());
        let mut first_by_email: HashMap<String, usize> = HashMap::new();
        let mut first_by_id: HashMap<String, usize> = HashMap::new();
        for (i, entity) in self.catalog.iter().enumerate() {
            if flagged[i] || !entity.is_kind("user") {
                continue;
            }
            if let Some(email) = &entity.profile_email {
                let first = *first_by_email.entry(fold(email)).or_insert(i);
                sets.union(first, i);
            }
            if let Some(id) = entity.scim_id() {
                let first = *first_by_id.entry(fold(id)).or_insert(i);
                sets.union(first, i);
            }
        }
        let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, entity) in self.catalog.iter().enumerate() {
            if !flagged[i] && entity.is_kind("user") {
                groups.entry(sets.find(i)).or_default().push(i);
            }
        }
        for mut members in groups.into_values().filter(|m| m.len() > 1) {
            members.sort_by_cached_key(|&i| self.keep_rank(i));
            let kept = members[0];
            for &other in &members[1..] {
                findings.push(self.duplicate(other, kept));
            }
        }
    }

    /// Which entity of a duplicate group to keep: the one at the user's own
    /// Backstage name, then Roster's, then one that something still emits,
    /// then the first by ref.
    fn keep_rank(&self, i: usize) -> (bool, bool, bool, String) {
        let entity = &self.catalog[i];
        let at_own_name = match self.identities[i] {
            Identity::User(user, _) => {
                self.in_roster_namespace(entity)
                    && user.entity_name.as_deref().map(fold) == Some(fold(&entity.name))
            }
            _ => false,
        };
        (
            !at_own_name,
            entity.scim_id().is_none(),
            entity.is_orphan(),
            entity.entity_ref().key().to_owned(),
        )
    }

    fn duplicate(&self, i: usize, kept: usize) -> Finding {
        let entity = &self.catalog[i];
        let keeper = &self.catalog[kept];
        let keeper_ref = keeper.entity_ref();
        let mut evidence = Vec::new();
        let same_email = match (&entity.profile_email, &keeper.profile_email) {
            (Some(a), Some(b)) if fold(a) == fold(b) => Some(a),
            _ => None,
        };
        let same_id = match (entity.scim_id(), keeper.scim_id()) {
            (Some(a), Some(b)) if fold(a) == fold(b) => Some(a),
            _ => None,
        };
        if let Some(email) = same_email {
            evidence.push(format!(
                "same profile.email `{email}` as {keeper_ref}: sign-in resolvers that match on \
                 email refuse to choose between two users"
            ));
        }
        if let Some(id) = same_id {
            evidence.push(format!(
                "same {} `{id}` as {keeper_ref}",
                annotations::SCIM_ID
            ));
        }
        if same_email.is_none() && same_id.is_none() {
            evidence.push(format!(
                "linked to {keeper_ref} through other users with the same email or id"
            ));
        }
        let directory_id = match self.identities[i] {
            Identity::User(user, by) => {
                evidence.push(format!(
                    "matches directory user `{}` (id `{}`) by {}",
                    user.user_name,
                    user.id,
                    by.describe()
                ));
                Some(user.id.as_str())
            }
            _ => None,
        };
        evidence.push(format!("{keeper_ref} is kept: {}", self.keep_reason(kept)));
        evidence.push(location_evidence(entity));
        let two_people = match (self.identities[i], self.identities[kept]) {
            (Identity::User(a, _), Identity::User(b, _)) if a.id != b.id => Some((a, b)),
            _ => None,
        };
        let fix = if let Some((a, b)) = two_people {
            // Two live directory users share the email: the catalog is a
            // faithful copy, and the identity provider is where to fix it.
            ProposedFix {
                action: FixAction::None,
                applicable: false,
                instructions: Some(format!(
                    "directory users `{}` and `{}` share this email: correct it in the identity \
                     provider",
                    b.user_name, a.user_name
                )),
            }
        } else if entity.is_orphan() {
            ProposedFix {
                action: delete(entity),
                applicable: true,
                instructions: None,
            }
        } else if entity.scim_id().is_some() {
            ProposedFix {
                action: refresh(entity),
                applicable: true,
                instructions: Some(
                    "the feed publishes one entity per person; a refresh lets the catalog \
                     orphan the stale one, which a later run deletes"
                        .to_owned(),
                ),
            }
        } else {
            ProposedFix {
                action: delete(entity),
                applicable: false,
                instructions: Some(format!(
                    "it is not Roster's: remove it (or its profile.email) from {}",
                    location_or_unknown(entity)
                )),
            }
        };
        Finding {
            kind: FindingKind::Duplicate,
            subject: entity_subject(entity, directory_id),
            evidence,
            fix,
        }
    }

    fn keep_reason(&self, kept: usize) -> &'static str {
        match self.keep_rank(kept) {
            (false, _, _, _) => "it has the user's Backstage name",
            (true, false, _, _) => "Roster publishes it",
            (true, true, false, _) => "it is still emitted by its location",
            (true, true, true, _) => "it is first by name",
        }
    }

    // ----- missing users -----

    fn missing_users(&self, findings: &mut Vec<Finding>) {
        for user in self.directory.users.iter().filter(|user| user.active) {
            if let Some(finding) = self.missing_user(user) {
                findings.push(finding);
            }
        }
    }

    fn missing_user(&self, user: &DirUser) -> Option<Finding> {
        let who = format!(
            "directory user `{}` (id `{}`) is active",
            user.user_name, user.id
        );
        let publish = ProposedFix {
            action: FixAction::PublishUser {
                id: user.id.clone(),
            },
            applicable: false,
            instructions: Some(
                "the feed lists this user: Backstage adds it at its next read of the feed \
                 (a refresh of the feed location hurries it); if it stays missing, look for \
                 processing errors on the feed location (catalog.rules must allow User)"
                    .to_owned(),
            ),
        };
        let Some(expected) = self.user_ref(user) else {
            return Some(Finding {
                kind: FindingKind::MissingUser,
                subject: Subject {
                    entity_ref: None,
                    uid: None,
                    directory_id: Some(user.id.clone()),
                },
                evidence: vec![format!("{who} but has no Backstage name assigned yet")],
                fix: publish,
            });
        };
        let subject = |uid: Option<&str>| Subject {
            entity_ref: Some(expected.clone()),
            uid: uid.map(str::to_owned),
            directory_id: Some(user.id.clone()),
        };
        match self.by_ref.get(expected.key()).map(|&i| &self.catalog[i]) {
            Some(entity) if entity.scim_id().is_some() => None,
            Some(entity) => Some(Finding {
                kind: FindingKind::MissingUser,
                subject: subject(Some(&entity.uid)),
                evidence: vec![
                    format!(
                        "{who}, and {expected} exists but is not Roster's (no {} annotation)",
                        annotations::SCIM_ID
                    ),
                    "the catalog keeps the entity that claimed a name first and rejects the \
                     feed's entity of the same name"
                        .to_owned(),
                    location_evidence(entity),
                ],
                fix: ProposedFix {
                    action: FixAction::None,
                    applicable: false,
                    instructions: Some(format!(
                        "remove {expected} from {} so that the feed's entity can take its place",
                        location_or_unknown(entity)
                    )),
                },
            }),
            None => {
                let mut evidence = vec![format!("{who}, but the catalog has no {expected}")];
                if let Some(stale) = self.users_by_scim_id.get(&fold(&user.id)) {
                    let mut refs: Vec<String> = stale
                        .iter()
                        .map(|&i| self.catalog[i].entity_ref().to_string())
                        .collect();
                    refs.sort();
                    evidence.push(format!(
                        "the catalog has {} with this user's {}: it still holds an earlier name",
                        refs.join(", "),
                        annotations::SCIM_ID
                    ));
                }
                Some(Finding {
                    kind: FindingKind::MissingUser,
                    subject: subject(None),
                    evidence,
                    fix: publish,
                })
            }
        }
    }

    // ----- dangling owners -----

    fn dangling_owners(&self, findings: &mut Vec<Finding>) {
        for entity in self.catalog {
            if entity.spec_owner.is_none() && entity.relations.is_empty() {
                continue;
            }
            for (owner, source) in self.owners(entity) {
                if !matches!(owner.kind(), "user" | "group") {
                    continue;
                }
                let state = self.owner_state(&owner);
                if !matches!(state, OwnerState::Live) {
                    findings.push(self.dangling(entity, owner, &source, state));
                }
            }
        }
    }

    /// The entity's owners: `spec.owner` (kind defaults to Group, namespace
    /// to the entity's own, as in Backstage) and its `ownedBy` relations,
    /// once each. Each comes with a sentence saying where it was read.
    fn owners(&self, entity: &CatalogEntity) -> Vec<(EntityRef, String)> {
        let mut owners: Vec<(EntityRef, String)> = Vec::new();
        if let Some(raw) = &entity.spec_owner {
            if let Some(owner) = EntityRef::parse(raw, "group", &entity.namespace) {
                let source = if raw.trim() == owner.as_str() {
                    format!("spec.owner is {owner}")
                } else {
                    format!("spec.owner is `{raw}`, which means {owner}")
                };
                owners.push((owner, source));
            }
        }
        for target in entity.relation_targets("ownedBy") {
            if let Some(owner) = EntityRef::parse(target, "group", &entity.namespace) {
                if !owners.iter().any(|(known, _)| *known == owner) {
                    let source = format!("its ownedBy relation points at {owner}");
                    owners.push((owner, source));
                }
            }
        }
        owners
    }

    fn owner_state(&self, owner: &EntityRef) -> OwnerState<'a> {
        let in_namespace = fold(owner.namespace()) == self.namespace;
        let name = fold(owner.name());
        match owner.kind() {
            "user" => {
                // The directory decides for names it has assigned, whatever
                // the catalog holds at that name right now.
                if let Some(user) = in_namespace
                    .then(|| self.users_by_entity_name.get(&name))
                    .flatten()
                {
                    return if user.active {
                        OwnerState::Live
                    } else {
                        OwnerState::Deactivated(user)
                    };
                }
            }
            "group" => {
                if in_namespace && self.groups_by_entity_name.contains_key(&name) {
                    return OwnerState::Live;
                }
            }
            _ => return OwnerState::Live,
        }
        match self.by_ref.get(owner.key()) {
            None => OwnerState::Gone,
            Some(&i) => match self.identities[i] {
                Identity::User(user, _) if !user.active => OwnerState::Deactivated(user),
                Identity::AnnotatedGhost(_) | Identity::UnmatchedGhost
                    if self.ghost_delete_applies(i) =>
                {
                    OwnerState::Ghost(i)
                }
                _ => OwnerState::Live,
            },
        }
    }

    fn dangling(
        &self,
        entity: &CatalogEntity,
        owner: EntityRef,
        source: &str,
        state: OwnerState<'a>,
    ) -> Finding {
        let mut evidence = vec![source.to_owned()];
        let mut directory_id = None;
        match state {
            OwnerState::Live => {}
            OwnerState::Gone => evidence.push(format!(
                "{owner} is neither in the catalog nor in the directory"
            )),
            OwnerState::Deactivated(user) => {
                directory_id = Some(user.id.as_str());
                evidence.push(format!(
                    "{owner} is directory user `{}` (id `{}`), who is deactivated",
                    user.user_name, user.id
                ));
            }
            OwnerState::Ghost(i) => {
                let why = match self.identities[i] {
                    Identity::AnnotatedGhost(id) => format!(
                        "its {} `{id}` names no directory record",
                        annotations::SCIM_ID
                    ),
                    _ => "it is an orphan that matches no directory record".to_owned(),
                };
                evidence.push(format!(
                    "{owner} is a ghost ({why}); deleting it, as proposed, leaves this owner \
                     dangling"
                ));
            }
        }
        let (to, notes) = self.propose_owner(&owner, state);
        evidence.extend(notes);
        evidence.push(location_evidence(entity));
        let place = location_or_unknown(entity);
        let instructions = match &to {
            Some(to) => format!(
                "set spec.owner to {to} in {place}: owners live in files Roster does not write"
            ),
            None => format!(
                "choose a new owner and set spec.owner in {place}; configure a fallback owner \
                 to have Roster propose one"
            ),
        };
        Finding {
            kind: FindingKind::DanglingOwner,
            subject: entity_subject(entity, directory_id),
            evidence,
            fix: ProposedFix {
                action: FixAction::ChangeOwner {
                    entity_ref: entity.entity_ref(),
                    from: owner,
                    to,
                },
                applicable: false,
                instructions: Some(instructions),
            },
        }
    }

    /// A new owner for what `owner` owned, with a sentence per candidate
    /// considered. Candidates in order: the person's manager, their groups
    /// (the primary one first), the configured fallback. Every candidate
    /// passes [`Self::owner_state`], so a gone or deactivated owner is never
    /// proposed.
    fn propose_owner(
        &self,
        owner: &EntityRef,
        state: OwnerState<'a>,
    ) -> (Option<EntityRef>, Vec<String>) {
        let mut notes = Vec::new();
        if let Some(handover) = self.handover_for(owner, state) {
            match EntityRef::parse(&handover.successor, "group", &self.config.namespace)
                .filter(|to| matches!(to.kind(), "user" | "group"))
            {
                None => notes.push(format!(
                    "the handover recorded for `{}` names `{}`, which is not a user or group \
                     reference",
                    handover.user_name, handover.successor
                )),
                Some(candidate) => {
                    let role = format!(
                        "successor recorded when `{}` left ({})",
                        handover.user_name, handover.reason
                    );
                    if let Some(to) = self.accept(candidate, &role, &mut notes) {
                        return (Some(to), notes);
                    }
                }
            }
        }
        match state {
            OwnerState::Deactivated(user) => {
                match user.manager_id.as_deref() {
                    None => notes.push(format!(
                        "`{}` has no manager in the directory",
                        user.user_name
                    )),
                    Some(manager_id) => match self.users_by_id.get(&fold(manager_id)) {
                        None => notes.push(format!(
                            "manager id `{manager_id}` of `{}` is not in the directory",
                            user.user_name
                        )),
                        Some(manager) => match self.user_ref(manager) {
                            None => notes.push(format!(
                                "manager `{}` has no Backstage name yet",
                                manager.user_name
                            )),
                            Some(candidate) => {
                                if let Some(to) = self.accept(candidate, "manager", &mut notes) {
                                    return (Some(to), notes);
                                }
                            }
                        },
                    },
                }
                if user.group_ids.is_empty() {
                    notes.push(format!("`{}` is in no directory group", user.user_name));
                }
                for (n, group_id) in user.group_ids.iter().enumerate() {
                    let role = if n == 0 { "primary group" } else { "group" };
                    match self
                        .groups_by_id
                        .get(&fold(group_id))
                        .and_then(|g| self.group_ref(g))
                    {
                        None => notes.push(format!("{role} id `{group_id}` has no Backstage name")),
                        Some(candidate) => {
                            if let Some(to) = self.accept(candidate, role, &mut notes) {
                                return (Some(to), notes);
                            }
                        }
                    }
                }
            }
            OwnerState::Ghost(i) => {
                // The directory knows nothing more; the catalog still has the
                // ghost's own links: a user's groups, a group's parent.
                let ghost = &self.catalog[i];
                let (relation, role) = if ghost.is_kind("user") {
                    ("memberOf", "group it was in")
                } else {
                    ("childOf", "parent group")
                };
                for target in ghost.relation_targets(relation) {
                    if let Some(candidate) = EntityRef::parse(target, "group", &ghost.namespace) {
                        if let Some(to) = self.accept(candidate, role, &mut notes) {
                            return (Some(to), notes);
                        }
                    }
                }
            }
            OwnerState::Gone => notes.push(format!(
                "nothing is known about {owner}: no manager or group to ask"
            )),
            OwnerState::Live => return (None, notes),
        }
        match &self.fallback {
            Fallback::NotConfigured => notes.push("no fallback owner is configured".to_owned()),
            Fallback::Unusable(raw) => notes.push(format!(
                "the configured fallback owner `{raw}` is not a user or group reference"
            )),
            Fallback::Ref(candidate) => {
                if let Some(to) = self.accept(candidate.clone(), "fallback owner", &mut notes) {
                    return (Some(to), notes);
                }
            }
        }
        (None, notes)
    }

    /// The handover Roster recorded for the user `owner` names: by the
    /// directory user's id, the ghost's `roster.dev/scim-id`, or the user's
    /// Backstage name in Roster's namespace.
    fn handover_for(&self, owner: &EntityRef, state: OwnerState<'a>) -> Option<&'a DirHandover> {
        if owner.kind() != "user" || self.directory.handovers.is_empty() {
            return None;
        }
        let by_id = match state {
            OwnerState::Deactivated(user) => Some(user.id.as_str()),
            OwnerState::Ghost(i) => self.catalog[i].scim_id(),
            OwnerState::Gone | OwnerState::Live => None,
        };
        by_id
            .and_then(|id| self.handovers_by_user_id.get(&fold(id)))
            .or_else(|| {
                (fold(owner.namespace()) == self.namespace)
                    .then(|| self.handovers_by_entity_name.get(&fold(owner.name())))
                    .flatten()
            })
            .copied()
    }

    fn accept(
        &self,
        candidate: EntityRef,
        role: &str,
        notes: &mut Vec<String>,
    ) -> Option<EntityRef> {
        let problem = match self.owner_state(&candidate) {
            OwnerState::Live => {
                notes.push(format!("proposed: the {role}, {candidate}"));
                return Some(candidate);
            }
            OwnerState::Gone => "is gone too",
            OwnerState::Deactivated(_) => "is deactivated too",
            OwnerState::Ghost(_) => "is a ghost too",
        };
        notes.push(format!("the {role}, {candidate}, {problem}"));
        None
    }
}

fn entity_subject(entity: &CatalogEntity, directory_id: Option<&str>) -> Subject {
    Subject {
        entity_ref: Some(entity.entity_ref()),
        uid: Some(entity.uid.clone()),
        directory_id: directory_id.map(str::to_owned),
    }
}

fn delete(entity: &CatalogEntity) -> FixAction {
    FixAction::DeleteEntity {
        uid: entity.uid.clone(),
        entity_ref: entity.entity_ref(),
    }
}

fn refresh(entity: &CatalogEntity) -> FixAction {
    FixAction::RefreshLocation {
        entity_ref: entity.entity_ref(),
        location: entity.managed_by_location.clone(),
    }
}

fn location_evidence(entity: &CatalogEntity) -> String {
    match (&entity.managed_by_location, entity.is_orphan()) {
        (Some(location), true) => format!(
            "orphan ({}: \"true\"): {location} no longer emits it",
            annotations::ORPHAN
        ),
        (None, true) => format!(
            "orphan ({}: \"true\"): nothing emits it",
            annotations::ORPHAN
        ),
        (Some(location), false) => format!("emitted by {location}"),
        (None, false) => format!(
            "no {} annotation: added by an entity provider or through the API",
            annotations::MANAGED_BY_LOCATION
        ),
    }
}

fn location_or_unknown(entity: &CatalogEntity) -> String {
    match &entity.managed_by_location {
        Some(location) => location.clone(),
        None => "its source (no managed-by-location annotation)".to_owned(),
    }
}

/// Union-find with path halving, for grouping duplicates in linear time.
struct DisjointSets {
    parent: Vec<usize>,
}

impl DisjointSets {
    fn new(size: usize) -> Self {
        Self {
            parent: (0..size).collect(),
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.parent[b] = a;
        }
    }
}
