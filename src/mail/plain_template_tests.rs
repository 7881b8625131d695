//! Plain templates against Handlebars: the same text for every template that is plain, and the
//! shipped templates are plain.
use std::path::Path;

use handlebars::Handlebars;

use super::*;

/// Values with everything HTML escaping touches, and numbers.
fn contexts() -> Vec<MailContext<'static>> {
    let a = MailContext {
        code: "042424",
        code_spoken: "0 4 2 4 2 4",
        email: "o'neil+`x`=1@example.com",
        product_name: "Shop & <Co> \"best\" ü",
        ttl_minutes: 10,
        ttl_secs: 600,
    };
    let b = MailContext {
        code: "99999999",
        code_spoken: "9 9 9 9 9 9 9 9",
        email: "a@b.example",
        product_name: "",
        ttl_minutes: 0,
        ttl_secs: 18_446_744_073_709_551_615,
    };
    vec![a, b]
}

/// The template rendered by Handlebars, as `Templates` configures it, and as pieces if plain.
fn both(source: &str, html: bool) -> (Vec<String>, Option<Vec<String>>) {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    if !html {
        hb.register_escape_fn(handlebars::no_escape);
    }
    hb.register_template_string("t", source).unwrap();
    let theirs = contexts()
        .iter()
        .map(|c| hb.render("t", c).unwrap())
        .collect();
    let plain = PlainTemplate::of(hb.get_template("t").unwrap(), html);
    let ours = plain.map(|p| contexts().iter().map(|c| p.render(c)).collect());
    (theirs, ours)
}

fn shipped(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("mailer")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn plain_templates_render_as_handlebars_does() {
    let plain = [
        (shipped("otp.hbs"), true),
        (shipped("otp.txt.hbs"), false),
        ("Your {{product_name}} verification code".to_owned(), false),
        (
            "{{code}}{{{email}}}{{! a comment }}{{!-- another --}}|".to_owned(),
            true,
        ),
        ("a {{~email~}}  b\n  {{ code }}  \n".to_owned(), true),
        ("\\{{code}} {{product_name}}".to_owned(), true),
        (
            "{{ttl_minutes}}/{{ttl_secs}} {{code_spoken}}".to_owned(),
            true,
        ),
        ("{{email}} {{{product_name}}}".to_owned(), false),
    ];
    for (source, html) in plain {
        let (theirs, ours) = both(&source, html);
        assert_eq!(Some(theirs), ours, "{source}");
    }
}

#[test]
fn anything_more_stays_with_handlebars() {
    for source in [
        "{{#if code}}x{{/if}}",
        "{{lookup this \"code\"}}",
        "{{@root.code}}",
        "{{this.code}}",
        "{{len email}}",
        "{{email key=1}}",
        "{{> partial}}",
    ] {
        let mut hb = Handlebars::new();
        if hb.register_template_string("t", source).is_err() {
            continue;
        }
        let template = hb.get_template("t").unwrap();
        assert!(PlainTemplate::of(template, true).is_none(), "{source}");
    }
}

proptest::proptest! {
    #[test]
    fn escaping_matches_handlebars(value in "\\PC{0,40}|[<>\"&'`= a-zé]{0,20}") {
        let mut ours = String::from("x");
        push_html_escaped(&mut ours, &value);
        proptest::prop_assert_eq!(ours, format!("x{}", handlebars::html_escape(&value)));
    }
}
