#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use roster_domain::{
    DisplayName, Group, GroupAttributes, GroupId, Meta, User, UserAttributes, UserId, UserName,
};
use serde::Deserialize as _;
use time::macros::datetime;
use uuid::Uuid;

use super::*;
use crate::entity::{Entity, Kind, Profile, Spec};

fn gid(n: u128) -> GroupId {
    GroupId::from_uuid(Uuid::from_u128(n))
}

fn name(s: &str) -> EntityName {
    EntityName::parse(s).unwrap()
}

fn group(n: u128, display_name: &str) -> Group {
    Group {
        id: gid(n),
        meta: Meta::new(datetime!(2024-05-01 12:00 UTC)),
        attributes: GroupAttributes {
            display_name: DisplayName::parse(display_name).unwrap(),
            external_id: None,
        },
    }
}

fn user(n: u128, user_name: &str, active: bool) -> User {
    let mut attributes = UserAttributes::with_user_name(UserName::parse(user_name).unwrap());
    attributes.active = (!active).then_some(false);
    User {
        id: UserId::from_uuid(Uuid::from_u128(n)),
        meta: Meta::new(datetime!(2024-05-01 12:00 UTC)),
        attributes,
    }
}

/// An index of groups 1..=n named g1..gn (unnamed where `unnamed` says).
fn index(n: u128, unnamed: &[u128], edges: &[(u128, u128)]) -> GroupIndex {
    let groups = (1..=n).map(|i| {
        let name = (!unnamed.contains(&i)).then(|| name(&format!("g{i}")));
        (gid(i), name)
    });
    let edges: Vec<(GroupId, GroupId)> = edges.iter().map(|(p, c)| (gid(*p), gid(*c))).collect();
    GroupIndex::new(groups, &edges)
}

fn parents(index: &GroupIndex, n: u128) -> Vec<Option<u128>> {
    (1..=n)
        .map(|i| index.parent(gid(i)).map(|p| p.as_uuid().as_u128()))
        .collect()
}

fn children(index: &GroupIndex, i: u128) -> Vec<u128> {
    index
        .children(gid(i))
        .iter()
        .map(|c| c.as_uuid().as_u128())
        .collect()
}

#[test]
fn each_group_gets_at_most_one_parent_and_no_cycles() {
    // (groups, edges as (parent, child), expected parent of each group)
    type Case = (u128, &'static [(u128, u128)], &'static [Option<u128>]);
    let cases: &[Case] = &[
        (3, &[], &[None, None, None]),
        // 2 is in 1; 3 is in 2.
        (3, &[(1, 2), (2, 3)], &[None, Some(1), Some(2)]),
        // 3 is in 1 and 2: the oldest parent wins, whatever the edge order.
        (3, &[(1, 3), (2, 3)], &[None, None, Some(1)]),
        (3, &[(2, 3), (1, 3)], &[None, None, Some(1)]),
        // A cycle 1 ⇄ 2: the older group is placed first (under 2), and 2
        // cannot then go under its own child.
        (2, &[(1, 2), (2, 1)], &[Some(2), None]),
        // A longer cycle 1 → 2 → 3 → 1 (parent → child).
        (3, &[(1, 2), (2, 3), (3, 1)], &[Some(3), Some(1), None]),
        // A group in itself.
        (1, &[(1, 1)], &[None]),
        // 3's oldest parent would close a cycle, so the next one is taken.
        (3, &[(3, 1), (1, 3), (2, 3)], &[Some(3), None, Some(2)]),
        // Unknown groups in edges are ignored.
        (2, &[(9, 1), (1, 9), (1, 2)], &[None, Some(1)]),
        // Repeated edges count once.
        (2, &[(1, 2), (1, 2)], &[None, Some(1)]),
    ];
    for (n, edges, expected) in cases {
        let idx = index(*n, &[], edges);
        assert_eq!(parents(&idx, *n), expected.to_vec(), "edges {edges:?}");
        // Children are exactly the groups whose parent it is.
        for i in 1..=*n {
            let expected_children: Vec<u128> = (1..=*n)
                .filter(|c| expected[(*c - 1) as usize] == Some(i))
                .collect();
            assert_eq!(
                children(&idx, i),
                expected_children,
                "children of {i}, edges {edges:?}"
            );
        }
    }
}

