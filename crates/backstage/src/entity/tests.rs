#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use roster_domain::{
    DisplayName, Group, GroupAttributes, GroupId, Meta, MultiValue, PersonName, User,
    UserAttributes, UserId, UserName,
};
use time::macros::datetime;
use uuid::Uuid;

use super::*;
use crate::feed::{encode_all, Format};

const USER_ID: &str = "6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa";
const GROUP_ID: &str = "0b7f3c1e-55aa-4c1d-8e2f-9a0b1c2d3e4f";

fn name(s: &str) -> EntityName {
    EntityName::parse(s).unwrap()
}

fn names(list: &[&str]) -> Vec<EntityName> {
    list.iter().map(|s| name(s)).collect()
}

fn user(user_name: &str, change: impl FnOnce(&mut UserAttributes)) -> User {
    let mut attributes = UserAttributes::with_user_name(UserName::parse(user_name).unwrap());
    change(&mut attributes);
    User {
        id: UserId::from_uuid(Uuid::parse_str(USER_ID).unwrap()),
        meta: Meta::new(datetime!(2024-05-01 12:00 UTC)),
        attributes,
    }
}

fn group(display_name: &str, external_id: Option<&str>) -> Group {
    Group {
        id: GroupId::from_uuid(Uuid::parse_str(GROUP_ID).unwrap()),
        meta: Meta::new(datetime!(2024-05-01 12:00 UTC)),
        attributes: GroupAttributes {
            display_name: DisplayName::parse(display_name).unwrap(),
            external_id: external_id.map(str::to_owned),
        },
    }
}

fn email(value: &str, primary: Option<bool>) -> MultiValue {
    MultiValue {
        value: Some(value.to_owned()),
        primary,
        ..MultiValue::default()
    }
}

fn config(change: impl FnOnce(&mut PublishConfig)) -> PublishConfig {
    let mut config = PublishConfig::default();
    change(&mut config);
    config
}

