//! Turns (address, code) into a two-part MIME mail and hands it to the transport.
mod smtp_pool;
mod templates;
mod transport;

use std::time::Duration;

use lettre::address::Envelope;
use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};

pub use templates::{MailContext, Templates};
pub use transport::{SendError, Transport};

use crate::config::Config;
use crate::domain::{EmailAddress, OtpCode};

pub struct Mailer {
    templates: Templates,
    transport: Transport,
    from: Mailbox,
    subject: String,
}

impl Mailer {
    /// Compiles the templates (a broken one stops start-up) and builds the transport.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let mail = &config.mail;
        Ok(Self {
            templates: Templates::load(&mail.template_dir)?,
            transport: Transport::new(mail, &config.smtp)?,
            from: mail.from.clone(),
            subject: mail.subject.clone(),
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
        let permanent = |e: &dyn std::fmt::Display| SendError::Permanent(e.to_string());
        let address = Address::new(to.local_part(), to.domain()).map_err(|e| permanent(&e))?;
        let given = to.for_delivery();
        let ctx = MailContext {
            code: code.reveal(),
            email: &given,
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
            .from(self.from.clone())
            .to(Mailbox::new(None, address))
            .subject(self.subject.clone())
            .multipart(MultiPart::alternative_plain_html(body.text, body.html))
            .map_err(|e| permanent(&e))
    }

    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        self.transport.send(message).await
    }
}
