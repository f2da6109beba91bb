//! Reconciliation: one table of (directory, catalog, expected findings),
//! renderers, planning and applying, and properties over generated data.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use proptest::prelude::*;
use roster_backstage::client::{CatalogError, Deletion};
use roster_backstage::reconcile::{
    annotations, apply_fixes, plan_fixes, reconcile, render_csv, render_json, render_table,
    CatalogEntity, CatalogWriter, DirGroup, DirHandover, DirUser, DirectorySnapshot, EntityRef,
    Finding, FindingKind, FixAction, Outcome, ReconcileConfig, Relation, Report,
};
use serde_json::Value;

// ----- building directories and catalogs -----

const FEED: &str = "url:http://roster.test/backstage/catalog.yaml";
const REPO: &str = "url:https://git.example/acme/people/blob/main/users.yaml";
const SERVICE: &str = "url:https://git.example/acme/svc/blob/main/catalog-info.yaml";

/// An active user whose id, userName and Backstage name derive from `name`.
fn user(id: &str, name: &str) -> DirUser {
    DirUser {
        id: id.to_owned(),
        user_name: name.to_owned(),
        entity_name: Some(name.to_owned()),
        email: Some(format!("{name}@acme.example")),
        active: true,
        ..DirUser::default()
    }
}

fn group(id: &str, name: &str) -> DirGroup {
    DirGroup {
        id: id.to_owned(),
        display_name: name.to_owned(),
        entity_name: Some(name.to_owned()),
        member_ids: Vec::new(),
    }
}

trait UserExt {
    fn inactive(self) -> Self;
    fn manager(self, id: &str) -> Self;
    fn groups(self, ids: &[&str]) -> Self;
    fn unnamed(self) -> Self;
    fn user_name(self, user_name: &str) -> Self;
    fn email(self, email: &str) -> Self;
    fn external(self, external_id: &str) -> Self;
}

impl UserExt for DirUser {
    fn inactive(self) -> Self {
        Self {
            active: false,
            ..self
        }
    }
    fn manager(self, id: &str) -> Self {
        Self {
            manager_id: Some(id.to_owned()),
            ..self
        }
    }
    fn groups(self, ids: &[&str]) -> Self {
        Self {
            group_ids: ids.iter().map(|id| id.to_string()).collect(),
            ..self
        }
    }
    fn unnamed(self) -> Self {
        Self {
            entity_name: None,
            ..self
        }
    }
    fn user_name(self, user_name: &str) -> Self {
        Self {
            user_name: user_name.to_owned(),
            ..self
        }
    }
    fn email(self, email: &str) -> Self {
        Self {
            email: Some(email.to_owned()),
            ..self
        }
    }
    fn external(self, external_id: &str) -> Self {
        Self {
            external_id: Some(external_id.to_owned()),
            ..self
        }
    }
}

/// A bare entity: uid `uid-<name>`, namespace `default`, no annotations.
fn entity(kind: &str, name: &str) -> CatalogEntity {
    CatalogEntity {
        uid: format!("uid-{name}"),
        kind: kind.to_owned(),
        namespace: "default".to_owned(),
        name: name.to_owned(),
        ..CatalogEntity::default()
    }
}

fn cat_user(name: &str) -> CatalogEntity {
    entity("User", name)
}

fn cat_group(name: &str) -> CatalogEntity {
    entity("Group", name)
}

fn component(name: &str) -> CatalogEntity {
    entity("Component", name).at(SERVICE)
}

/// What Roster's feed publishes for a directory user.
fn feed_user(user: &DirUser) -> CatalogEntity {
    let mut e = cat_user(user.entity_name.as_deref().unwrap())
        .scim(&user.id)
        .at(FEED);
    if let Some(email) = &user.email {
        e = e.email(email);
    }
    e
}

fn feed_group(group: &DirGroup) -> CatalogEntity {
    cat_group(group.entity_name.as_deref().unwrap())
        .scim(&group.id)
        .at(FEED)
}

trait EntityExt {
    fn annotate(self, key: &str, value: &str) -> Self;
    fn scim(self, id: &str) -> Self;
    fn at(self, location: &str) -> Self;
    fn orphan(self) -> Self;
    fn email(self, email: &str) -> Self;
    fn ns(self, namespace: &str) -> Self;
    fn uid(self, uid: &str) -> Self;
    fn owner(self, owner: &str) -> Self;
    fn relation(self, relation_type: &str, target: &str) -> Self;
}

impl EntityExt for CatalogEntity {
    fn annotate(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_owned(), value.to_owned());
        self
    }
    fn scim(self, id: &str) -> Self {
        self.annotate(annotations::SCIM_ID, id)
    }
    fn at(mut self, location: &str) -> Self {
        self.managed_by_location = Some(location.to_owned());
        self.annotate(annotations::MANAGED_BY_LOCATION, location)
    }
    fn orphan(self) -> Self {
        self.annotate(annotations::ORPHAN, "true")
    }
    fn email(self, email: &str) -> Self {
        Self {
            profile_email: Some(email.to_owned()),
            ..self
        }
    }
    fn ns(self, namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            ..self
        }
    }
    fn uid(self, uid: &str) -> Self {
        Self {
            uid: uid.to_owned(),
            ..self
        }
    }
    fn owner(mut self, owner: &str) -> Self {
        self.spec_owner = Some(owner.to_owned());
        // The catalog computes the relation from spec.owner.
        if let Some(target) = EntityRef::parse(owner, "group", &self.namespace) {
            self = self.relation("ownedBy", &target.to_string().to_lowercase());
        }
        self
    }
    fn relation(mut self, relation_type: &str, target: &str) -> Self {
        self.relations.push(Relation {
            relation_type: relation_type.to_owned(),
            target_ref: target.to_owned(),
        });
        self
    }
}

/// One line per finding: `kind subject => fix`, and ` (manual)` when
/// `apply` would not run the fix.
fn line(finding: &Finding) -> String {
    format!(
        "{} {} => {}{}",
        finding.kind,
        finding.subject,
        finding.fix.action,
        if finding.fix.applicable {
            ""
        } else {
            " (manual)"
        }
    )
}

#[derive(Default)]
struct Case {
    name: &'static str,
    users: Vec<DirUser>,
    groups: Vec<DirGroup>,
    catalog: Vec<CatalogEntity>,
    /// Roster's handover map: who took over from departed users.
    handovers: Vec<DirHandover>,
    fallback: Option<&'static str>,
    expect: &'static [&'static str],
    /// Sentences (or parts) that must appear in the findings' evidence or
    /// instructions.
    evidence: &'static [&'static str],
}

fn run(case: &Case) -> Report {
    let directory = DirectorySnapshot {
        users: case.users.clone(),
        groups: case.groups.clone(),
        handovers: case.handovers.clone(),
    };
    let config = ReconcileConfig {
        fallback_owner: case.fallback.map(str::to_owned),
        ..ReconcileConfig::default()
    };
    reconcile(&directory, &case.catalog, &config)
}

fn jane() -> DirUser {
    user("u-jane", "jane")
}

fn boss() -> DirUser {
    user("u-boss", "boss")
}

fn team() -> DirGroup {
    group("g-team", "team-a")
}

fn platform() -> DirGroup {
    group("g-platform", "platform")
}

