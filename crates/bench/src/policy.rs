//! The realistic access policy of the authorize benchmark, generated deterministically.
//!
//! The directory: `users` users (`bu00000@bench.example`, entity `user:default/bu00000`)
//! and `groups` groups in a five-level tree (`bg1-0000` roots … `bg5-0599` leaves; each
//! group is a member of one group a level up, each user of one leaf). The policy: `roles`
//! roles (`bench-role-000` …) of `rules_per_role` rules each (exact names, patterns such as
//! `catalog.entity.*`, conditions with `IS_ENTITY_OWNER` / `IS_ENTITY_KIND`, some denies),
//! assigned to every group (roles of that group's level) and directly to the first
//! `direct_users` users, so that a user holds `roles_per_user` distinct roles: a fifth
//! directly, the rest through its five groups (one leaf and its ancestors).
//!
//! The wire format is the contract's `PUT /api/v1/access/policy` JSON
//! (`{"roles":[{"name","description","rules":[...]}],"assignments":[{"role","subject","expiresAt"?}]}`).
//! Everything format-specific is in [`rule`], [`role`] and [`policy`], so a change of the
//! format is a change here only.

use std::collections::BTreeSet;

use anyhow::{bail, Result};
use serde_json::{json, Value};

/// Levels of the group tree.
pub const LEVELS: usize = 5;

/// Share of the groups on each level, roots first (percent).
const LEVEL_WEIGHTS: [usize; LEVELS] = [1, 4, 10, 25, 60];

/// The one permission no generated rule touches: `policy-change-latency` flips it.
pub const PROBE_PERMISSION: &str = "scaffolder.template.management";

/// The size of the directory and the policy.
#[derive(Clone, Debug)]
pub struct Spec {
    pub users: usize,
    pub groups: usize,
    pub roles: usize,
    pub rules_per_role: usize,
    /// Distinct roles each user with direct assignments holds.
    pub roles_per_user: usize,
    /// Users (from the first) that also get direct assignments.
    pub direct_users: usize,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            users: 10_000,
            groups: 1_000,
            roles: 200,
            rules_per_role: 10,
            roles_per_user: 50,
            direct_users: 1_000,
        }
    }
}

/// How roles are spread: each level of the tree has its own pool of roles, and direct
/// assignments come from one more pool, so a user's roles never repeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub per_group: usize,
    pub direct: usize,
    pub level_pool: usize,
    pub direct_pool: usize,
}

impl Spec {
    /// Checks the numbers fit together and spreads the roles.
    pub fn layout(&self) -> Result<Layout> {
        if self.users == 0 || self.groups < LEVELS {
            bail!("need at least one user and {LEVELS} groups");
        }
        let direct = self.roles_per_user / 5;
        let per_group = (self.roles_per_user - direct) / LEVELS;
        let direct = self.roles_per_user - per_group * LEVELS;
        let direct_pool = (self.roles / 5).max(direct);
        let level_pool = self.roles.saturating_sub(direct_pool) / LEVELS;
        if per_group > level_pool || direct > direct_pool || self.roles < direct_pool {
            bail!(
                "{} roles cannot give a user {} distinct roles ({per_group} per group level, {direct} direct)",
                self.roles,
                self.roles_per_user
            );
        }
        Ok(Layout {
            per_group,
            direct,
            level_pool,
            direct_pool: self.roles - level_pool * LEVELS,
        })
    }

    /// Groups per level, roots first; they add up to `groups`.
    pub fn level_sizes(&self) -> [usize; LEVELS] {
        let mut sizes = LEVEL_WEIGHTS.map(|w| (self.groups * w / 100).max(1));
        let assigned: usize = sizes[..LEVELS - 1].iter().sum();
        sizes[LEVELS - 1] = self.groups.saturating_sub(assigned).max(1);
        sizes
    }

    /// The parent (on `level - 1`) of group `idx` on `level` (0 = roots).
    pub fn parent(&self, level: usize, idx: usize) -> Option<usize> {
        (level > 0).then(|| idx % self.level_sizes()[level - 1])
    }

    /// The leaf group user `u` is a member of.
    pub fn leaf_of(&self, u: usize) -> usize {
        u % self.level_sizes()[LEVELS - 1]
    }

    /// The groups user `u` is in, leaf first: (level, index).
    pub fn groups_of(&self, u: usize) -> Vec<(usize, usize)> {
        let mut out = vec![(LEVELS - 1, self.leaf_of(u))];
        while let Some(&(level, idx)) = out.last() {
            match self.parent(level, idx) {
                Some(p) => out.push((level - 1, p)),
                None => break,
            }
        }
        out
    }