/// Checks an entity against the YAML document it must be, two ways: as
/// data (what its JSON serialisation holds) and as Roster's YAML writer
/// encodes it (parsed back).
#[track_caller]
fn check(case: &str, entity: &Entity, expected: &str) {
    let expected: serde_yaml::Value = serde_yaml::from_str(expected).unwrap();
    let as_data = serde_yaml::to_value(entity).unwrap();
    assert_eq!(as_data, expected, "{case}: data");
    let encoded = String::from_utf8(encode_all(Format::Yaml, [entity]).unwrap()).unwrap();
    let parsed: serde_yaml::Value = serde_yaml::from_str(&encoded).unwrap();
    assert_eq!(parsed, expected, "{case}: as written:\n{encoded}");
    let json = String::from_utf8(encode_all(Format::Json, [entity]).unwrap()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let expected_json = serde_json::to_value(&expected).unwrap();
    assert_eq!(
        json,
        serde_json::Value::Array(vec![expected_json]),
        "{case}: JSON"
    );
}

#[test]
fn users_become_user_entities() {
    type Case = (
        &'static str,
        User,
        &'static str,
        Vec<EntityName>,
        PublishConfig,
        Option<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "a bare user: no profile, memberOf still written",
            user("jdoe", |_| {}),
            "jdoe",
            vec![],
            PublishConfig::default(),
            Some(
                "
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: jdoe
  namespace: default
  annotations:
    roster.dev/scim-id: 6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa
    roster.dev/status: active
spec:
  memberOf: []
",
            ),
        ),
        (
            "the reference example",
            user("amara.nwosu@northwind.example", |a| {
                a.external_id = Some("00u9k2lmq8XyZa3f74x6".into());
                a.display_name = Some("Amara Nwosu".into());
                a.emails = vec![email("amara.nwosu@northwind.example", Some(true))];
                a.active = Some(true);
            }),
            "amara.nwosu",
            names(&["payments-core"]),
            PublishConfig::default(),
            Some(
                "
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: amara.nwosu
  namespace: default
  annotations:
    roster.dev/scim-id: 6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa
    roster.dev/external-id: 00u9k2lmq8XyZa3f74x6
    roster.dev/status: active
spec:
  profile:
    displayName: Amara Nwosu
    email: amara.nwosu@northwind.example
  memberOf:
    - group:default/payments-core
",
            ),
        ),
        (
            "everything: primary email and photo win, groups in the order given",
            user("Jane.Doe+ops@Acme.example", |a| {
                a.display_name = Some("Jane Doe".into());
                a.name = Some(PersonName {
                    formatted: Some("Ms. Jane Q. Doe".into()),
                    ..PersonName::default()
                });
                a.emails = vec![
                    email("jane@home.example", None),
                    email("jane.doe@acme.example", Some(true)),
                ];
                a.photos = vec![
                    email("https://img.example/thumb.png", None),
                    email("https://img.example/jane.png", Some(true)),
                ];
            }),
            "jane.doe_ops",
            names(&["platform", "on-call", "all-staff"]),
            PublishConfig::default(),
            Some(
                "
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: jane.doe_ops
  namespace: default
  annotations:
    roster.dev/scim-id: 6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa
    roster.dev/status: active
spec:
  profile:
    displayName: Jane Doe
    email: jane.doe@acme.example
    picture: https://img.example/jane.png
  memberOf:
    - group:default/platform
    - group:default/on-call
    - group:default/all-staff
",
            ),
        ),
        (
            "no displayName: name.formatted",
            user("jdoe", |a| {
                a.name = Some(PersonName {
                    formatted: Some("Dr. John Doe".into()),
                    given_name: Some("John".into()),
                    family_name: Some("Doe".into()),
                    ..PersonName::default()
                });
            }),
            "jdoe",
            vec![],
            PublishConfig::default(),
            Some(
                "
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: jdoe
  namespace: default
  annotations:
    roster.dev/scim-id: 6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa
    roster.dev/status: active
spec:
  profile:
    displayName: Dr. John Doe
  memberOf: []
",
            ),
        ),
        (
            "no displayName or formatted: given and family name; blanks skipped",
            user("jdoe", |a| {
                a.display_name = Some("   ".into());
                a.name = Some(PersonName {
                    formatted: Some(String::new()),
                    given_name: Some("John".into()),
                    family_name: Some("Doe".into()),
                    ..PersonName::default()
                });
                a.emails = vec![email("  ", Some(true))];
            }),
            "jdoe",
            vec![],
            PublishConfig::default(),
            Some(
                "
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: jdoe
  namespace: default
  annotations:
    roster.dev/scim-id: 6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa
    roster.dev/status: active
spec:
  profile:
    displayName: John Doe
  memberOf: []
",
            ),
        ),
        (
            "only a family name; the first email when none is primary",
            user("jdoe", |a| {
                a.name = Some(PersonName {
                    family_name: Some("Doe".into()),
                    ..PersonName::default()
                });
                a.emails = vec![
                    email("first@x.example", None),
                    email("second@x.example", Some(false)),
                ];
            }),
            "jdoe",
            vec![],
            PublishConfig::default(),
            Some(
                "
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: jdoe
  namespace: default
  annotations:
    roster.dev/scim-id: 6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa
    roster.dev/status: active
spec:
  profile:
    displayName: Doe
    email: first@x.example
  memberOf: []
",
            ),
        ),
        (
            "deactivated users are left out by default",
            user("gone", |a| a.active = Some(false)),
            "gone",
            names(&["team"]),
            PublishConfig::default(),
            None,
        ),
        (
            "deactivated users can be kept, labelled",
            user("gone", |a| {
                a.active = Some(false);
                a.external_id = Some("00123".into());
            }),
            "gone",
            names(&["team"]),
            config(|c| c.include_deactivated = true),
            Some(
                "
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: gone
  namespace: default
  labels:
    roster.dev/status: deactivated
  annotations:
    roster.dev/scim-id: 6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa
    roster.dev/external-id: '00123'
    roster.dev/status: deactivated
spec:
  memberOf:
    - group:default/team
",
            ),
        ),
        (
            "another namespace is used everywhere",
            user("jdoe", |_| {}),
            "jdoe",
            names(&["platform"]),
            config(|c| c.namespace = Namespace::parse("acme-corp").unwrap()),
            Some(
                "
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: jdoe
  namespace: acme-corp
  annotations:
    roster.dev/scim-id: 6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa
    roster.dev/status: active
spec:
  memberOf:
    - group:acme-corp/platform
",
            ),
        ),
        (
            "awkward strings stay strings",
            user("yes", |a| {
                a.display_name = Some("no".into());
                a.external_id = Some("true".into());
                a.emails = vec![email("null", Some(true))];
            }),
            "1234",
            names(&["on", "2024-01-01"]),
            PublishConfig::default(),
            Some(
                r#"
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: "1234"
  namespace: default
  annotations:
    roster.dev/scim-id: 6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa
    roster.dev/external-id: "true"
    roster.dev/status: active
spec:
  profile:
    displayName: "no"
    email: "null"
  memberOf:
    - group:default/on
    - group:default/2024-01-01
"#,
            ),
        ),
        (
            "quotes, colons, hashes, line breaks and non-Latin script",
            user("x", |a| {
                a.display_name = Some("O'Brien: \"Ops\" #1\nsecond line".into());
                a.external_id = Some("- not a list".into());
                a.emails = vec![email("山田@例え.jp", Some(true))];
            }),
            "x",
            vec![],
            PublishConfig::default(),
            Some(
                r#"
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: x
  namespace: default
  annotations:
    roster.dev/scim-id: 6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa
    roster.dev/external-id: "- not a list"
    roster.dev/status: active
spec:
  profile:
    displayName: "O'Brien: \"Ops\" #1\nsecond line"
    email: 山田@例え.jp
  memberOf: []
"#,
            ),
        ),
    ];
    for (case, user, entity_name, member_of, config, expected) in cases {
        let entity = user_entity(&config, &user, &name(entity_name), &member_of);
        match (entity, expected) {
            (None, None) => {}
            (Some(entity), Some(expected)) => check(case, &entity, expected),
            (got, expected) => panic!("{case}: expected {expected:?}, got {got:?}"),
        }
    }
}