fn user_spec(entity: &Entity) -> (&Profile, &Vec<String>) {
    match &entity.spec {
        Spec::User(spec) => (&spec.profile, &spec.member_of),
        Spec::Group(_) => panic!("not a user"),
    }
}

fn group_spec(entity: &Entity) -> &crate::entity::GroupSpec {
    match &entity.spec {
        Spec::Group(spec) => spec,
        Spec::User(_) => panic!("not a group"),
    }
}

#[test]
fn member_of_lists_named_groups_in_creation_order_once() {
    let idx = index(4, &[3], &[]);
    let config = PublishConfig::default();
    let jane = user(100, "jane", true);
    let doc = idx
        .user_document(
            &config,
            &jane,
            &name("jane"),
            &[gid(4), gid(1), gid(3), gid(9), gid(1)],
        )
        .unwrap();
    assert_eq!(doc.kind, Kind::User);
    assert_eq!(
        user_spec(&doc).1,
        &vec!["group:default/g1".to_owned(), "group:default/g4".to_owned()]
    );
    let gone = user(101, "gone", false);
    assert!(idx
        .user_document(&config, &gone, &name("gone"), &[gid(1)])
        .is_none());
}

#[test]
fn group_documents_agree_with_member_of() {
    let idx = index(3, &[], &[(1, 2), (1, 3), (2, 3)]);
    let bob = name("bob");
    let eve = name("eve");
    let members = || vec![(Some(&bob), true), (None, true), (Some(&eve), false)];
    let default = PublishConfig::default();
    let doc = idx.group_document(&default, &group(1, "G1"), &name("g1"), members());
    let spec = group_spec(&doc);
    assert_eq!(spec.parent, None);
    // 3 is in 1 and 2: its parent is 1, the older.
    assert_eq!(
        spec.children,
        vec!["group:default/g2".to_owned(), "group:default/g3".to_owned()]
    );
    assert_eq!(spec.members, vec!["user:default/bob".to_owned()]);
    let keep = PublishConfig {
        include_deactivated: true,
        ..PublishConfig::default()
    };
    let doc = idx.group_document(&keep, &group(1, "G1"), &name("g1"), members());
    assert_eq!(
        group_spec(&doc).members,
        vec!["user:default/bob".to_owned(), "user:default/eve".to_owned()]
    );
    let doc = idx.group_document(&default, &group(3, "G3"), &name("g3"), []);
    assert_eq!(group_spec(&doc).parent.as_deref(), Some("group:default/g1"));
    assert_eq!(group_spec(&doc).children, Vec::<String>::new());
}

#[test]
fn an_unnamed_parent_is_left_out() {
    let idx = index(2, &[1], &[(1, 2)]);
    let doc = idx.group_document(&PublishConfig::default(), &group(2, "G2"), &name("g2"), []);
    assert_eq!(group_spec(&doc).parent, None);
}

#[test]
fn yaml_feeds_are_documents_separated_by_dashes() {
    let config = PublishConfig::default();
    let idx = index(1, &[], &[]);
    let entities = vec![
        idx.user_document(&config, &user(1, "a", true), &name("a"), &[gid(1)])
            .unwrap(),
        idx.user_document(&config, &user(2, "b", true), &name("b"), &[])
            .unwrap(),
        idx.group_document(
            &config,
            &group(1, "G1"),
            &name("g1"),
            [(Some(&name("a")), true)],
        ),
    ];
    assert_eq!(encode_all(Format::Yaml, &[]).unwrap(), b"");
    let yaml = String::from_utf8(encode_all(Format::Yaml, &entities).unwrap()).unwrap();
    assert!(yaml.starts_with("---\napiVersion: backstage.io/v1alpha1\nkind: User\n"));
    assert_eq!(yaml.matches("\n---\n").count(), 2);
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&yaml)
        .map(|d| serde_yaml::Value::deserialize(d).unwrap())
        .collect();
    let expected: Vec<serde_yaml::Value> = entities
        .iter()
        .map(|e| serde_yaml::to_value(e).unwrap())
        .collect();
    assert_eq!(docs, expected);
}

