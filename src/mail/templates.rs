//! Mail templates, compiled and test-rendered at start-up in strict mode, so a broken template
//! stops the process instead of the first mail. The engine is picked by file extension.
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use handlebars::Handlebars;
use serde::Serialize;

use super::plain_template::PlainTemplate;

/// What a template can use. Anything else is an error at start-up.
#[derive(Debug, Serialize)]
pub struct MailContext<'a> {
    pub code: &'a str,
    /// The digits separated by spaces, so a screen reader reads them one by one.
    pub code_spoken: &'a str,
    pub email: &'a str,
    pub product_name: &'a str,
    pub ttl_minutes: u64,
    pub ttl_secs: u64,
}

enum Engine {
    Handlebars(Box<Handlebars<'static>>),
    /// A Handlebars template of text and fields only, rendered without the engine.
    Plain(PlainTemplate),
    Tera(Box<tera::Tera>),
}

/// `hb`'s template, plain when it can be.
fn handlebars(hb: Handlebars<'static>, html: bool) -> Engine {
    match hb
        .get_template(NAME)
        .and_then(|t| PlainTemplate::of(t, html))
    {
        Some(plain) => Engine::Plain(plain),
        None => Engine::Handlebars(Box::new(hb)),
    }
}

/// One compiled template (HTML or plain text).
struct Template {
    engine: Engine,
    path: PathBuf,
}

const NAME: &str = "t";

impl Template {
    /// Finds `<stem>.hbs` or `<stem>.tera` in `dir`; exactly one must exist.
    fn load(dir: &Path, stem: &str, html: bool) -> anyhow::Result<Self> {
        let hbs = dir.join(format!("{stem}.hbs"));
        let tera = dir.join(format!("{stem}.tera"));
        let path = match (hbs.is_file(), tera.is_file()) {
            (true, false) => hbs,
            (false, true) => tera,
            (true, true) => bail!(
                "both {} and {} exist: keep one",
                hbs.display(),
                tera.display()
            ),
            (false, false) => bail!("mail template {} (or .tera) not found", hbs.display()),
        };
        let source = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let engine = if path.extension().is_some_and(|e| e == "hbs") {
            let mut hb = Handlebars::new();
            hb.set_strict_mode(true);
            if !html {
                hb.register_escape_fn(handlebars::no_escape);
            }
            hb.register_template_string(NAME, source)
                .with_context(|| format!("compiling {}", path.display()))?;
            handlebars(hb, html)
        } else {
            let mut t = tera::Tera::default();
            t.autoescape_on(if html { vec![NAME] } else { vec![] });
            t.add_raw_template(NAME, &source)
                .with_context(|| format!("compiling {}", path.display()))?;
            Engine::Tera(Box::new(t))
        };
        Ok(Self { engine, path })
    }

    /// A one-line Handlebars template given in the configuration (no HTML escaping).
    fn inline(key: &str, source: &str) -> anyhow::Result<Self> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        hb.register_template_string(NAME, source)
            .with_context(|| format!("compiling {key}"))?;
        Ok(Self {
            engine: handlebars(hb, false),
            path: PathBuf::from(key),
        })
    }

    fn render(&self, contexts: &Contexts<'_>) -> anyhow::Result<String> {
        let out = match &self.engine {
            Engine::Plain(plain) => Ok(plain.render(contexts.values)),
            Engine::Handlebars(hb) => contexts
                .handlebars()
                .and_then(|c| hb.render_with_context(NAME, c).map_err(anyhow::Error::from)),
            Engine::Tera(t) => tera::Context::from_serialize(contexts.values)
                .and_then(|c| t.render(NAME, &c))
                .map_err(|e| anyhow::anyhow!("{e:?}")),
        };
        out.with_context(|| format!("rendering {}", self.path.display()))
    }
}

/// One mail's values, with Handlebars' copy of them built at most once for all its templates
/// (only templates that are not plain need it): each build copies the values into the engine's
/// own tree, a tenth of a mail's build when done per template.
struct Contexts<'a> {
    values: &'a MailContext<'a>,
    handlebars: std::cell::OnceCell<handlebars::Context>,
}

impl Contexts<'_> {
    fn handlebars(&self) -> anyhow::Result<&handlebars::Context> {
        if let Some(c) = self.handlebars.get() {
            return Ok(c);
        }
        let c = handlebars::Context::wraps(self.values).context("the mail's values")?;
        Ok(self.handlebars.get_or_init(|| c))
    }
}

pub struct Templates {
    subject: Template,
    html: Template,
    text: Template,
}

pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

impl Templates {
    /// Loads `otp.hbs|otp.tera` (HTML) and `otp.txt.hbs|otp.txt.tera` (plain text) from `dir`,
    /// compiles `subject` (a Handlebars template), and renders all three once with sample values,
    /// which is where strict mode catches unknown variables.
    pub fn load(dir: &Path, subject: &str) -> anyhow::Result<Self> {
        let t = Self {
            subject: Template::inline("mail.subject", subject)?,
            html: Template::load(dir, "otp", true)?,
            text: Template::load(dir, "otp.txt", false)?,
        };
        let sample = MailContext {
            code: "123456",
            code_spoken: "1 2 3 4 5 6",
            email: "user@example.com",
            product_name: "Example",
            ttl_minutes: 10,
            ttl_secs: 600,
        };
        let rendered = t.render(&sample)?;
        if rendered.subject.contains(['\r', '\n']) {
            bail!("mail.subject must render to a single line");
        }
        if !rendered.html.contains(sample.code) || !rendered.text.contains(sample.code) {
            bail!(
                "the mail templates in {} must both show {{{{code}}}}",
                dir.display()
            );
        }
        Ok(t)
    }

    pub fn render(&self, ctx: &MailContext<'_>) -> anyhow::Result<Rendered> {
        let contexts = Contexts {
            values: ctx,
            handlebars: std::cell::OnceCell::new(),
        };
        Ok(Rendered {
            subject: self.subject.render(&contexts)?,
            html: self.html.render(&contexts)?,
            text: self.text.render(&contexts)?,
        })
    }
}

#[cfg(test)]
#[path = "templates_tests.rs"]
mod tests;