/// A handover recorded for departed user `id` (Backstage name `name`).
fn handover(id: &str, name: &str, successor: &str, reason: &str) -> DirHandover {
    DirHandover {
        user_id: id.to_owned(),
        user_name: name.to_owned(),
        entity_name: Some(name.to_owned()),
        successor: successor.to_owned(),
        reason: reason.to_owned(),
    }
}

fn cases() -> Vec<Case> {
    vec![
        // ----- agreement -----
        Case { name: "empty directory and catalog", ..Case::default() },
        Case {
            name: "the catalog is the feed of the directory",
            users: vec![jane().groups(&["g-team"]), boss()],
            groups: vec![team()],
            catalog: vec![
                feed_user(&jane()).relation("memberOf", "group:default/team-a"),
                feed_user(&boss()),
                feed_group(&team()),
                component("svc").owner("team-a"),
                component("api").owner("user:jane"),
            ],
            ..Case::default()
        },
        Case {
            name: "scim ids compare case-insensitively",
            users: vec![user("6C1E0A52-7D3F-4B8E-9A41-2F0C7D9B13AA", "jane")],
            catalog: vec![cat_user("jane").scim("6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa").at(FEED)],
            ..Case::default()
        },
        Case {
            name: "owner refs compare case-insensitively, short and long",
            users: vec![jane()],
            groups: vec![team()],
            catalog: vec![
                feed_user(&jane()),
                feed_group(&team()),
                component("svc").owner("Team-A"),
                component("api").owner("User:Default/JANE"),
                component("web").owner("group:default/TEAM-A"),
            ],
            ..Case::default()
        },
        // ----- ghosts judged by their annotation -----
        Case {
            name: "a Roster user whose directory record is gone, orphaned",
            catalog: vec![cat_user("bob").scim("u-bob").at(FEED).orphan()],
            expect: &["ghost-user user:default/bob => delete user:default/bob (uid uid-bob)"],
            evidence: &[
                "annotation roster.dev/scim-id is `u-bob`, and the directory has no user with this id",
                "orphan (backstage.io/orphan: \"true\"): url:http://roster.test/backstage/catalog.yaml no longer emits it",
            ],
            ..Case::default()
        },
        Case {
            name: "a Roster user whose record is gone, not yet orphaned",
            catalog: vec![cat_user("bob").scim("u-bob").at(FEED)],
            expect: &["ghost-user user:default/bob => delete user:default/bob (uid uid-bob)"],
            evidence: &["emitted by url:http://roster.test", "the delete holds once Backstage has re-read the feed"],
            ..Case::default()
        },
        Case {
            name: "an annotated ghost is a ghost even when a live user has its name",
            users: vec![jane()],
            catalog: vec![cat_user("jane").scim("u-old-jane").email("jane@acme.example").at(FEED)],
            expect: &["ghost-user user:default/jane => delete user:default/jane (uid uid-jane)"],
            evidence: &["`u-old-jane`, and the directory has no user with this id"],
            ..Case::default()
        },
        Case {
            name: "a ghost whose person the identity provider created again",
            users: vec![user("u-new", "jane.doe").external("00u-okta")],
            catalog: vec![
                cat_user("jane").scim("u-old").annotate(annotations::EXTERNAL_ID, "00u-okta").at(FEED),
                feed_user(&user("u-new", "jane.doe")),
            ],
            expect: &["ghost-user user:default/jane => delete user:default/jane (uid uid-jane)"],
            evidence: &["directory user `jane.doe` (id `u-new`) has the same roster.dev/external-id `00u-okta`", "publishes them as user:default/jane.doe"],
            ..Case::default()
        },
        Case {
            name: "a Roster group whose record is gone",
            catalog: vec![cat_group("old-team").scim("g-old").at(FEED).orphan()],
            expect: &["ghost-group group:default/old-team => delete group:default/old-team (uid uid-old-team)"],
            evidence: &["the directory has no group with this id"],
            ..Case::default()
        },
        Case {
            name: "a group annotated with a user's id is a ghost group",
            users: vec![jane()],
            catalog: vec![feed_user(&jane()), cat_group("jane-team").scim("u-jane").at(FEED)],
            expect: &["ghost-group group:default/jane-team => delete group:default/jane-team (uid uid-jane-team)"],
            ..Case::default()
        },
        // ----- entities that are not Roster's, matched by name and email -----
        Case {
            name: "someone else's user matching nobody, orphaned: deleted",
            users: vec![jane()],
            catalog: vec![feed_user(&jane()), cat_user("old.contractor").email("oc@acme.example").at(REPO).orphan()],
            expect: &["ghost-user user:default/old.contractor => delete user:default/old.contractor (uid uid-old.contractor)"],
            evidence: &[
                "not managed by Roster: no roster.dev/scim-id annotation",
                "no directory user has the Backstage name or userName `old.contractor`",
                "no directory user has the email `oc@acme.example`",
            ],
            ..Case::default()
        },
        Case {
            name: "someone else's user matching nobody, still emitted: manual",
            catalog: vec![cat_user("build-bot").at(REPO)],
            expect: &["ghost-user user:default/build-bot => delete user:default/build-bot (uid uid-build-bot) (manual)"],
            evidence: &["no profile.email to match on", "it comes back while url:https://git.example/acme/people/blob/main/users.yaml emits it"],
            ..Case::default()
        },
        Case {
            name: "someone else's user without a location",
            catalog: vec![cat_user("api-made")],
            expect: &["ghost-user user:default/api-made => delete user:default/api-made (uid uid-api-made) (manual)"],
            evidence: &["no backstage.io/managed-by-location annotation"],
            ..Case::default()
        },
        Case {
            name: "someone else's user matched by userName is that user",
            users: vec![jane().user_name("jdoe")],
            catalog: vec![feed_user(&jane()), cat_user("jdoe").at(REPO)],
            ..Case::default()
        },
        Case {
            name: "someone else's user matched by external id is that user",
            users: vec![jane().external("00u-x")],
            catalog: vec![feed_user(&jane()), cat_user("j").annotate(annotations::EXTERNAL_ID, "00u-x").at(REPO)],
            ..Case::default()
        },
        Case {
            name: "a name outside Roster's namespace matches nothing",
            users: vec![jane().email("jane@acme.example")],
            catalog: vec![feed_user(&jane()), cat_user("jane").ns("partners").uid("uid-p-jane").at(REPO)],
            expect: &["ghost-user user:partners/jane => delete user:partners/jane (uid uid-p-jane) (manual)"],
            evidence: &["in namespace `partners`, not `default` where Roster publishes"],
            ..Case::default()
        },
        Case {
            name: "an email matches in any namespace, and makes a duplicate",
            users: vec![jane()],
            catalog: vec![feed_user(&jane()), cat_user("jd").ns("github").uid("uid-gh").email("JANE@acme.example").at(REPO)],
            expect: &["duplicate user:github/jd => delete user:github/jd (uid uid-gh) (manual)"],
            evidence: &[
                "same profile.email `JANE@acme.example` as user:default/jane",
                "matches directory user `jane` (id `u-jane`) by profile.email",
                "user:default/jane is kept: it has the user's Backstage name",
                "remove it (or its profile.email) from url:https://git.example",
            ],
            ..Case::default()
        },
        Case {
            name: "someone else's group matching a directory group's display name",
            groups: vec![DirGroup { display_name: "payments".to_owned(), ..group("g-pay", "payments-core") }],
            catalog: vec![feed_group(&group("g-pay", "payments-core")), cat_group("payments").at(REPO)],
            ..Case::default()
        },
        Case {
            name: "someone else's group matching nothing, orphaned",
            catalog: vec![cat_group("guild").at(REPO).orphan()],
            expect: &["ghost-group group:default/guild => delete group:default/guild (uid uid-guild)"],
            evidence: &["no directory group has the Backstage name or display name `guild`"],
            ..Case::default()
        },
        // ----- deactivated users -----
        Case {
            name: "deactivated, the catalog still has the feed's old copy",
            users: vec![jane().inactive()],
            catalog: vec![feed_user(&jane())],
            expect: &["deactivated-user user:default/jane => refresh user:default/jane"],
            evidence: &[
                "matches directory user `jane` (id `u-jane`) by its roster.dev/scim-id annotation",
                "the directory marks this user deactivated (active: false)",
                "a refresh makes it re-read the feed",
            ],
            ..Case::default()
        },
        Case {
            name: "deactivated and orphaned",
            users: vec![jane().inactive()],
            catalog: vec![feed_user(&jane()).orphan()],
            expect: &["deactivated-user user:default/jane => delete user:default/jane (uid uid-jane)"],
            ..Case::default()
        },
        Case {
            name: "deactivated, and the feed says so",
            users: vec![jane().inactive()],
            catalog: vec![feed_user(&jane()).annotate(annotations::STATUS, "inactive")],
            expect: &["deactivated-user user:default/jane => none (manual)"],
            evidence: &["annotation roster.dev/status is `inactive`", "the catalog already shows the deactivation"],
            ..Case::default()
        },
        Case {
            name: "deactivated, the feed's status annotation is stale",
            users: vec![jane().inactive()],
            catalog: vec![feed_user(&jane()).annotate(annotations::STATUS, "active")],
            expect: &["deactivated-user user:default/jane => refresh user:default/jane"],
            ..Case::default()
        },
        Case {
            name: "deactivated, someone else's entity matched by email",
            users: vec![jane().inactive()],
            catalog: vec![cat_user("jd").email("jane@acme.example").at(REPO)],
            expect: &["deactivated-user user:default/jd => delete user:default/jd (uid uid-jd) (manual)"],
            evidence: &["by profile.email", "it is not Roster's: remove it from url:https://git.example"],
            ..Case::default()
        },
        Case {
            name: "deactivated and not in the catalog: nothing to say",
            users: vec![jane().inactive()],
            ..Case::default()
        },
        // ----- missing users -----
        Case {
            name: "an active user the catalog lacks",
            users: vec![jane()],
            expect: &["missing-user user:default/jane => publish directory user u-jane (manual)"],
            evidence: &["directory user `jane` (id `u-jane`) is active, but the catalog has no user:default/jane", "catalog.rules must allow User"],
            ..Case::default()
        },
        Case {
            name: "an active user without a Backstage name yet",
            users: vec![jane().unnamed()],
            expect: &["missing-user directory user u-jane => publish directory user u-jane (manual)"],
            evidence: &["has no Backstage name assigned yet"],
            ..Case::default()
        },
        Case {
            name: "the catalog still holds an earlier name",
            users: vec![jane()],
            catalog: vec![cat_user("jane.old").scim("u-jane").at(FEED)],
            expect: &["missing-user user:default/jane => publish directory user u-jane (manual)"],
            evidence: &["the catalog has user:default/jane.old with this user's roster.dev/scim-id"],
            ..Case::default()
        },
        Case {
            name: "the user's name is taken by someone else's entity",
            users: vec![jane()],
            catalog: vec![cat_user("jane").at(REPO)],
            expect: &["missing-user user:default/jane => none (manual)"],
            evidence: &["user:default/jane exists but is not Roster's", "remove user:default/jane from url:https://git.example"],
            ..Case::default()
        },
        // ----- duplicates -----
        Case {
            name: "renamed: the old name is still emitted",
            users: vec![jane()],
            catalog: vec![feed_user(&jane()), cat_user("jane.old").scim("u-jane").at(FEED)],
            expect: &["duplicate user:default/jane.old => refresh user:default/jane.old"],
            evidence: &["same roster.dev/scim-id `u-jane` as user:default/jane"],
            ..Case::default()
        },
        Case {
            name: "renamed: the old name is orphaned",
            users: vec![jane()],
            catalog: vec![feed_user(&jane()), cat_user("jane.old").scim("u-jane").at(FEED).orphan()],
            expect: &["duplicate user:default/jane.old => delete user:default/jane.old (uid uid-jane.old)"],
            ..Case::default()
        },
        Case {
            name: "three entities for one person, linked by id and by email",
            users: vec![jane()],
            catalog: vec![
                feed_user(&jane()),
                cat_user("jane.old").scim("u-jane").email("old@acme.example").at(FEED),
                cat_user("jd").ns("github").uid("uid-gh").email("jane@acme.example").at(REPO),
            ],
            expect: &[
                "duplicate user:default/jane.old => refresh user:default/jane.old",
                "duplicate user:github/jd => delete user:github/jd (uid uid-gh) (manual)",
            ],
            ..Case::default()
        },
        Case {
            name: "two directory users with one email",
            users: vec![jane(), user("u-j2", "jane2").email("jane@acme.example")],
            catalog: vec![feed_user(&jane()), feed_user(&user("u-j2", "jane2").email("jane@acme.example"))],
            expect: &["duplicate user:default/jane2 => none (manual)"],
            evidence: &["directory users `jane` and `jane2` share this email: correct it in the identity provider"],
            ..Case::default()
        },
        Case {
            name: "a ghost sharing a live user's email is reported once, as a ghost",
            users: vec![jane()],
            catalog: vec![feed_user(&jane()), cat_user("jane.x").scim("u-gone").email("jane@acme.example").at(FEED).orphan()],
            expect: &["ghost-user user:default/jane.x => delete user:default/jane.x (uid uid-jane.x)"],
            ..Case::default()
        },
        Case {
            name: "emails compare case-insensitively for duplicates",
            catalog: vec![
                cat_user("a").email("Sam@Acme.example").at(REPO),
                cat_user("b").email("sam@acme.EXAMPLE").at(REPO).orphan(),
            ],
            expect: &[
                "ghost-user user:default/a => delete user:default/a (uid uid-a) (manual)",
                "ghost-user user:default/b => delete user:default/b (uid uid-b)",
            ],
            ..Case::default()
        },
        // ----- dangling owners -----
        Case {
            name: "owned by a group nobody knows, no fallback",
            catalog: vec![component("svc").owner("team-x")],
            expect: &["dangling-owner component:default/svc => change owner group:default/team-x -> (none found) (manual)"],
            evidence: &[
                "spec.owner is `team-x`, which means group:default/team-x",
                "group:default/team-x is neither in the catalog nor in the directory",
                "no fallback owner is configured",
                "choose a new owner and set spec.owner in url:https://git.example/acme/svc",
            ],
            ..Case::default()
        },
        Case {
            name: "owned by a gone group, fallback group proposed",
            groups: vec![platform()],
            catalog: vec![feed_group(&platform()), component("svc").owner("team-x")],
            fallback: Some("platform"),
            expect: &["dangling-owner component:default/svc => change owner group:default/team-x -> group:default/platform (manual)"],
            evidence: &["proposed: the fallback owner, group:default/platform", "set spec.owner to group:default/platform in url:https://git.example/acme/svc"],
            ..Case::default()
        },
        Case {
            name: "the fallback owner is gone too",
            catalog: vec![component("svc").owner("team-x")],
            fallback: Some("group:default/platform"),
            expect: &["dangling-owner component:default/svc => change owner group:default/team-x -> (none found) (manual)"],
            evidence: &["the fallback owner, group:default/platform, is gone too"],
            ..Case::default()
        },
        Case {
            name: "the fallback owner is a deactivated user",
            users: vec![boss().inactive()],
            catalog: vec![component("svc").owner("team-x")],
            fallback: Some("user:boss"),
            expect: &["dangling-owner component:default/svc => change owner group:default/team-x -> (none found) (manual)"],
            evidence: &["the fallback owner, user:default/boss, is deactivated too"],
            ..Case::default()
        },
        Case {
            name: "the fallback owner is not a user or group",
            catalog: vec![component("svc").owner("team-x")],
            fallback: Some("component:default/x"),
            expect: &["dangling-owner component:default/svc => change owner group:default/team-x -> (none found) (manual)"],
            evidence: &["the configured fallback owner `component:default/x` is not a user or group reference"],
            ..Case::default()
        },
        Case {
            name: "owned by a deactivated user: their manager",
            users: vec![jane().inactive().manager("u-boss").groups(&["g-team"]), boss()],
            groups: vec![team()],
            catalog: vec![feed_user(&boss()), feed_group(&team()), feed_user(&jane()).annotate(annotations::STATUS, "inactive"), component("svc").owner("user:jane")],
            expect: &[
                "deactivated-user user:default/jane => none (manual)",
                "dangling-owner component:default/svc => change owner user:default/jane -> user:default/boss (manual)",
            ],
            evidence: &["user:default/jane is directory user `jane` (id `u-jane`), who is deactivated", "proposed: the manager, user:default/boss"],
            ..Case::default()
        },
        Case {
            name: "owned by a deactivated user whose manager left too: the primary group",
            users: vec![jane().inactive().manager("u-boss").groups(&["g-team", "g-platform"]), boss().inactive()],
            groups: vec![team(), platform()],
            catalog: vec![component("svc").owner("user:default/jane")],
            expect: &["dangling-owner component:default/svc => change owner user:default/jane -> group:default/team-a (manual)"],
            evidence: &["the manager, user:default/boss, is deactivated too", "proposed: the primary group, group:default/team-a"],
            ..Case::default()
        },
        Case {
            name: "owned by a deactivated user whose manager is unknown: a group",
            users: vec![jane().inactive().manager("u-nobody").groups(&["g-team"])],
            groups: vec![team()],
            catalog: vec![component("svc").owner("user:jane")],
            expect: &["dangling-owner component:default/svc => change owner user:default/jane -> group:default/team-a (manual)"],
            evidence: &["manager id `u-nobody` of `jane` is not in the directory"],
            ..Case::default()
        },
        Case {
            name: "the primary group has no Backstage name: the next group",
            users: vec![jane().inactive().groups(&["g-new", "g-team"])],
            groups: vec![DirGroup { entity_name: None, ..group("g-new", "new") }, team()],
            catalog: vec![component("svc").owner("user:jane")],
            expect: &["dangling-owner component:default/svc => change owner user:default/jane -> group:default/team-a (manual)"],
            evidence: &["primary group id `g-new` has no Backstage name", "proposed: the group, group:default/team-a"],
            ..Case::default()
        },
        Case {
            name: "owned by a deactivated user with no manager and no group",
            users: vec![jane().inactive()],
            catalog: vec![component("svc").owner("user:jane")],
            expect: &["dangling-owner component:default/svc => change owner user:default/jane -> (none found) (manual)"],
            evidence: &["`jane` has no manager in the directory", "`jane` is in no directory group", "no fallback owner is configured"],
            ..Case::default()
        },
        Case {
            name: "owned by a ghost user: a group it was in",
            groups: vec![team()],
            catalog: vec![
                feed_group(&team()),
                cat_user("bob").scim("u-bob").at(FEED).orphan().relation("memberOf", "group:default/gone").relation("memberOf", "group:default/team-a"),
                component("svc").owner("user:bob"),
            ],
            expect: &[
                "ghost-user user:default/bob => delete user:default/bob (uid uid-bob)",
                "dangling-owner component:default/svc => change owner user:default/bob -> group:default/team-a (manual)",
            ],
            evidence: &["user:default/bob is a ghost (its roster.dev/scim-id `u-bob` names no directory record)", "the group it was in, group:default/gone, is gone too"],
            ..Case::default()
        },
        // ----- dangling owners: the handover map -----
        Case {
            name: "owned by a deleted user with a recorded handover: its successor, not the ghost's group",
            users: vec![boss()],
            groups: vec![team()],
            catalog: vec![
                feed_user(&boss()),
                feed_group(&team()),
                cat_user("bob").scim("u-bob").at(FEED).orphan().relation("memberOf", "group:default/team-a"),
                component("svc").owner("user:bob"),
            ],
            handovers: vec![handover("u-bob", "bob", "user:default/boss", "manager")],
            expect: &[
                "ghost-user user:default/bob => delete user:default/bob (uid uid-bob)",
                "dangling-owner component:default/svc => change owner user:default/bob -> user:default/boss (manual)",
            ],
            evidence: &["proposed: the successor recorded when `bob` left (manager), user:default/boss"],
            ..Case::default()
        },
        Case {
            name: "handover matched by scim id even when the ghost's name differs",
            users: vec![boss()],
            catalog: vec![
                feed_user(&boss()),
                cat_user("bob.old").scim("U-BOB").at(FEED).orphan(),
                component("svc").owner("user:bob.old"),
            ],
            handovers: vec![handover("u-bob", "bob", "group:default/platform", "manual")],
            groups: vec![platform()],
            expect: &[
                "ghost-user user:default/bob.old => delete user:default/bob.old (uid uid-bob.old)",
                "dangling-owner component:default/svc => change owner user:default/bob.old -> group:default/platform (manual)",
            ],
            evidence: &["proposed: the successor recorded when `bob` left (manual), group:default/platform"],
            ..Case::default()
        },
        Case {
            name: "owner already gone from the catalog: the handover by Backstage name",
            users: vec![boss()],
            catalog: vec![feed_user(&boss()), component("svc").owner("user:bob")],
            handovers: vec![handover("u-bob", "bob", "user:boss", "manager")],
            expect: &["dangling-owner component:default/svc => change owner user:default/bob -> user:default/boss (manual)"],
            evidence: &["proposed: the successor recorded when `bob` left (manager), user:default/boss"],
            ..Case::default()
        },
        Case {
            name: "a handover by name counts only in Roster's namespace",
            users: vec![boss()],
            catalog: vec![feed_user(&boss()), component("svc").owner("user:ops/bob")],
            handovers: vec![handover("u-bob", "bob", "user:default/boss", "manager")],
            expect: &["dangling-owner component:default/svc => change owner user:ops/bob -> (none found) (manual)"],
            evidence: &["nothing is known about user:ops/bob"],
            ..Case::default()
        },
        Case {
            name: "the handover successor left too: the usual candidates",
            users: vec![boss().inactive()],
            groups: vec![team()],
            catalog: vec![
                feed_group(&team()),
                cat_user("bob").scim("u-bob").at(FEED).orphan().relation("memberOf", "group:default/team-a"),
                component("svc").owner("user:bob"),
            ],
            handovers: vec![handover("u-bob", "bob", "user:default/boss", "manager")],
            expect: &[
                "ghost-user user:default/bob => delete user:default/bob (uid uid-bob)",
                "dangling-owner component:default/svc => change owner user:default/bob -> group:default/team-a (manual)",
            ],
            evidence: &[
                "the successor recorded when `bob` left (manager), user:default/boss, is deactivated too",
                "proposed: the group it was in, group:default/team-a",
            ],
            ..Case::default()
        },
        Case {
            name: "a deactivated user's manual handover beats their manager",
            users: vec![jane().inactive().manager("u-boss"), boss()],
            groups: vec![platform()],
            catalog: vec![feed_user(&boss()), feed_group(&platform()), component("svc").owner("user:jane")],
            handovers: vec![handover("u-jane", "jane", "group:default/platform", "manual")],
            expect: &["dangling-owner component:default/svc => change owner user:default/jane -> group:default/platform (manual)"],
            evidence: &["proposed: the successor recorded when `jane` left (manual), group:default/platform"],
            ..Case::default()
        },
        Case {
            name: "an unusable handover successor is noted and skipped",
            groups: vec![platform()],
            catalog: vec![feed_group(&platform()), component("svc").owner("user:bob")],
            handovers: vec![handover("u-bob", "bob", "component:default/x", "manual")],
            fallback: Some("platform"),
            expect: &["dangling-owner component:default/svc => change owner user:default/bob -> group:default/platform (manual)"],
            evidence: &["the handover recorded for `bob` names `component:default/x`, which is not a user or group reference", "proposed: the fallback owner, group:default/platform"],
            ..Case::default()
        },
        Case {
            name: "owned by a ghost group: its parent",
            groups: vec![platform()],
            catalog: vec![
                feed_group(&platform()),
                cat_group("old-team").scim("g-old").at(FEED).relation("childOf", "group:default/platform"),
                component("svc").owner("old-team"),
            ],
            expect: &[
                "ghost-group group:default/old-team => delete group:default/old-team (uid uid-old-team)",
                "dangling-owner component:default/svc => change owner group:default/old-team -> group:default/platform (manual)",
            ],
            evidence: &["proposed: the parent group, group:default/platform"],
            ..Case::default()
        },
        Case {
            name: "owned by someone else's group that stays: not dangling",
            catalog: vec![cat_group("guild").at(REPO), component("svc").owner("guild")],
            expect: &["ghost-group group:default/guild => delete group:default/guild (uid uid-guild) (manual)"],
            ..Case::default()
        },
        Case {
            name: "owned by someone else's orphaned group: dangling once it is deleted",
            catalog: vec![cat_group("guild").at(REPO).orphan(), component("svc").owner("guild")],
            expect: &[
                "ghost-group group:default/guild => delete group:default/guild (uid uid-guild)",
                "dangling-owner component:default/svc => change owner group:default/guild -> (none found) (manual)",
            ],
            evidence: &["it is an orphan that matches no directory record"],
            ..Case::default()
        },
        Case {
            name: "spec.owner resolves in the entity's own namespace",
            groups: vec![team()],
            catalog: vec![feed_group(&team()), component("svc").ns("ops").uid("uid-ops-svc").owner("team-a")],
            expect: &["dangling-owner component:ops/svc => change owner group:ops/team-a -> (none found) (manual)"],
            evidence: &["spec.owner is `team-a`, which means group:ops/team-a"],
            ..Case::default()
        },
        Case {
            name: "spec.owner and its ownedBy relation make one finding",
            catalog: vec![component("svc").owner("group:default/team-x")],
            expect: &["dangling-owner component:default/svc => change owner group:default/team-x -> (none found) (manual)"],
            evidence: &["spec.owner is group:default/team-x"],
            ..Case::default()
        },
        Case {
            name: "an ownedBy relation alone",
            catalog: vec![entity("API", "pay-api").at(SERVICE).relation("ownedBy", "user:default/ghost")],
            expect: &["dangling-owner api:default/pay-api => change owner user:default/ghost -> (none found) (manual)"],
            evidence: &["its ownedBy relation points at user:default/ghost"],
            ..Case::default()
        },
        Case {
            name: "two dangling owners, sorted by the fix",
            catalog: vec![entity("System", "pay").at(SERVICE).relation("ownedBy", "group:default/zeta").relation("ownedBy", "group:default/alpha")],
            expect: &[
                "dangling-owner system:default/pay => change owner group:default/alpha -> (none found) (manual)",
                "dangling-owner system:default/pay => change owner group:default/zeta -> (none found) (manual)",
            ],
            ..Case::default()
        },
        Case {
            name: "an owner of another kind is not Roster's business",
            catalog: vec![component("svc").owner("system:default/gone")],
            ..Case::default()
        },
        Case {
            name: "an owner the directory has but the catalog lacks yet is live",
            users: vec![jane()],
            catalog: vec![component("svc").owner("user:jane")],
            expect: &["missing-user user:default/jane => publish directory user u-jane (manual)"],
            ..Case::default()
        },
        Case {
            name: "an unparsable owner is skipped",
            catalog: vec![component("svc").owner("user:a/b/c")],
            ..Case::default()
        },
        // ----- everything at once, to check the order -----
        Case {
            name: "findings come sorted by kind, then subject",
            users: vec![jane().inactive(), user("u-zed", "zed"), user("u-amy", "amy")],
            catalog: vec![
                component("svc").owner("team-x"),
                cat_user("zz").scim("u-zz").at(FEED).orphan(),
                feed_user(&jane()),
                cat_user("aa").scim("u-aa").at(FEED).orphan(),
                cat_group("g").scim("g-g").at(FEED).orphan(),
            ],
            expect: &[
                "ghost-user user:default/aa => delete user:default/aa (uid uid-aa)",
                "ghost-user user:default/zz => delete user:default/zz (uid uid-zz)",
                "ghost-group group:default/g => delete group:default/g (uid uid-g)",
                "deactivated-user user:default/jane => refresh user:default/jane",
                "missing-user user:default/amy => publish directory user u-amy (manual)",
                "missing-user user:default/zed => publish directory user u-zed (manual)",
                "dangling-owner component:default/svc => change owner group:default/team-x -> (none found) (manual)",
            ],
            ..Case::default()
        },
    ]
}

