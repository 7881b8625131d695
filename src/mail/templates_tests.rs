//! Loading and rendering the mail templates: the shipped ones, both engines, and what fails at start-up.
use super::*;

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(d.path().join(name), body).unwrap();
    }
    d
}

const SUBJECT: &str = "Your {{product_name}} code";

fn ctx() -> MailContext<'static> {
    MailContext {
        code: "042424",
        code_spoken: "0 4 2 4 2 4",
        email: "a<b>@example.com",
        product_name: "Shop & Co",
        ttl_minutes: 10,
        ttl_secs: 600,
    }
}

#[test]
fn shipped_templates_load_and_render_both_parts() {
    let t = Templates::load(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("mailer")
            .as_path(),
        SUBJECT,
    )
    .unwrap();
    let r = t.render(&ctx()).unwrap();
    assert_eq!(
        r.subject, "Your Shop & Co code",
        "the subject is not HTML-escaped"
    );
    assert!(r.html.contains("Shop &amp; Co") && r.text.contains("Shop & Co"));
    assert!(r.html.contains("0 4 2 4 2 4"), "digits for screen readers");
    assert!(r.html.contains("042424") && r.text.contains("042424"));
    assert!(
        r.html.contains("a&lt;b&gt;@example.com"),
        "HTML part escapes"
    );
    assert!(
        r.text.contains("a<b>@example.com"),
        "text part does not escape"
    );
}

/// Lines of at most 76 characters let the mail go out as 7bit: lettre picks quoted-printable
/// otherwise, which costs the worker CPU for every mail.
#[test]
fn shipped_templates_render_lines_short_enough_for_7bit() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("mailer");
    let t = Templates::load(&dir, SUBJECT).unwrap();
    let mut c = ctx();
    c.email = "firstname.lastname@example.com";
    let r = t.render(&c).unwrap();
    for (part, body) in [("html", &r.html), ("text", &r.text)] {
        for line in body.lines() {
            assert!(line.len() <= 76, "{part}: {} chars: {line}", line.len());
        }
    }
}

#[test]
fn tera_templates_are_picked_by_extension() {
    let d = dir_with(&[
        ("otp.tera", "<p>{{ code }} for {{ email }}</p>"),
        ("otp.txt.tera", "Code {{ code }} {{ email }}"),
    ]);
    let r = Templates::load(d.path(), SUBJECT)
        .unwrap()
        .render(&ctx())
        .unwrap();
    assert_eq!(r.html, "<p>042424 for a&lt;b&gt;@example.com</p>");
    assert_eq!(r.text, "Code 042424 a<b>@example.com");
}

#[test]
fn unknown_variables_fail_at_load_in_both_engines() {
    let d = dir_with(&[
        ("otp.hbs", "{{code}} {{nope}}"),
        ("otp.txt.hbs", "{{code}}"),
    ]);
    assert!(Templates::load(d.path(), SUBJECT).is_err());
    let d = dir_with(&[
        ("otp.tera", "{{ code }} {{ nope }}"),
        ("otp.txt.hbs", "{{code}}"),
    ]);
    assert!(Templates::load(d.path(), SUBJECT).is_err());
}

#[test]
fn a_subject_with_unknown_variables_or_two_lines_fails_at_load() {
    let d = dir_with(&[("otp.hbs", "{{code}}"), ("otp.txt.hbs", "{{code}}")]);
    assert!(Templates::load(d.path(), "{{nope}}").is_err());
    assert!(Templates::load(d.path(), "a{{email}}\nBcc: x").is_err());
    assert!(Templates::load(d.path(), "a {{product_name}}").is_ok());
}

#[test]
fn syntax_errors_missing_files_and_missing_code_fail_at_load() {
    let d = dir_with(&[("otp.hbs", "{{#if code}}"), ("otp.txt.hbs", "{{code}}")]);
    assert!(Templates::load(d.path(), SUBJECT).is_err());
    let d = dir_with(&[("otp.hbs", "{{code}}")]);
    let err = Templates::load(d.path(), SUBJECT)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("otp.txt.hbs"), "{err}");
    let d = dir_with(&[("otp.hbs", "no code here"), ("otp.txt.hbs", "{{code}}")]);
    assert!(Templates::load(d.path(), SUBJECT).is_err());
}

/// Templates that are not plain still render through Handlebars, with the values' copy built
/// once for the mail.
#[test]
fn templates_with_blocks_render_through_handlebars() {
    let d = dir_with(&[
        ("otp.hbs", "{{#if code}}<b>{{code}}</b>{{/if}} {{email}}"),
        (
            "otp.txt.hbs",
            "{{#unless email}}none{{/unless}}{{code}} {{email}}",
        ),
    ]);
    let t = Templates::load(d.path(), "{{#if code}}Code{{/if}} {{product_name}}").unwrap();
    let r = t.render(&ctx()).unwrap();
    assert_eq!(r.html, "<b>042424</b> a&lt;b&gt;@example.com");
    assert_eq!(r.text, "042424 a<b>@example.com");
    assert_eq!(r.subject, "Code Shop & Co");
}
