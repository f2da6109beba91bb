#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;

use proptest::prelude::*;
use roster_domain::{
    DisplayName, Group, GroupAttributes, GroupId, Meta, MultiValue, User, UserAttributes, UserId,
    UserName,
};
use time::macros::datetime;
use uuid::Uuid;

use super::*;

/// Runs `normalize` over a table of `(input, expected)`, reporting every
/// mismatch at once.
fn check_normalize(rows: &[(String, Option<String>)]) {
    let mut failures = Vec::new();
    for (input, expected) in rows {
        let got = normalize(input).map(|n| n.as_str().to_owned());
        if &got != expected {
            failures.push(format!("{input:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

fn rows(table: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    table
        .iter()
        .map(|(i, e)| (i.to_string(), e.map(str::to_owned)))
        .collect()
}

fn a(n: usize) -> String {
    "a".repeat(n)
}

#[test]
fn normalize_lowercases_and_keeps_allowed_characters() {
    check_normalize(&rows(&[
        ("jane", Some("jane")),
        ("Jane", Some("jane")),
        ("JANE", Some("jane")),
        ("JANE.DOE", Some("jane.doe")),
        ("jAnE.dOe", Some("jane.doe")),
        ("a", Some("a")),
        ("A", Some("a")),
        ("1", Some("1")),
        ("z9", Some("z9")),
        ("123", Some("123")),
        ("1.2.3", Some("1.2.3")),
        ("0x1f", Some("0x1f")),
        ("1e3", Some("1e3")),
        ("true", Some("true")),
        ("null", Some("null")),
        ("yes", Some("yes")),
        ("jane_doe", Some("jane_doe")),
        ("jane-doe", Some("jane-doe")),
        ("jane.doe", Some("jane.doe")),
        ("jane--doe", Some("jane--doe")),
        ("jane..doe", Some("jane..doe")),
        ("jane.-_doe", Some("jane.-_doe")),
        ("a_-_b", Some("a_-_b")),
        ("a-.-b", Some("a-.-b")),
        ("dev.ops", Some("dev.ops")),
        ("Payments-Core", Some("payments-core")),
        ("payments-core", Some("payments-core")),
        ("team.platform-infra_01", Some("team.platform-infra_01")),
    ]));
}

#[test]
fn normalize_trims_whitespace_first() {
    check_normalize(&rows(&[
        ("  jane  ", Some("jane")),
        ("\tjane\n", Some("jane")),
        ("\r\njane\r\n", Some("jane")),
        ("\u{00A0}jane\u{00A0}", Some("jane")),
        ("\u{2003}jane", Some("jane")),
        (" Jane Doe ", Some("jane_doe")),
        ("   ", None),
        ("\t\n", None),
        ("", None),
    ]));
}

#[test]
fn normalize_replaces_other_characters_with_one_underscore() {
    check_normalize(&rows(&[
        ("jane doe", Some("jane_doe")),
        ("jane  doe", Some("jane_doe")),
        ("jane   doe", Some("jane_doe")),
        ("jane__doe", Some("jane_doe")),
        ("jane___doe", Some("jane_doe")),
        ("jane_ _doe", Some("jane_doe")),
        ("a _ b", Some("a_b")),
        ("a - b", Some("a_-_b")),
        ("a . b", Some("a_._b")),
        ("a b c", Some("a_b_c")),
        ("a\tb", Some("a_b")),
        ("a\nb", Some("a_b")),
        ("a\u{0}b", Some("a_b")),
        ("a\u{7f}b", Some("a_b")),
        ("a\u{00A0}b", Some("a_b")),
        (
            "Jane.Doe+ops@Acme.example",
            Some("jane.doe_ops_acme.example"),
        ),
        ("jane@example.com", Some("jane_example.com")),
        ("jdoe@CORP.EXAMPLE.COM", Some("jdoe_corp.example.com")),
        ("jane/doe", Some("jane_doe")),
        ("jane\\doe", Some("jane_doe")),
        ("DOMAIN\\jdoe", Some("domain_jdoe")),
        ("jane:doe", Some("jane_doe")),
        ("jane;doe", Some("jane_doe")),
        ("jane,doe", Some("jane_doe")),
        ("jane'doe", Some("jane_doe")),
        ("o'brien", Some("o_brien")),
        ("O'Brien-Smith", Some("o_brien-smith")),
        ("jane\"doe", Some("jane_doe")),
        ("jane#1", Some("jane_1")),
        ("a&b", Some("a_b")),
        ("a*b", Some("a_b")),
        ("a=b", Some("a_b")),
        ("a?b", Some("a_b")),
        ("a^b", Some("a_b")),
        ("a`b", Some("a_b")),
        ("a{b}c", Some("a_b_c")),
        ("a|b", Some("a_b")),
        ("a~b", Some("a_b")),
        ("a<b>c", Some("a_b_c")),
        ("a+b", Some("a_b")),
        ("a%b", Some("a_b")),
        ("a$b", Some("a_b")),
        ("a!b", Some("a_b")),
        ("a(b)c", Some("a_b_c")),
        ("a[b]c", Some("a_b_c")),
        ("a@b@c", Some("a_b_c")),
        ("a+-b", Some("a_-b")),
        ("a-+b", Some("a-_b")),
        ("a.+b", Some("a._b")),
        ("a+.+b", Some("a_._b")),
        ("a!@#$%^&*()b", Some("a_b")),
        ("Payments Core", Some("payments_core")),
        ("payments core (EMEA)", Some("payments_core_emea")),
        ("R&D", Some("r_d")),
        ("Sales & Marketing", Some("sales_marketing")),
        ("Team #42", Some("team_42")),
        ("All Staff!", Some("all_staff")),
        ("Engineering/Platform", Some("engineering_platform")),
        (
            "CN=Admins,OU=Groups,DC=corp",
            Some("cn_admins_ou_groups_dc_corp"),
        ),
        ("Q3 2024: Launch", Some("q3_2024_launch")),
        ("100% Remote", Some("100_remote")),
        ("C++ Guild", Some("c_guild")),
        ("C# devs", Some("c_devs")),
        ("Node.js", Some("node.js")),
        ("on-call / SRE", Some("on-call_sre")),
        ("a - - b", Some("a_-_-_b")),
    ]));
}

#[test]
fn normalize_strips_separators_from_both_ends() {
    check_normalize(&rows(&[
        ("_", None),
        ("-", None),
        (".", None),
        ("___", None),
        ("---", None),
        ("...", None),
        ("-._", None),
        ("_-._-.", None),
        ("~", None),
        ("@", None),
        ("!!!", None),
        ("@.@", None),
        ("_jane", Some("jane")),
        ("jane_", Some("jane")),
        (".jane.", Some("jane")),
        ("-jane-", Some("jane")),
        ("--jane--", Some("jane")),
        ("._-jane-_.", Some("jane")),
        ("@jane", Some("jane")),
        ("jane@", Some("jane")),
        ("(jane)", Some("jane")),
        ("[jane]", Some("jane")),
        ("jane!", Some("jane")),
        ("!!!jane!!!", Some("jane")),
        ("jane$", Some("jane")),
        ("50%", Some("50")),
        ("#1", Some("1")),
        ("-1-", Some("1")),
        (".a.b.", Some("a.b")),
        ("_a_b_", Some("a_b")),
        ("-a-b-", Some("a-b")),
        (" - jane - ", Some("jane")),
        ("jane.-", Some("jane")),
        ("jane-.", Some("jane")),
        ("jane._", Some("jane")),
        ("jane +", Some("jane")),
        ("+ jane", Some("jane")),
    ]));
}

#[test]
fn normalize_replaces_non_ascii_characters() {
    check_normalize(&rows(&[
        ("José", Some("jos")),
        ("José Álvarez", Some("jos_lvarez")),
        ("Zoë", Some("zo")),
        ("Zoë Smith", Some("zo_smith")),
        ("Müller", Some("m_ller")),
        ("Straße", Some("stra_e")),
        ("Ærøskøbing", Some("r_sk_bing")),
        ("Łukasz", Some("ukasz")),
        ("Ñandú", Some("and")),
        ("François", Some("fran_ois")),
        ("Björk Guðmundsdóttir", Some("bj_rk_gu_mundsd_ttir")),
        ("Ελένη", None),
        ("山田太郎", None),
        ("山田 taro", Some("taro")),
        ("taro 山田", Some("taro")),
        ("taro山田yamada", Some("taro_yamada")),
        ("Иван.Петров", None),
        ("ivan.Петров", Some("ivan")),
        ("Петров.ivan", Some("ivan")),
        ("محمد", None),
        ("שלום-team", Some("team")),
        ("😀", None),
        ("jane😀doe", Some("jane_doe")),
        ("jane😀😀doe", Some("jane_doe")),
        ("jane 😀 doe", Some("jane_doe")),
        ("👩‍💻 devs", Some("devs")),
        // U+212A KELVIN SIGN lowercases to an ASCII `k`.
        ("\u{212A}elvin", Some("kelvin")),
        // U+0130 lowercases to `i` + U+0307 COMBINING DOT ABOVE.
        ("İpek", Some("i_pek")),
        ("ŞAHİN", Some("ahi_n")),
        // A ligature is already lowercase, and not ASCII.
        ("\u{FB01}le", Some("le")),
        ("ＡＢＣ", None),
        ("abc１２３", Some("abc")),
        ("\u{200B}jane", Some("jane")),
        ("ja\u{200B}ne", Some("ja_ne")),
        ("jane\u{301}", Some("jane")),
        ("e\u{301}mile", Some("e_mile")),
        ("\u{FEFF}jane", Some("jane")),
        ("naïve café", Some("na_ve_caf")),
        ("Ørsted Wind", Some("rsted_wind")),
        ("Åsa.Öberg@example.se", Some("sa._berg_example.se")),
    ]));
}

#[test]
fn normalize_cuts_to_63_and_strips_the_cut_end() {
    check_normalize(&[
        (a(63), Some(a(63))),
        (a(64), Some(a(63))),
        (a(100), Some(a(63))),
        (a(1000), Some(a(63))),
        (a(62) + "b", Some(a(62) + "b")),
        (a(62) + "bc", Some(a(62) + "b")),
        (a(62) + ".b", Some(a(62))),
        (a(62) + "_b", Some(a(62))),
        (a(62) + "-b", Some(a(62))),
        (a(61) + "-.b", Some(a(61))),
        (a(60) + "._-b", Some(a(60))),
        (a(61) + " b", Some(a(61) + "_b")),
        (a(62) + " b", Some(a(62))),
        (a(62) + "é", Some(a(62))),
        ("_".repeat(10) + &a(63), Some(a(63))),
        ("é".repeat(10) + &a(70), Some(a(63))),
        (
            a(30) + &" ".repeat(10) + &"b".repeat(40),
            Some(a(30) + "_" + &"b".repeat(32)),
        ),
        ("é".repeat(100) + "a", Some("a".into())),
        ("a".to_string() + &"é".repeat(100) + "b", Some("a_b".into())),
        (
            "Jane.Doe+".to_string() + &"x".repeat(80) + "@acme.example",
            Some("jane.doe_".to_string() + &"x".repeat(54)),
        ),
        (a(64) + "@example.com", Some(a(63))),
        ("ab".repeat(40), Some("ab".repeat(31) + "a")),
    ]);
}

#[test]
fn normalized_names_survive_normalizing_again() {
    for input in [
        "Jane.Doe+ops@Acme.example",
        "José Álvarez",
        "  _weird_ name__ ",
        "a.b-c_d",
    ] {
        let once = normalize(input).unwrap();
        assert_eq!(normalize(once.as_str()).unwrap().as_str(), once.as_str());
    }
}

// ---------------------------------------------------------------------------
// Users and groups
// ---------------------------------------------------------------------------

#[test]
fn user_bases_follow_the_strategy() {
    use NameStrategy::{EmailLocalPart as Local, UserName as Full};
    let table: &[(NameStrategy, &str, Option<&str>, Option<&str>)] = &[
        // The reference example, both ways.
        (
            Full,
            "Jane.Doe+ops@Acme.example",
            None,
            Some("jane.doe_ops_acme.example"),
        ),
        (
            Local,
            "Jane.Doe+ops@Acme.example",
            None,
            Some("jane.doe_ops"),
        ),
        // The local-part strategy prefers the email.
        (Local, "jane.doe@a.example", None, Some("jane.doe")),
        (Local, "jane.doe@b.example", None, Some("jane.doe")),
        (Local, "jdoe", None, Some("jdoe")),
        (
            Local,
            "jdoe",
            Some("Jane.Doe@acme.example"),
            Some("jane.doe"),
        ),
        (
            Local,
            "jdoe@corp.example",
            Some("jane@acme.example"),
            Some("jane"),
        ),
        (
            Local,
            "jane",
            Some("JANE.DOE+tag@x.example"),
            Some("jane.doe_tag"),
        ),
        (Local, "jane", Some("  jd@x.example  "), Some("jd")),
        (Local, "jane", Some("no-at-sign"), Some("no-at-sign")),
        (
            Local,
            "jane",
            Some("Jane Doe <jane@x.example>"),
            Some("jane_doe_jane"),
        ),
        // A blank or useless email falls back to the userName.
        (Local, "jdoe", Some(""), Some("jdoe")),
        (Local, "jdoe", Some("   "), Some("jdoe")),
        (Local, "jdoe", Some("@acme.example"), Some("jdoe")),
        (
            Local,
            "jdoe@x.example",
            Some("山田@acme.example"),
            Some("jdoe"),
        ),
        (
            Local,
            "jdoe@x.example",
            Some("___@acme.example"),
            Some("jdoe"),
        ),
        // ... and a useless userName to nothing (the caller's fallback).
        (Local, "山田@x.example", Some("山田@acme.example"), None),
        (Local, "@corp", None, None),
        (Local, "+++@corp", None, None),
        // The local part ends at the last `@` (quoted local parts).
        (Local, "\"a@b\"@example.com", None, Some("a_b")),
        (Local, "a@b@c", None, Some("a_b")),
        (Local, "jdoe@", None, Some("jdoe")),
        (Local, "  Jane@x.example  ", None, Some("jane")),
        (Local, "DOMAIN\\jdoe", None, Some("domain_jdoe")),
        (Local, "Jane Doe", None, Some("jane_doe")),
        (Local, "José.Álvarez@example.es", None, Some("jos_._lvarez")),
        (Local, "jane", Some("José@example.es"), Some("jos")),
        (Local, &"x".repeat(100), None, Some(&"x".repeat(63))),
        (
            Local,
            "x@y",
            Some(&format!("{}@example.com", "y".repeat(80))),
            Some(&"y".repeat(63)),
        ),
        // The userName strategy ignores email entirely.
        (
            Full,
            "Jane.Doe+ops@Acme.example",
            Some("other@x.example"),
            Some("jane.doe_ops_acme.example"),
        ),
        (Full, "jdoe", Some("jane@x.example"), Some("jdoe")),
        (Full, "jane.doe@a.example", None, Some("jane.doe_a.example")),
        (Full, "jane.doe@b.example", None, Some("jane.doe_b.example")),
        (Full, "DOMAIN\\jdoe", None, Some("domain_jdoe")),
        (
            Full,
            "jdoe@CORP.EXAMPLE.COM",
            None,
            Some("jdoe_corp.example.com"),
        ),
        (Full, "山田", Some("jane@x.example"), None),
        (Full, "@@@", None, None),
        (Full, "  jane  ", None, Some("jane")),
        (Full, "İpek@example.tr", None, Some("i_pek_example.tr")),
        (
            Full,
            &format!("{}@example.com", "j".repeat(60)),
            None,
            Some(&format!("{}_ex", "j".repeat(60))),
        ),
    ];
    let mut failures = Vec::new();
    for (strategy, user_name, email, expected) in table {
        let got = user_base(*strategy, user_name, *email).map(|n| n.as_str().to_owned());
        if got.as_deref() != *expected {
            failures.push(format!(
                "{strategy:?} {user_name:?} {email:?}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn user(user_name: &str, emails: &[(&str, Option<bool>)]) -> User {
    let mut attributes = UserAttributes::with_user_name(UserName::parse(user_name).unwrap());
    attributes.emails = emails
        .iter()
        .map(|(value, primary)| MultiValue {
            value: Some((*value).to_owned()),
            primary: *primary,
            ..MultiValue::default()
        })
        .collect();
    User {
        id: UserId::from_uuid(Uuid::parse_str("1b4e28ba-2fa1-11d2-883f-0016d3cca427").unwrap()),
        meta: Meta::new(datetime!(2024-05-01 12:00 UTC)),
        attributes,
    }
}

fn group(display_name: &str) -> Group {
    Group {
        id: GroupId::from_uuid(Uuid::parse_str("9c0ffee0-0000-4000-8000-000000000001").unwrap()),
        meta: Meta::new(datetime!(2024-05-01 12:00 UTC)),
        attributes: GroupAttributes {
            display_name: DisplayName::parse(display_name).unwrap(),
            external_id: None,
        },
    }
}

#[test]
fn user_base_names_use_the_primary_email_and_fall_back_to_the_id() {
    use NameStrategy::{EmailLocalPart as Local, UserName as Full};
    type Emails<'a> = &'a [(&'a str, Option<bool>)];
    let table: &[(NameStrategy, &str, Emails, &str)] = &[
        (Local, "jdoe", &[], "jdoe"),
        (Local, "jdoe", &[("first@x.example", None)], "first"),
        (
            Local,
            "jdoe",
            &[("first@x.example", None), ("primary@x.example", Some(true))],
            "primary",
        ),
        (
            Local,
            "jdoe",
            &[("first@x.example", Some(false)), ("second@x.example", None)],
            "first",
        ),
        (Local, "山田", &[], "user-1b4e28ba"),
        (
            Local,
            "山田@x",
            &[("太郎@x.example", Some(true))],
            "user-1b4e28ba",
        ),
        (
            Full,
            "山田",
            &[("taro@x.example", Some(true))],
            "user-1b4e28ba",
        ),
        (
            Full,
            "Jane.Doe+ops@Acme.example",
            &[("j@x.example", Some(true))],
            "jane.doe_ops_acme.example",
        ),
    ];
    for (strategy, user_name, emails, expected) in table {
        let got = user_base_name(*strategy, &user(user_name, emails));
        assert_eq!(
            got.as_str(),
            *expected,
            "{strategy:?} {user_name:?} {emails:?}"
        );
    }
}

#[test]
fn group_base_names_come_from_the_display_name() {
    for (display_name, expected) in [
        ("Payments Core", "payments_core"),
        ("payments-core", "payments-core"),
        ("R&D", "r_d"),
        ("Платформа", "group-9c0ffee0"),
        ("!!!", "group-9c0ffee0"),
        ("Team 🚀", "team"),
    ] {
        assert_eq!(group_base_name(&group(display_name)).as_str(), expected);
    }
}

#[test]
fn fallbacks_are_valid_names() {
    let id = Uuid::parse_str("00000000-0000-4000-8000-000000000000").unwrap();
    assert_eq!(fallback("user", id).as_str(), "user-00000000");
    assert_eq!(fallback("group", id).as_str(), "group-00000000");
    assert_eq!(fallback("", id).as_str(), "00000000");
}

// ---------------------------------------------------------------------------
// Collisions
// ---------------------------------------------------------------------------

#[test]
fn candidates_append_a_counter_and_stay_within_63() {
    let base = |s: &str| EntityName::parse(s).unwrap();
    let table: Vec<(EntityName, u32, String)> = vec![
        (base("jane"), 0, "jane".into()),
        (base("jane"), 1, "jane".into()),
        (base("jane"), 2, "jane-2".into()),
        (base("jane"), 3, "jane-3".into()),
        (base("jane"), 10, "jane-10".into()),
        (base("jane"), 100, "jane-100".into()),
        (base("jane.doe"), 2, "jane.doe-2".into()),
        (base("jane-2"), 2, "jane-2-2".into()),
        (base("x"), 4_294_967_295, "x-4294967295".into()),
        (base(&a(61)), 2, a(61) + "-2"),
        (base(&a(62)), 2, a(61) + "-2"),
        (base(&a(63)), 2, a(61) + "-2"),
        (base(&a(63)), 9, a(61) + "-9"),
        (base(&a(63)), 10, a(60) + "-10"),
        (base(&a(63)), 100, a(59) + "-100"),
        (base(&a(63)), 4_294_967_295, a(52) + "-4294967295"),
        (base(&(a(60) + ".bb")), 2, a(60) + "-2"),
        (base(&(a(59) + "_-.b")), 2, a(59) + "-2"),
        (base(&(a(60) + "b-c")), 2, a(60) + "b-2"),
        (base(&(a(60) + "b-c")), 10, a(60) + "-10"),
    ];
    for (base, n, expected) in table {
        let got = candidate(&base, n);
        assert_eq!(got.as_str(), expected, "{base:?} #{n}");
        assert!(got.as_str().len() <= EntityName::MAX_LEN);
        EntityName::parse(got.as_str()).unwrap();
    }
}

#[test]
fn choose_takes_the_first_free_candidate() {
    let jane = EntityName::parse("jane").unwrap();
    let mut taken = HashSet::new();
    assert_eq!(choose(&jane, &mut taken).as_str(), "jane");
    assert_eq!(choose(&jane, &mut taken).as_str(), "jane-2");
    assert_eq!(choose(&jane, &mut taken).as_str(), "jane-3");
    // Names are taken case-insensitively.
    let mut taken: HashSet<String> = ["jane".into(), "jane-2".into()].into();
    assert_eq!(
        choose(&EntityName::parse("JANE").unwrap(), &mut taken).as_str(),
        "JANE-3"
    );
    // A gap is filled.
    let mut taken: HashSet<String> = ["jane".into(), "jane-3".into()].into();
    assert_eq!(choose(&jane, &mut taken).as_str(), "jane-2");
    assert_eq!(choose(&jane, &mut taken).as_str(), "jane-4");
    // A base that looks like another's candidate.
    let mut taken: HashSet<String> = ["jane-2".into()].into();
    assert_eq!(
        choose(&EntityName::parse("jane-2").unwrap(), &mut taken).as_str(),
        "jane-2-2"
    );
    // Long bases collide after the cut, and still get distinct names.
    let mut taken = HashSet::new();
    let long_a = EntityName::parse(&(a(62) + "x")).unwrap();
    let long_b = EntityName::parse(&(a(62) + "y")).unwrap();
    assert_eq!(choose(&long_a, &mut taken).as_str(), a(62) + "x");
    assert_eq!(choose(&long_b, &mut taken).as_str(), a(62) + "y");
    assert_eq!(choose(&long_a, &mut taken).as_str(), a(61) + "-2");
    assert_eq!(choose(&long_b, &mut taken).as_str(), a(61) + "-3");
    // A long base that ends like a candidate: its own `-2` is itself.
    let looks_numbered = EntityName::parse(&(a(61) + "-2")).unwrap();
    assert_eq!(candidate(&looks_numbered, 2), looks_numbered);
    let mut taken: HashSet<String> = [looks_numbered.folded()].into();
    assert_eq!(choose(&looks_numbered, &mut taken).as_str(), a(61) + "-3");
}

#[test]
fn colliding_users_are_numbered_in_the_order_given() {
    let mut taken = HashSet::new();
    let names: Vec<String> = [
        "jane.doe@a.example",
        "jane.doe@b.example",
        "Jane.Doe@c.example",
    ]
    .iter()
    .map(|u| {
        let base = user_base(NameStrategy::EmailLocalPart, u, None).unwrap();
        choose(&base, &mut taken).as_str().to_owned()
    })
    .collect();
    assert_eq!(names, ["jane.doe", "jane.doe-2", "jane.doe-3"]);
}

// ---------------------------------------------------------------------------
// EntityName itself
// ---------------------------------------------------------------------------

#[test]
fn entity_names_accept_exactly_the_backstage_rule() {
    let valid = [
        "a".to_string(),
        "A".into(),
        "0".into(),
        "ab".into(),
        "a-b".into(),
        "a_b".into(),
        "a.b".into(),
        "A.B-C_D".into(),
        "a--b".into(),
        "a..b".into(),
        "a-_.b".into(),
        "1.2".into(),
        "Jane.Doe".into(),
        a(63),
    ];
    for name in &valid {
        assert_eq!(EntityName::parse(name).unwrap().as_str(), name);
    }
    let invalid = [
        (String::new(), EntityNameError::Empty),
        (a(64), EntityNameError::TooLong(64)),
        ("-".into(), EntityNameError::InvalidEdge),
        ("_".into(), EntityNameError::InvalidEdge),
        (".".into(), EntityNameError::InvalidEdge),
        ("-a".into(), EntityNameError::InvalidEdge),
        ("a-".into(), EntityNameError::InvalidEdge),
        ("_a".into(), EntityNameError::InvalidEdge),
        ("a_".into(), EntityNameError::InvalidEdge),
        (".a".into(), EntityNameError::InvalidEdge),
        ("a.".into(), EntityNameError::InvalidEdge),
        ("a b".into(), EntityNameError::InvalidCharacter(' ')),
        ("a@b".into(), EntityNameError::InvalidCharacter('@')),
        ("a+b".into(), EntityNameError::InvalidCharacter('+')),
        ("a/b".into(), EntityNameError::InvalidCharacter('/')),
        ("a:b".into(), EntityNameError::InvalidCharacter(':')),
        ("é".into(), EntityNameError::InvalidCharacter('é')),
        ("ab\n".into(), EntityNameError::InvalidCharacter('\n')),
        ("é".repeat(64), EntityNameError::TooLong(64)),
    ];
    for (name, error) in invalid {
        assert_eq!(EntityName::parse(&name).unwrap_err(), error, "{name:?}");
    }
}

#[test]
fn entity_names_compare_case_insensitively_and_keep_their_spelling() {
    let upper = EntityName::parse("Jane.Doe").unwrap();
    let lower = EntityName::parse("jane.doe").unwrap();
    assert_eq!(upper, lower);
    assert_eq!(upper.as_str(), "Jane.Doe");
    assert_eq!(upper.folded(), "jane.doe");
    let set: HashSet<EntityName> = [upper, lower].into();
    assert_eq!(set.len(), 1);
    let json = serde_json::to_string(&EntityName::parse("Jane").unwrap()).unwrap();
    assert_eq!(json, "\"Jane\"");
    assert!(serde_json::from_str::<EntityName>("\"not valid\"").is_err());
    assert_eq!(
        serde_json::from_str::<EntityName>("\"ok\"")
            .unwrap()
            .as_str(),
        "ok"
    );
}

#[test]
fn strategies_are_spelled_in_kebab_case() {
    assert_eq!(
        serde_json::to_string(&NameStrategy::EmailLocalPart).unwrap(),
        "\"email-local-part\""
    );
    assert_eq!(
        serde_json::from_str::<NameStrategy>("\"user-name\"").unwrap(),
        NameStrategy::UserName
    );
    assert_eq!(NameStrategy::default(), NameStrategy::EmailLocalPart);
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// An independent statement of the rule, for the properties below.
fn obeys_the_rule(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

/// Arbitrary text with plenty of the characters the rules care about.
fn identity() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,80}",
        "[a-zA-Z0-9._+@ -]{0,100}",
        "[_.\\-a@ é山]{0,70}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn normalized_names_are_always_valid_lowercase_and_stable(raw in identity()) {
        if let Some(name) = normalize(&raw) {
            prop_assert!(obeys_the_rule(name.as_str()), "{:?} -> {:?}", raw, name);
            prop_assert!(EntityName::parse(name.as_str()).is_ok());
            prop_assert_eq!(name.as_str(), name.folded());
            // Deterministic, and a fixed point.
            prop_assert_eq!(normalize(&raw).unwrap().to_string(), name.to_string());
            prop_assert_eq!(normalize(name.as_str()).unwrap().to_string(), name.to_string());
        } else {
            // Nothing survives only when there is no ASCII letter or digit
            // after lowercasing.
            prop_assert!(!raw.chars().flat_map(char::to_lowercase).any(|c| c.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn parse_agrees_with_the_rule(raw in "[a-zA-Z0-9._ -]{0,70}") {
        prop_assert_eq!(EntityName::parse(&raw).is_ok(), obeys_the_rule(&raw));
    }

    #[test]
    fn user_base_names_are_always_valid(
        user_name in identity().prop_map(|s| {
            let s: String = s.chars().filter(|c| !c.is_control()).take(200).collect();
            if s.trim().is_empty() { "u".to_owned() } else { s }
        }),
        email in proptest::option::of(identity()),
        full in any::<bool>(),
    ) {
        let strategy = if full { NameStrategy::UserName } else { NameStrategy::EmailLocalPart };
        let mut u = user(&user_name, &[]);
        if let Some(email) = &email {
            u.attributes.emails = vec![MultiValue { value: Some(email.clone()), ..MultiValue::default() }];
        }
        let name = user_base_name(strategy, &u);
        prop_assert!(obeys_the_rule(name.as_str()));
        prop_assert_eq!(user_base_name(strategy, &u).to_string(), name.to_string());
    }

    #[test]
    fn candidates_are_valid_and_distinct(raw in identity(), count in 1u32..40) {
        let base = normalize(&raw).unwrap_or_else(|| EntityName::parse("x").unwrap());
        // The numbered candidates differ from each other. (One of them may
        // equal the base itself when a long base ends in `-N`; `choose`
        // skips it like any taken name.)
        let mut seen = HashSet::new();
        for n in 1..=count {
            let c = candidate(&base, n);
            prop_assert!(obeys_the_rule(c.as_str()), "{:?}", c);
            if n >= 2 {
                prop_assert!(seen.insert(c.folded()), "{:?} repeated", c);
            }
        }
    }

    #[test]
    fn choose_never_returns_a_taken_name(
        raws in proptest::collection::vec(
            "[a-c]{1,3}|[a-c]{60,66}|[a-c]{1,3}-[1-9]|[a-c]{59,62}-[1-9]",
            1..40,
        ),
    ) {
        let mut taken = HashSet::new();
        let mut chosen = Vec::new();
        for raw in &raws {
            let base = normalize(raw).unwrap();
            let before = taken.clone();
            let name = choose(&base, &mut taken);
            prop_assert!(!before.contains(&name.folded()));
            prop_assert!(taken.contains(&name.folded()));
            prop_assert!(obeys_the_rule(name.as_str()));
            chosen.push(name.as_str().to_owned());
        }
        // The same inputs in the same order give the same names.
        let mut again = HashSet::new();
        let replay: Vec<String> = raws
            .iter()
            .map(|raw| choose(&normalize(raw).unwrap(), &mut again).as_str().to_owned())
            .collect();
        prop_assert_eq!(replay, chosen);
    }
}