#[test]
fn reconcile_table() {
    let mut failures = Vec::new();
    let cases = cases();
    for case in &cases {
        let report = run(case);
        let got: Vec<String> = report.findings.iter().map(line).collect();
        if got != case.expect {
            failures.push(format!(
                "{}:\n  expected: {:#?}\n  got:      {:#?}",
                case.name, case.expect, got
            ));
            continue;
        }
        let text: Vec<String> = report
            .findings
            .iter()
            .flat_map(|f| f.evidence.iter().cloned().chain(f.fix.instructions.clone()))
            .collect();
        for wanted in case.evidence {
            if !text.iter().any(|sentence| sentence.contains(wanted)) {
                failures.push(format!(
                    "{}: no evidence contains {wanted:?}; evidence: {text:#?}",
                    case.name
                ));
            }
        }
        // Counts agree with the findings.
        assert_eq!(
            report.summary.findings(),
            report.findings.len(),
            "{}",
            case.name
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn summary_counts_each_kind_and_fix() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "findings come sorted by kind, then subject")
        .unwrap();
    let summary = run(&case).summary;
    assert_eq!(
        (
            summary.ghost_users,
            summary.ghost_groups,
            summary.deactivated_users,
            summary.duplicates,
            summary.missing_users,
            summary.dangling_owners
        ),
        (2, 1, 1, 0, 2, 1)
    );
    assert_eq!((summary.applicable_fixes, summary.manual_fixes), (4, 3));
    assert_eq!(
        (
            summary.directory_users,
            summary.directory_groups,
            summary.catalog_entities
        ),
        (3, 0, 5)
    );
}

// ----- reading entities from the API -----

#[test]
fn entities_from_api_json() {
    let text = include_str!("fixtures/catalog_entities.json");
    let values: Vec<Value> = serde_json::from_str(text).unwrap();
    let entities: Vec<CatalogEntity> = values
        .iter()
        .map(|v| CatalogEntity::from_json(v).unwrap())
        .collect();

    let amara = &entities[0];
    assert_eq!(amara.entity_ref().to_string(), "user:default/amara.nwosu");
    assert_eq!(
        amara.scim_id(),
        Some("6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa")
    );
    assert_eq!(
        amara.profile_email.as_deref(),
        Some("amara.nwosu@northwind.example")
    );
    assert_eq!(
        amara.managed_by_location.as_deref(),
        Some("url:http://roster.internal/backstage/catalog.yaml")
    );
    assert_eq!(
        amara.relation_targets("memberof").collect::<Vec<_>>(),
        ["group:default/payments-core"]
    );
    assert!(!amara.is_orphan());

    let contractor = &entities[1];
    assert_eq!(
        contractor.namespace, "default",
        "namespace defaults to default"
    );
    assert!(contractor.is_orphan());
    assert_eq!(
        contractor.labels.get("team").map(String::as_str),
        Some("legacy")
    );
    assert_eq!(contractor.scim_id(), None);

    let api = &entities[2];
    assert_eq!(api.spec_owner.as_deref(), Some("payments-core"));
    assert_eq!(api.relations.len(), 2);

    // The fixture against a directory with Amara and her group: only the
    // orphaned contractor is out of place.
    let directory = DirectorySnapshot {
        users: vec![DirUser {
            id: "6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa".into(),
            user_name: "amara.nwosu@northwind.example".into(),
            entity_name: Some("amara.nwosu".into()),
            email: Some("amara.nwosu@northwind.example".into()),
            active: true,
            group_ids: vec!["g1".into()],
            ..DirUser::default()
        }],
        groups: vec![group("g1", "payments-core")],
        handovers: vec![],
    };
    let report = reconcile(&directory, &entities, &ReconcileConfig::default());
    let lines: Vec<String> = report.findings.iter().map(line).collect();
    assert_eq!(lines, ["ghost-user user:default/old.contractor => delete user:default/old.contractor (uid 0f6e4c1a-1111-4a4a-8a8a-000000000002)"]);
}

#[test]
fn entities_from_api_json_errors() {
    for (value, wanted) in [
        (serde_json::json!([]), "must be a JSON object"),
        (
            serde_json::json!({"kind": "User", "metadata": {"uid": "x"}}),
            "metadata.name",
        ),
        (
            serde_json::json!({"kind": "User", "metadata": {"name": "a"}}),
            "metadata.uid",
        ),
        (
            serde_json::json!({"metadata": {"name": "a", "uid": "x"}}),
            "kind",
        ),
    ] {
        let error = CatalogEntity::from_json(&value).unwrap_err().to_string();
        assert!(error.contains(wanted), "{error}");
    }
    // Non-string annotation values are skipped, an empty email is none.
    let entity = CatalogEntity::from_json(&serde_json::json!({
        "kind": "User",
        "metadata": {"name": "a", "uid": "x", "annotations": {"n": 1, "s": "v"}},
        "spec": {"profile": {"email": " "}}
    }))
    .unwrap();
    assert_eq!(
        entity.annotations,
        BTreeMap::from([("s".to_owned(), "v".to_owned())])
    );
    assert_eq!(entity.profile_email, None);
}

// ----- renderers -----

fn sample_report() -> Report {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "findings come sorted by kind, then subject")
        .unwrap();
    run(&case)
}