    /// Role indices assigned to group `idx` on `level`.
    pub fn group_roles(&self, l: &Layout, level: usize, idx: usize) -> Vec<usize> {
        (0..l.per_group)
            .map(|k| level * l.level_pool + (idx * 5 + k) % l.level_pool)
            .collect()
    }

    /// Role indices assigned directly to user `u` (empty beyond `direct_users`).
    pub fn direct_roles(&self, l: &Layout, u: usize) -> Vec<usize> {
        if u >= self.direct_users {
            return Vec::new();
        }
        let base = LEVELS * l.level_pool;
        (0..l.direct)
            .map(|k| base + (u * 3 + k) % l.direct_pool)
            .collect()
    }

    /// Every role user `u` holds, directly or through its groups.
    pub fn roles_of(&self, l: &Layout, u: usize) -> BTreeSet<usize> {
        let mut roles: BTreeSet<usize> = self.direct_roles(l, u).into_iter().collect();
        for (level, idx) in self.groups_of(u) {
            roles.extend(self.group_roles(l, level, idx));
        }
        roles
    }
}

pub fn user_name(u: usize) -> String {
    format!("bu{u:05}")
}

/// The SCIM `userName` (and work email); its local part becomes the entity name.
pub fn user_email(u: usize) -> String {
    format!("{}@bench.example", user_name(u))
}

pub fn user_ref(u: usize) -> String {
    format!("user:default/{}", user_name(u))
}

/// The SCIM `displayName`, which is also the entity name.
pub fn group_name(level: usize, idx: usize) -> String {
    format!("bg{}-{idx:04}", level + 1)
}

pub fn group_ref(level: usize, idx: usize) -> String {
    format!("group:default/{}", group_name(level, idx))
}

pub fn role_name(r: usize) -> String {
    format!("bench-role-{r:03}")
}

/// Plugins invented for the benchmark, so that names are as many as in a real installation.
const PLUGINS: usize = 40;

fn owner() -> Value {
    json!({"rule": "IS_ENTITY_OWNER"})
}

fn kind(kinds: &[&str]) -> Value {
    json!({"rule": "IS_ENTITY_KIND", "params": {"kinds": kinds}})
}

fn rule(permissions: &[&str], effect: &str) -> Value {
    json!({"permissions": permissions, "effect": effect})
}

fn catalog_rule(permissions: &[&str], effect: &str, conditions: Option<Value>) -> Value {
    let mut r = rule(permissions, effect);
    r["resourceType"] = json!("catalog-entity");
    if let Some(c) = conditions {
        r["conditions"] = c;
    }
    r
}

/// Templates a role's rules cycle through.
const TEMPLATES: usize = 12;

/// Rule `t` (a template) of role `r`.
pub fn template(r: usize, t: usize) -> Value {
    let kinds: [&[&str]; 5] = [
        &["component", "api"],
        &["system", "domain"],
        &["user", "group"],
        &["component"],
        &["resource", "template"],
    ];
    let p = |k: usize| format!("bench-plugin-{:02}", (r * k) % PLUGINS);
    match t {
        0 => catalog_rule(&["catalog.entity.read"], "allow", Some(kind(kinds[r % 5]))),
        1 => catalog_rule(
            &["catalog.entity.refresh", "catalog.entity.delete"],
            "allow",
            Some(owner()),
        ),
        2 if r.is_multiple_of(2) => rule(&["catalog.location.*"], "allow"),
        2 => rule(
            &["catalog.location.read", "catalog.location.create"],
            "allow",
        ),
        3 if r.is_multiple_of(3) => rule(&["scaffolder.task.*"], "allow"),
        3 => rule(&["scaffolder.task.read", "scaffolder.task.create"], "allow"),
        4 => rule(&["catalog.location.delete"], "deny"),
        5 => catalog_rule(
            &["catalog.entity.*"],
            "allow",
            Some(json!({"anyOf": [owner(), kind(&["api"])]})),
        ),
        6 => catalog_rule(
            &["catalog.entity.delete"],
            "deny",
            Some(json!({"allOf": [kind(&["group", "user"]), {"not": owner()}]})),
        ),
        7 => {
            let p = p(1);
            rule(
                &[&format!("{p}.item.read"), &format!("{p}.item.list")],
                "allow",
            )
        }
        8 => rule(&[&format!("{}.*", p(7))], "allow"),
        9 if r.is_multiple_of(10) => {
            let mut x = rule(&["catalog.*"], "allow");
            x["action"] = json!("read");
            x
        }
        9 => {
            let mut x = rule(&[&format!("{}.item.write", p(3))], "allow");
            x["action"] = json!("update");
            x
        }
        10 if r.is_multiple_of(4) => rule(
            &["catalog.entity.create", "catalog.entity.validate"],
            "allow",
        ),
        10 if r % 4 == 1 => rule(&["catalog.entity.create"], "deny"),
        10 => rule(&[&format!("{}.admin", p(11))], "allow"),
        _ => rule(&["kubernetes.proxy", "kubernetes.clusters.read"], "allow"),
    }
}