#[test]
fn json_feeds_are_one_array() {
    let config = PublishConfig::default();
    let idx = index(1, &[], &[]);
    assert_eq!(encode_all(Format::Json, &[]).unwrap(), b"[]\n");
    let entities = vec![
        idx.user_document(&config, &user(1, "a", true), &name("a"), &[])
            .unwrap(),
        idx.group_document(&config, &group(1, "G1"), &name("g1"), []),
    ];
    let json = encode_all(Format::Json, &entities).unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(parsed, serde_json::to_value(&entities).unwrap());
    assert_eq!(parsed[1]["kind"], "Group");
    // One entity per line between the brackets.
    assert_eq!(String::from_utf8(json).unwrap().lines().count(), 4);
}

#[test]
fn the_encoder_counts_and_appends_in_chunks() {
    let config = PublishConfig::default();
    let idx = index(0, &[], &[]);
    let mut encoder = Encoder::new(Format::Json);
    let mut chunks = Vec::new();
    let mut chunk = Vec::new();
    encoder.start(&mut chunk);
    for i in 0..5u128 {
        let doc = idx
            .user_document(
                &config,
                &user(i, &format!("u{i}"), true),
                &name(&format!("u{i}")),
                &[],
            )
            .unwrap();
        encoder.entity(&doc, &mut chunk).unwrap();
        if i % 2 == 1 {
            chunks.push(std::mem::take(&mut chunk));
        }
    }
    encoder.finish(&mut chunk);
    chunks.push(chunk);
    assert_eq!(encoder.count(), 5);
    let whole: Vec<u8> = chunks.concat();
    let parsed: Vec<serde_json::Value> = serde_json::from_slice(&whole).unwrap();
    assert_eq!(parsed.len(), 5);
}

#[test]
fn accept_headers_pick_the_format() {
    let table: &[(Option<&str>, Format)] = &[
        (None, Format::Yaml),
        (Some(""), Format::Yaml),
        (Some("*/*"), Format::Yaml),
        (Some("application/yaml"), Format::Yaml),
        (Some("text/yaml"), Format::Yaml),
        (Some("text/plain"), Format::Yaml),
        (Some("application/json"), Format::Json),
        (Some("APPLICATION/JSON"), Format::Json),
        (Some("application/json; charset=utf-8"), Format::Json),
        (Some("application/json;q=0"), Format::Yaml),
        (Some("application/json, */*"), Format::Json),
        (Some("application/json, application/yaml"), Format::Yaml),
        (
            Some("application/yaml;q=0.5, application/json"),
            Format::Json,
        ),
        (
            Some("application/json;q=0.4, application/x-yaml;q=0.5"),
            Format::Yaml,
        ),
        (
            Some("text/html, application/json;q=0.9, */*;q=0.8"),
            Format::Json,
        ),
        (Some("application/json;q=bogus"), Format::Json),
    ];
    for (accept, expected) in table {
        assert_eq!(Format::negotiate(*accept), *expected, "{accept:?}");
    }
    assert_eq!(
        Format::Yaml.content_type(),
        "application/yaml; charset=utf-8"
    );
    assert_eq!(Format::Json.content_type(), "application/json");
}