#[test]
fn table_aligns_columns_and_ends_with_counts() {
    let table = render_table(&sample_report());
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("KIND"), "{table}");
    let subject_at = lines[0].find("SUBJECT").unwrap();
    let fix_at = lines[0].find("FIX").unwrap();
    let rows: Vec<&&str> = lines
        .iter()
        .filter(|l| !l.starts_with(' ') && l.contains(":default/"))
        .collect();
    assert_eq!(rows.len(), 7, "{table}");
    for row in rows {
        // Each column starts where its title does, after a blank.
        assert_eq!(&row[subject_at - 1..subject_at], " ", "{row}");
        assert!(
            row[subject_at..]
                .split_whitespace()
                .next()
                .unwrap()
                .contains(":default/"),
            "{row}"
        );
        assert_eq!(&row[fix_at - 1..fix_at], " ", "{row}");
        let fix = &row[fix_at..];
        assert!(
            ["delete", "refresh", "publish", "change"]
                .iter()
                .any(|verb| fix.starts_with(verb)),
            "{row}"
        );
    }
    assert!(
        table.contains("  - annotation roster.dev/scim-id is `u-aa`"),
        "{table}"
    );
    assert!(table.contains("Findings: 7 (ghost-user 2, ghost-group 1, deactivated-user 1, duplicate 0, missing-user 2, dangling-owner 1)."), "{table}");
    assert!(
        table.contains("Fixes: 4 Roster can apply, 3 need a person."),
        "{table}"
    );
    let clean = render_table(&reconcile(
        &DirectorySnapshot::default(),
        &[],
        &ReconcileConfig::default(),
    ));
    assert!(clean.starts_with("No findings"), "{clean}");
}