/// Role `r` with its rules.
pub fn role(spec: &Spec, r: usize) -> Value {
    let rules: Vec<Value> = (0..spec.rules_per_role)
        .map(|k| template(r, (k + r) % TEMPLATES))
        .collect();
    json!({
        "name": role_name(r),
        "description": format!("Benchmark role {r}"),
        "rules": rules,
    })
}

fn assignment(r: usize, subject: String, expires: bool) -> Value {
    let mut a = json!({"role": role_name(r), "subject": subject});
    if expires {
        a["expiresAt"] = json!("2099-01-01T00:00:00Z");
    }
    a
}

/// The whole policy document for `PUT /api/v1/access/policy`.
pub fn policy(spec: &Spec) -> Result<Value> {
    let l = spec.layout()?;
    let roles: Vec<Value> = (0..spec.roles).map(|r| role(spec, r)).collect();
    let mut assignments = Vec::new();
    for (level, &size) in spec.level_sizes().iter().enumerate() {
        for idx in 0..size {
            for r in spec.group_roles(&l, level, idx) {
                assignments.push(assignment(r, group_ref(level, idx), false));
            }
        }
    }
    for u in 0..spec.direct_users.min(spec.users) {
        for (k, r) in spec.direct_roles(&l, u).into_iter().enumerate() {
            // Some assignments carry an expiry (far away), as temporary grants do.
            assignments.push(assignment(r, user_ref(u), (u + k) % 7 == 0));
        }
    }
    Ok(json!({"roles": roles, "assignments": assignments}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_tree_has_five_levels_of_1000_groups() {
        let s = Spec::default();
        assert_eq!(s.level_sizes(), [10, 40, 100, 250, 600]);
        let chain = s.groups_of(1234);
        assert_eq!(chain.len(), LEVELS);
        assert_eq!(chain[0], (4, 1234 % 600));
        for w in chain.windows(2) {
            assert_eq!(s.parent(w[0].0, w[0].1), Some(w[1].1));
        }
    }

    #[test]
    fn a_user_with_direct_assignments_holds_50_distinct_roles() {
        let s = Spec::default();
        let l = s.layout().unwrap();
        assert_eq!(
            l,
            Layout {
                per_group: 8,
                direct: 10,
                level_pool: 32,
                direct_pool: 40
            }
        );
        for u in [0, 1, 49, 999] {
            assert_eq!(s.roles_of(&l, u).len(), 50, "user {u}");
        }
        // Beyond the direct users, the groups alone give 40.
        assert_eq!(s.roles_of(&l, 5000).len(), 40);
    }

    #[test]
    fn the_policy_has_200_roles_of_10_rules_and_never_touches_the_probe() {
        let s = Spec::default();
        let p = policy(&s).unwrap();
        let roles = p["roles"].as_array().unwrap();
        assert_eq!(roles.len(), 200);
        let rules: usize = roles
            .iter()
            .map(|r| r["rules"].as_array().unwrap().len())
            .sum();
        assert_eq!(rules, 2000);
        let text = p.to_string();
        assert!(!text.contains(PROBE_PERMISSION));
        assert!(!text.contains("\"scaffolder.*\""));
        assert!(text.contains("IS_ENTITY_OWNER") && text.contains("IS_ENTITY_KIND"));
        assert!(text.contains("\"deny\"") && text.contains("catalog.entity.*"));
        // 1000 groups x 8 roles + 1000 users x 10 roles.
        assert_eq!(p["assignments"].as_array().unwrap().len(), 18_000);
    }

    #[test]
    fn too_few_roles_is_an_error() {
        let s = Spec {
            roles: 20,
            ..Spec::default()
        };
        assert!(s.layout().is_err());
    }
}