#[test]
fn groups_become_group_entities() {
    type Case = (
        &'static str,
        Group,
        &'static str,
        Option<&'static str>,
        Vec<EntityName>,
        Vec<EntityName>,
        PublishConfig,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "a bare group: children and members always written",
            group("Payments Core", None),
            "payments_core",
            None,
            vec![],
            vec![],
            PublishConfig::default(),
            "
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: payments_core
  namespace: default
  annotations:
    roster.dev/scim-id: 0b7f3c1e-55aa-4c1d-8e2f-9a0b1c2d3e4f
spec:
  type: team
  profile:
    displayName: Payments Core
  children: []
  members: []
",
        ),
        (
            "the reference example: parent, members",
            group("Payments Core", Some("00g1a2b3")),
            "payments-core",
            Some("payments"),
            vec![],
            names(&["amara.nwosu"]),
            PublishConfig::default(),
            "
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: payments-core
  namespace: default
  annotations:
    roster.dev/scim-id: 0b7f3c1e-55aa-4c1d-8e2f-9a0b1c2d3e4f
    roster.dev/external-id: 00g1a2b3
spec:
  type: team
  profile:
    displayName: Payments Core
  parent: group:default/payments
  children: []
  members:
    - user:default/amara.nwosu
",
        ),
        (
            "children and several members, another type and namespace",
            group("Engineering", None),
            "engineering",
            None,
            names(&["platform", "payments"]),
            names(&["jane.doe", "jane.doe-2", "bob"]),
            config(|c| {
                c.group_type = GroupType::parse("business-unit").unwrap();
                c.namespace = Namespace::parse("org").unwrap();
            }),
            "
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: engineering
  namespace: org
  annotations:
    roster.dev/scim-id: 0b7f3c1e-55aa-4c1d-8e2f-9a0b1c2d3e4f
spec:
  type: business-unit
  profile:
    displayName: Engineering
  children:
    - group:org/platform
    - group:org/payments
  members:
    - user:org/jane.doe
    - user:org/jane.doe-2
    - user:org/bob
",
        ),
        (
            "a display name that needs quoting",
            group("R&D: \"Labs\"", None),
            "r_d_labs",
            None,
            vec![],
            vec![],
            PublishConfig::default(),
            r#"
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: r_d_labs
  namespace: default
  annotations:
    roster.dev/scim-id: 0b7f3c1e-55aa-4c1d-8e2f-9a0b1c2d3e4f
spec:
  type: team
  profile:
    displayName: "R&D: \"Labs\""
  children: []
  members: []
"#,
        ),
    ];
    for (case, group, entity_name, parent, children, members, config, expected) in cases {
        let parent = parent.map(name);
        let entity = group_entity(
            &config,
            &group,
            &name(entity_name),
            parent.as_ref(),
            &children,
            &members,
        );
        check(case, &entity, expected);
    }
}