#[test]
fn json_has_findings_fixes_and_summary() {
    let json: Value = serde_json::from_str(&render_json(&sample_report()).unwrap()).unwrap();
    let first = &json["findings"][0];
    assert_eq!(first["kind"], "ghost-user");
    assert_eq!(first["subject"]["entity_ref"], "user:default/aa");
    assert_eq!(first["subject"]["uid"], "uid-aa");
    assert_eq!(first["fix"]["action"], "delete-entity");
    assert_eq!(first["fix"]["uid"], "uid-aa");
    assert_eq!(first["fix"]["applicable"], true);
    let owner = &json["findings"][6]["fix"];
    assert_eq!(owner["action"], "change-owner");
    assert_eq!(owner["from"], "group:default/team-x");
    assert_eq!(owner["to"], Value::Null);
    assert_eq!(owner["applicable"], false);
    assert!(owner["instructions"]
        .as_str()
        .unwrap()
        .contains("spec.owner"));
    assert_eq!(json["summary"]["ghost_users"], 2);
    assert_eq!(json["summary"]["applicable_fixes"], 4);
}

#[test]
fn csv_has_one_row_per_finding() {
    let report = sample_report();
    let text = render_csv(&report).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "kind",
            "subject",
            "uid",
            "directory_id",
            "fix",
            "fix_action",
            "applicable",
            "instructions",
            "evidence"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), report.findings.len());
    assert_eq!(&rows[0][0], "ghost-user");
    assert_eq!(&rows[0][2], "uid-aa");
    assert_eq!(&rows[0][5], "delete-entity");
    assert_eq!(&rows[0][6], "true");
    assert!(
        rows[0][8].contains(" | "),
        "evidence sentences are joined: {:?}",
        &rows[0][8]
    );
    assert_eq!(&rows[4][3], "u-amy");
}

