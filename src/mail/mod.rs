//! Turns (address, code) into a two-part MIME mail and hands it to the transport.
mod mime_body;
mod plain_template;
mod smtp_pool;
mod smtp_transaction;
mod templates;
mod tls;
mod transport;

use std::time::Duration;

use lettre::address::Envelope;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};

pub use templates::{MailContext, Templates};
pub use transport::{SendError, Transport};

use crate::config::Config;
use crate::domain::{EmailAddress, OtpCode};
use crate::outcome::SmtpReply;

pub struct Mailer {
    templates: Templates,
    transport: Transport,
    from: Mailbox,
    product_name: String,
}

impl Mailer {
    /// Compiles the templates (a broken one stops start-up) and builds the transport.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let mail = &config.mail;
        Ok(Self {
            templates: Templates::load(&mail.template_dir, &mail.subject)?,
            transport: Transport::new(mail, &config.smtp)?,
            from: mail.from.clone(),
            product_name: mail.product_name.clone(),
        })
    }

    /// Builds the message for exactly one recipient: the address as given. `lifetime_left` is
    /// how long the code still verifies, as the mail states it.
    pub fn compose(
        &self,
        to: &EmailAddress,
        code: &OtpCode,
        lifetime_left: Duration,
    ) -> Result<Message, SendError> {
        let permanent =
            |e: &dyn std::fmt::Display| SendError::Permanent(SmtpReply::Local, e.to_string());
        let address = Address::new(to.local_part(), to.domain()).map_err(|e| permanent(&e))?;
        let given = to.for_delivery();
        let spoken = spoken_digits(code.reveal());
        let ctx = MailContext {
            code: code.reveal(),
            code_spoken: &spoken,
            email: &given,
            product_name: &self.product_name,
            ttl_minutes: lifetime_left.as_secs().div_ceil(60),
            ttl_secs: lifetime_left.as_secs(),
        };
        let body = self
            .templates
            .render(&ctx)
            .map_err(|e| permanent(&format!("{e:#}")))?;
        // The envelope given, not re-parsed from the headers (lettre's default, ~7 % of a mail's CPU).
        let envelope = Envelope::new(Some(self.from.email.clone()), vec![address.clone()])
            .map_err(|e| permanent(&e))?;
        Message::builder()
            .envelope(envelope)
            // Large providers refuse mail without a Message-ID when the relay adds none.
            .message_id(Some(format!(
                "<{}@{}>",
                crate::domain::random_id(),
                self.from.email.domain()
            )))
            .date_now()
            // RFC 3834: no vacation or out-of-office replies to a machine-made mail.
            .header(AutoSubmitted)
            .from(self.from.clone())
            .to(Mailbox::new(None, address))
            .subject(body.subject)
            .multipart(MultiPart::alternative_plain_html(
                mime_body::crlf(body.text),
                mime_body::crlf(body.html),
            ))
            .map_err(|e| permanent(&e))
    }

    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        self.transport.send(message).await
    }
}

/// "042424" → "0 4 2 4 2 4".
fn spoken_digits(code: &str) -> String {
    let mut out = String::with_capacity(code.len() * 2);
    for (i, c) in code.chars().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// `Auto-Submitted: auto-generated` (RFC 3834 §5).
#[derive(Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_spaced_for_screen_readers() {
        assert_eq!(spoken_digits("042424"), "0 4 2 4 2 4");
    }
}
