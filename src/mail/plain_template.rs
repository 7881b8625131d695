//! A Handlebars template that is only text and `{{field}}` / `{{{field}}}` (the shipped ones
//! are), rendered by joining its pieces. Handlebars' renderer walks a JSON copy of the mail's
//! values, looks each name up and checks for helpers of that name on every mail: about a sixth
//! of a mail's instructions. Any other template (blocks, helpers, paths, partials) stays with
//! Handlebars. A test renders templates both ways and compares.
use handlebars::template::{Parameter, TemplateElement};

use super::templates::MailContext;

/// The values a plain template can name: `MailContext`'s fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Code,
    CodeSpoken,
    Email,
    ProductName,
    TtlMinutes,
    TtlSecs,
}

impl Field {
    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "code" => Self::Code,
            "code_spoken" => Self::CodeSpoken,
            "email" => Self::Email,
            "product_name" => Self::ProductName,
            "ttl_minutes" => Self::TtlMinutes,
            "ttl_secs" => Self::TtlSecs,
            _ => return None,
        })
    }
}

#[derive(Debug)]
enum Piece {
    Text(String),
    /// A field; `escaped`: HTML-escaped as Handlebars' `{{…}}` is in an HTML template.
    Field {
        field: Field,
        escaped: bool,
    },
}

#[derive(Debug)]
pub struct PlainTemplate {
    pieces: Vec<Piece>,
    /// Capacity for the output: the text's length plus room for the fields.
    size_hint: usize,
}

impl PlainTemplate {
    /// The template as pieces, if it is plain; `html`: whether `{{…}}` escapes.
    pub fn of(template: &handlebars::template::Template, html: bool) -> Option<Self> {
        let mut pieces = Vec::with_capacity(template.elements.len());
        for element in &template.elements {
            let piece = match element {
                TemplateElement::RawString(text) => Piece::Text(text.clone()),
                TemplateElement::Comment(_) => continue,
                TemplateElement::Expression(h) => Piece::Field {
                    field: simple_field(h)?,
                    escaped: html,
                },
                TemplateElement::HtmlExpression(h) => Piece::Field {
                    field: simple_field(h)?,
                    escaped: false,
                },
                _ => return None,
            };
            pieces.push(piece);
        }
        let text: usize = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.len(),
                Piece::Field { .. } => 0,
            })
            .sum();
        Some(Self {
            pieces,
            size_hint: text + 256,
        })
    }

    pub fn render(&self, values: &MailContext<'_>) -> String {
        let mut out = String::with_capacity(self.size_hint);
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Field { field, escaped } => {
                    let number;
                    let value = match field {
                        Field::Code => values.code,
                        Field::CodeSpoken => values.code_spoken,
                        Field::Email => values.email,
                        Field::ProductName => values.product_name,
                        Field::TtlMinutes => {
                            number = values.ttl_minutes.to_string();
                            &number
                        }
                        Field::TtlSecs => {
                            number = values.ttl_secs.to_string();
                            &number
                        }
                    };
                    match escaped {
                        true => push_html_escaped(&mut out, value),
                        false => out.push_str(value),
                    }
                }
            }
        }
        out
    }
}

/// Handlebars' `html_escape` (the same seven characters, the same entities) written straight
/// into `out`: Handlebars' own pushes one character at a time into a new `String`.
fn push_html_escaped(out: &mut String, value: &str) {
    let mut start = 0;
    for (i, byte) in value.bytes().enumerate() {
        let entity = match byte {
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'&' => "&amp;",
            b'\'' => "&#x27;",
            b'`' => "&#x60;",
            b'=' => "&#x3D;",
            _ => continue,
        };
        // The seven are ASCII, which never occurs inside a multi-byte character: `i` is a
        // character boundary.
        out.push_str(&value[start..i]);
        out.push_str(entity);
        start = i + 1;
    }
    out.push_str(&value[start..]);
}

/// `{{name}}` of a known field: no parameters, hash, block or path beyond the bare name.
fn simple_field(h: &handlebars::template::HelperTemplate) -> Option<Field> {
    let plain = h.params.is_empty()
        && h.hash.is_empty()
        && h.block_param.is_none()
        && h.template.is_none()
        && h.inverse.is_none()
        && !h.block;
    if !plain {
        return None;
    }
    match &h.name {
        Parameter::Name(name) => Field::named(name),
        Parameter::Path(handlebars::Path::Relative((segments, raw))) if segments.len() == 1 => {
            Field::named(raw)
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "plain_template_tests.rs"]
mod tests;