// ----- planning and applying -----

#[test]
fn plan_takes_applicable_fixes_once_deletes_first() {
    let mut report = sample_report();
    // A repeated finding must not delete twice.
    report.findings.push(report.findings[0].clone());
    let plan: Vec<String> = plan_fixes(&report)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        plan,
        [
            "delete group:default/g (uid uid-g)",
            "delete user:default/aa (uid uid-aa)",
            "delete user:default/zz (uid uid-zz)",
            "refresh user:default/jane",
        ]
    );
}

/// Records calls; answers from a script.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
    gone: Vec<&'static str>,
    unauthorized_after: Option<usize>,
}

impl Recorder {
    fn answer(&self, call: String) -> Result<(), CatalogError> {
        let mut calls = self.calls.lock().unwrap();
        calls.push(call);
        match self.unauthorized_after {
            Some(n) if calls.len() > n => Err(CatalogError::Unauthorized {
                url: "http://backstage.test/api/catalog".into(),
                message: "bad token".into(),
            }),
            _ => Ok(()),
        }
    }
}

impl CatalogWriter for Recorder {
    async fn delete_entity_by_uid(&self, uid: &str) -> Result<Deletion, CatalogError> {
        self.answer(format!("delete {uid}"))?;
        Ok(if self.gone.contains(&uid) {
            Deletion::AlreadyGone
        } else {
            Deletion::Deleted
        })
    }