#[test]
fn the_reference_example_is_written_exactly() {
    let amara = user("amara.nwosu@northwind.example", |a| {
        a.external_id = Some("00u9k2lmq8XyZa3f74x6".into());
        a.display_name = Some("Amara Nwosu".into());
        a.emails = vec![email("amara.nwosu@northwind.example", Some(true))];
    });
    let payments = group("Payments Core", None);
    let config = PublishConfig::default();
    let entities = [
        user_entity(
            &config,
            &amara,
            &name("amara.nwosu"),
            &names(&["payments-core"]),
        )
        .unwrap(),
        group_entity(
            &config,
            &payments,
            &name("payments-core"),
            Some(&name("payments")),
            &[],
            &names(&["amara.nwosu"]),
        ),
    ];
    let yaml = String::from_utf8(encode_all(Format::Yaml, &entities).unwrap()).unwrap();
    assert_eq!(
        yaml,
        "---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: amara.nwosu
  namespace: default
  annotations:
    roster.dev/external-id: 00u9k2lmq8XyZa3f74x6
    roster.dev/scim-id: 6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa
    roster.dev/status: active
spec:
  profile:
    displayName: Amara Nwosu
    email: amara.nwosu@northwind.example
  memberOf:
    - group:default/payments-core
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: payments-core
  namespace: default
  annotations:
    roster.dev/scim-id: 0b7f3c1e-55aa-4c1d-8e2f-9a0b1c2d3e4f
spec:
  type: team
  profile:
    displayName: Payments Core
  parent: group:default/payments
  children: []
  members:
    - user:default/amara.nwosu
"
    );
}

#[test]
fn namespaces_and_group_types_are_validated() {
    for ok in ["default", "a", "acme-corp", "a1-b2-c3", &"x".repeat(63)] {
        assert_eq!(Namespace::parse(ok).unwrap().as_str(), ok);
    }
    for bad in [
        "",
        "Default",
        "a--b",
        "-a",
        "a-",
        "a_b",
        "a.b",
        "a b",
        &"x".repeat(64),
    ] {
        assert!(Namespace::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(GroupType::parse(" team ").unwrap().as_str(), "team");
    assert!(GroupType::parse("  ").is_err());
}

#[test]
fn publish_config_reads_from_toml_style_values_with_defaults() {
    let config: PublishConfig = serde_json::from_value(serde_json::json!({
        "name_strategy": "user-name",
        "include_deactivated": true
    }))
    .unwrap();
    assert_eq!(config.name_strategy, NameStrategy::UserName);
    assert!(config.include_deactivated);
    assert_eq!(config.group_type.as_str(), "team");
    assert_eq!(config.namespace.as_str(), "default");
    for bad in [
        serde_json::json!({"namespace": "Not Valid"}),
        serde_json::json!({"group_type": ""}),
        serde_json::json!({"name_strategy": "display-name"}),
        serde_json::json!({"unknown": 1}),
    ] {
        assert!(
            serde_json::from_value::<PublishConfig>(bad.clone()).is_err(),
            "{bad}"
        );
    }
    assert_eq!(
        serde_json::to_value(PublishConfig::default()).unwrap(),
        serde_json::json!({
            "name_strategy": "email-local-part",
            "group_type": "team",
            "include_deactivated": false,
            "namespace": "default"
        })
    );
}