#[test]
fn plain_scalars_are_only_used_where_every_reader_agrees() {
    let table: &[(&str, &str)] = &[
        ("jane.doe", "jane.doe"),
        ("Jane Doe", "Jane Doe"),
        ("group:default/payments-core", "group:default/payments-core"),
        ("https://img.example/a.png", "https://img.example/a.png"),
        ("jane@example.com", "jane@example.com"),
        ("roster.dev/scim-id", "roster.dev/scim-id"),
        ("a+b", "a+b"),
        ("", "\"\""),
        ("1234", "\"1234\""),
        (
            "6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa",
            "6c1e0a52-7d3f-4b8e-9a41-2f0c7d9b13aa",
        ),
        ("00u9k2lmq8XyZa3f74x6", "00u9k2lmq8XyZa3f74x6"),
        ("12abc", "12abc"),
        ("1e3", "\"1e3\""),
        ("1_000", "\"1_000\""),
        ("12:30:00", "\"12:30:00\""),
        (
            "2001-12-14t21:59:43.10-05:00",
            "\"2001-12-14t21:59:43.10-05:00\"",
        ),
        ("2001-12-14 21:59:43.10 Z", "\"2001-12-14 21:59:43.10 Z\""),
        ("0b1010", "\"0b1010\""),
        ("0o17", "\"0o17\""),
        ("0xcafe", "\"0xcafe\""),
        ("0XCAFE", "\"0XCAFE\""),
        ("0x_ca_fe", "\"0x_ca_fe\""),
        ("0b7f3c1e-55aa", "0b7f3c1e-55aa"),
        ("0xcafe-1", "0xcafe-1"),
        ("1.2.3", "\"1.2.3\""),
        ("3 apples", "3 apples"),
        ("0x1f", "\"0x1f\""),
        ("2024-01-01", "\"2024-01-01\""),
        ("yes", "\"yes\""),
        ("No", "\"No\""),
        ("ON", "\"ON\""),
        ("y", "\"y\""),
        ("n", "\"n\""),
        ("null", "\"null\""),
        ("True", "\"True\""),
        ("yesterday", "yesterday"),
        ("a: b", "\"a: b\""),
        ("a:", "\"a:\""),
        ("trailing ", "\"trailing \""),
        (" leading", "\" leading\""),
        ("a #b", "\"a #b\""),
        ("-a", "\"-a\""),
        (".a", "\".a\""),
        ("a\"b", "\"a\\\"b\""),
        ("a\\b", "\"a\\\\b\""),
        ("a\nb", "\"a\\nb\""),
        ("a\tb", "\"a\\tb\""),
        ("a\u{0}b", "\"a\\x00b\""),
        ("a\u{85}b", "\"a\\x85b\""),
        ("a\u{2028}b", "\"a\\u2028b\""),
        ("a\u{feff}b", "\"a\\uFEFFb\""),
        ("José", "\"José\""),
        ("[x]", "\"[x]\""),
        ("{x}", "\"{x}\""),
        ("a,b", "\"a,b\""),
        ("*x", "\"*x\""),
        ("&x", "\"&x\""),
        ("!x", "\"!x\""),
        ("%x", "\"%x\""),
        ("'x", "\"'x\""),
        ("|", "\"|\""),
        (">", "\">\""),
    ];
    for (value, expected) in table {
        let mut out = String::new();
        yaml::scalar(&mut out, value);
        assert_eq!(&out, expected, "{value:?}");
        let back: String = serde_yaml::from_str(&out).unwrap();
        assert_eq!(&back, value);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Whatever the strings, the YAML writer's output reads back as the
    /// entity it wrote.
    #[test]
    fn written_yaml_reads_back_as_the_entity(
        display in any::<String>(),
        external in proptest::option::of("[ -~]{0,20}|\\PC{0,10}"),
        emails in proptest::collection::vec(any::<String>(), 0..3),
        groups in proptest::collection::vec("[a-z0-9][a-z0-9._-]{0,10}[a-z0-9]", 0..4),
        active in any::<bool>(),
    ) {
        let mut u = user(7, "someone", active);
        u.attributes.display_name = Some(display);
        u.attributes.external_id = external;
        u.attributes.emails = emails
            .into_iter()
            .map(|v| roster_domain::MultiValue { value: Some(v), ..Default::default() })
            .collect();
        let config = PublishConfig { include_deactivated: true, ..PublishConfig::default() };
        let groups: Vec<EntityName> = groups.iter().map(|g| name(g)).collect();
        let entity = crate::entity::user_entity(&config, &u, &name("someone"), &groups).unwrap();
        let yaml = String::from_utf8(encode_all(Format::Yaml, [&entity]).unwrap()).unwrap();
        let parsed: serde_yaml::Value = serde_yaml::from_str(&yaml)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
        prop_assert_eq!(parsed, serde_yaml::to_value(&entity).unwrap());
    }

    #[test]
    fn any_scalar_reads_back(value in any::<String>()) {
        let mut out = String::new();
        yaml::scalar(&mut out, &value);
        let back: String = serde_yaml::from_str(&out)
            .map_err(|e| TestCaseError::fail(format!("{e}: {out:?}")))?;
        prop_assert_eq!(back, value);
    }
}