    async fn refresh_entity(&self, entity_ref: &str) -> Result<(), CatalogError> {
        self.answer(format!("refresh {entity_ref}"))
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn apply_records_each_outcome() {
    let plan = plan_fixes(&sample_report());
    let recorder = Recorder {
        gone: vec!["uid-aa"],
        ..Recorder::default()
    };
    let applied = block_on(apply_fixes(&recorder, &plan));
    let outcomes: Vec<&Outcome> = applied.iter().map(|a| &a.outcome).collect();
    assert_eq!(
        outcomes,
        [
            &Outcome::Deleted,
            &Outcome::AlreadyGone,
            &Outcome::Deleted,
            &Outcome::Refreshed
        ]
    );
    assert_eq!(
        *recorder.calls.lock().unwrap(),
        [
            "delete uid-g",
            "delete uid-aa",
            "delete uid-zz",
            "refresh user:default/jane"
        ]
    );
    assert!(applied.iter().all(|a| a.outcome.succeeded()));
}

#[test]
fn apply_stops_when_no_call_can_succeed() {
    let plan = plan_fixes(&sample_report());
    let recorder = Recorder {
        unauthorized_after: Some(1),
        ..Recorder::default()
    };
    let applied = block_on(apply_fixes(&recorder, &plan));
    assert_eq!(applied[0].outcome, Outcome::Deleted);
    match &applied[1].outcome {
        Outcome::Failed { error } => {
            assert!(error.contains("backend.auth.externalAccess"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    for later in &applied[2..] {
        assert!(
            matches!(&later.outcome, Outcome::NotAttempted { reason } if reason.contains("earlier failure")),
            "{later:?}"
        );
    }
    assert_eq!(
        recorder.calls.lock().unwrap().len(),
        2,
        "nothing is tried after the token was refused"
    );
}

#[test]
fn apply_skips_fixes_that_need_a_person() {
    let fix = FixAction::PublishUser { id: "u1".into() };
    let applied = block_on(apply_fixes(
        &Recorder::default(),
        std::slice::from_ref(&fix),
    ));
    assert!(matches!(&applied[0].outcome, Outcome::NotAttempted { .. }));
    let json = serde_json::to_value(&applied[0]).unwrap();
    assert_eq!(json["fix"]["action"], "publish-user");
    assert_eq!(json["outcome"], "not-attempted");
}

// ----- properties -----

/// A directory with unique ids, names and emails; managers and groups point
/// at records that exist.
fn directory_strategy() -> impl Strategy<Value = DirectorySnapshot> {
    (0usize..25, 0usize..6).prop_flat_map(|(users, groups)| {
        (
            proptest::collection::vec(
                (
                    any::<bool>(),
                    proptest::option::of(0..users.max(1)),
                    proptest::collection::vec(0..groups.max(1), 0..3),
                ),
                users,
            ),
            Just(groups),
        )
            .prop_map(move |(rows, groups)| {
                let users = rows
                    .iter()
                    .enumerate()
                    .map(|(n, (active, manager, member_of))| DirUser {
                        id: format!("u{n}"),
                        user_name: format!("person{n}@acme.example"),
                        entity_name: Some(format!("person{n}")),
                        email: Some(format!("person{n}@acme.example")),
                        active: *active,
                        manager_id: manager.map(|m| format!("u{m}")),
                        external_id: Some(format!("ext{n}")),
                        group_ids: if groups == 0 {
                            Vec::new()
                        } else {
                            member_of.iter().map(|g| format!("g{g}")).collect()
                        },
                    })
                    .collect();
                let groups = (0..groups)
                    .map(|n| DirGroup {
                        id: format!("g{n}"),
                        display_name: format!("Team {n}"),
                        entity_name: Some(format!("team{n}")),
                        member_ids: Vec::new(),
                    })
                    .collect();
                DirectorySnapshot {
                    users,
                    groups,
                    handovers: Vec::new(),
                }
            })
    })
}

/// What the feed publishes for a directory, built by hand: active users and
/// all groups, annotated, with their memberships; plus components owned by
/// live users and groups, in short, full and oddly cased forms.
fn feed_of(directory: &DirectorySnapshot, owners: &[(usize, bool, u8)]) -> Vec<CatalogEntity> {
    let mut catalog = Vec::new();
    for user in directory.users.iter().filter(|u| u.active) {
        let mut e = feed_user(user).annotate(
            annotations::EXTERNAL_ID,
            user.external_id.as_deref().unwrap(),
        );
        for group_id in &user.group_ids {
            e = e.relation("memberOf", &format!("group:default/team{}", &group_id[1..]));
        }
        catalog.push(e.annotate(annotations::STATUS, "active"));
    }
    for group in &directory.groups {
        catalog.push(feed_group(group));
    }
    let active: Vec<&DirUser> = directory.users.iter().filter(|u| u.active).collect();
    for (n, (pick, by_user, form)) in owners.iter().enumerate() {
        let owner = if *by_user && !active.is_empty() {
            let name = active[pick % active.len()].entity_name.clone().unwrap();
            match form % 3 {
                0 => format!("user:{name}"),
                1 => format!("user:default/{name}"),
                _ => format!("USER:Default/{}", name.to_uppercase()),
            }
        } else if !directory.groups.is_empty() {
            let name = directory.groups[pick % directory.groups.len()]
                .entity_name
                .clone()
                .unwrap();
            match form % 3 {
                0 => name,
                1 => format!("group:default/{name}"),
                _ => name.to_uppercase(),
            }
        } else {
            continue;
        };
        catalog.push(component(&format!("svc{n}")).owner(&owner));
    }
    catalog
}

/// A messy catalog: names, ids, emails and owners drawn from small pools so
/// that they collide with the directory and with each other.
fn messy_catalog_strategy() -> impl Strategy<Value = Vec<CatalogEntity>> {
    let row = (
        0u8..4,                                            // kind
        0usize..30,                                        // name
        proptest::option::of(0usize..35), // scim id: u0.. (some beyond the directory)
        proptest::option::of(0usize..30), // email
        any::<bool>(),                    // orphan
        proptest::option::of((any::<bool>(), 0usize..30)), // owner: user or group, name
        proptest::option::of(0usize..8),  // memberOf / childOf
        any::<bool>(),                    // status inactive
    );
    proptest::collection::vec(row, 0..40).prop_map(|rows| {
        // Refs are unique in a catalog: keep the first entity of each.
        let mut refs = HashSet::new();
        rows.into_iter()
            .enumerate()
            .map(
                |(n, (kind, name, id, email, orphan, owner, link, inactive))| {
                    let (kind, name, prefix) = match kind {
                        0 | 1 => ("User", format!("person{name}"), "u"),
                        2 => ("Group", format!("team{}", name % 8), "g"),
                        _ => ("Component", format!("svc{name}"), "u"),
                    };
                    let mut e = entity(kind, &name).uid(&format!("uid{n}")).at(if orphan {
                        REPO
                    } else {
                        FEED
                    });
                    if orphan {
                        e = e.orphan();
                    }
                    if let Some(id) = id {
                        if kind != "Component" {
                            e = e.scim(&format!("{prefix}{id}"));
                        }
                    }
                    if let (Some(email), "User") = (email, kind) {
                        e = e.email(&format!("person{email}@acme.example"));
                    }
                    if inactive {
                        e = e.annotate(annotations::STATUS, "inactive");
                    }
                    if let Some(link) = link {
                        let relation = if kind == "Group" {
                            "childOf"
                        } else {
                            "memberOf"
                        };
                        e = e.relation(relation, &format!("group:default/team{link}"));
                    }
                    if let Some((by_user, owner)) = owner {
                        e = e.owner(&if by_user {
                            format!("user:person{owner}")
                        } else {
                            format!("team{}", owner % 10)
                        });
                    }
                    e
                },
            )
            .filter(|e| refs.insert(e.entity_ref().key().to_owned()))
            .collect()
    })
}

fn fallback_strategy() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        (0usize..8).prop_map(|n| format!("team{n}")),
        (0usize..30).prop_map(|n| format!("user:person{n}")),
        Just("component:default/x".to_owned()),
        Just("not a ref/a/b".to_owned()),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_feed_of_the_directory_has_no_findings(
        directory in directory_strategy(),
        owners in proptest::collection::vec((0usize..100, any::<bool>(), any::<u8>()), 0..10),
        fallback in fallback_strategy(),
    ) {
        let catalog = feed_of(&directory, &owners);
        let config = ReconcileConfig { fallback_owner: fallback, ..ReconcileConfig::default() };
        let report = reconcile(&directory, &catalog, &config);
        prop_assert!(report.is_clean(), "{}", render_table(&report));
    }

    #[test]
    fn fixes_act_on_the_input_and_never_propose_a_gone_or_deactivated_owner(
        directory in directory_strategy(),
        catalog in messy_catalog_strategy(),
        fallback in fallback_strategy(),
    ) {
        let config = ReconcileConfig { fallback_owner: fallback, ..ReconcileConfig::default() };
        let report = reconcile(&directory, &catalog, &config);
        let uids: HashSet<&str> = catalog.iter().map(|e| e.uid.as_str()).collect();
        let catalog_refs: HashSet<String> = catalog.iter().map(|e| e.entity_ref().key().to_owned()).collect();

        let mut acted_on = HashSet::new();
        for finding in &report.findings {
            let is_ghost = matches!(finding.kind, FindingKind::GhostUser | FindingKind::GhostGroup);
            match &finding.fix.action {
                FixAction::DeleteEntity { uid, .. } => {
                    prop_assert!(uids.contains(uid.as_str()), "deletes a uid not in the input: {}", line(finding));
                    prop_assert_eq!(finding.subject.uid.as_deref(), Some(uid.as_str()));
                }
                _ => prop_assert!(!is_ghost, "a ghost's fix is a delete: {}", line(finding)),
            }
            // One entity-level fix per entity.
            if !matches!(finding.kind, FindingKind::DanglingOwner | FindingKind::MissingUser) {
                let uid = finding.subject.uid.clone().unwrap();
                prop_assert!(acted_on.insert(uid), "two fixes for one entity: {}", line(finding));
            }
            if let FixAction::ChangeOwner { to: Some(to), from, .. } = &finding.fix.action {
                prop_assert!(to != from);
                prop_assert!(matches!(to.kind(), "user" | "group"));
                let in_default = to.namespace().eq_ignore_ascii_case("default");
                let directory_user = directory.users.iter().find(|u| in_default && u.entity_name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(to.name())));
                let directory_group = directory.groups.iter().find(|g| in_default && g.entity_name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(to.name())));
                let known = match to.kind() {
                    "user" => directory_user.is_some(),
                    _ => directory_group.is_some(),
                } || catalog_refs.contains(to.key());
                prop_assert!(known, "proposes a missing owner: {}", line(finding));
                if let Some(user) = directory_user.filter(|_| to.kind() == "user") {
                    prop_assert!(user.active, "proposes a deactivated owner: {}", line(finding));
                }
                // A name the directory has not assigned: the catalog entity
                // there must not stand for a deactivated or vanished user.
                let unassigned = match to.kind() {
                    "user" => directory_user.is_none(),
                    _ => directory_group.is_none(),
                };
                for e in catalog.iter().filter(|e| unassigned && e.entity_ref() == *to) {
                    if let Some(id) = e.scim_id() {
                        let record = directory.users.iter().find(|u| u.id.eq_ignore_ascii_case(id));
                        prop_assert!(record.is_none_or(|u| u.active), "proposes a deactivated owner: {}", line(finding));
                        if to.kind() == "user" {
                            prop_assert!(record.is_some(), "proposes a ghost owner: {}", line(finding));
                        }
                    }
                }
            }
        }
        let plan = plan_fixes(&report);
        let planned: HashSet<String> = plan.iter().map(ToString::to_string).collect();
        prop_assert_eq!(planned.len(), plan.len(), "a fix planned twice");
    }

    #[test]
    fn the_report_does_not_depend_on_input_order(
        directory in directory_strategy(),
        catalog in messy_catalog_strategy(),
        seed in any::<u64>(),
    ) {
        let config = ReconcileConfig { fallback_owner: Some("team1".into()), ..ReconcileConfig::default() };
        let report = reconcile(&directory, &catalog, &config);
        let mut shuffled_catalog = catalog.clone();
        shuffle(&mut shuffled_catalog, seed);
        let mut shuffled_users = directory.clone();
        shuffle(&mut shuffled_users.users, seed.rotate_left(7));
        let again = reconcile(&shuffled_users, &shuffled_catalog, &config);
        let lines: Vec<String> = report.findings.iter().map(line).collect();
        let lines_again: Vec<String> = again.findings.iter().map(line).collect();
        prop_assert_eq!(lines, lines_again);
        prop_assert_eq!(report.summary, again.summary);
    }
}

/// Fisher–Yates with a small deterministic generator, so that a failing
/// seed replays.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let j = (seed % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}
