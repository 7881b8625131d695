//! One mail on an open SMTP session: MAIL, RCPT, DATA and the message. With a relay that offers
//! PIPELINING (RFC 2920) the three commands go in one write and the message with its final dot in
//! another, two round trips a mail instead of four (and five writes).
use std::fmt;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;

use super::SendError;
use crate::outcome::SmtpReply;

/// An open SMTP session and what its relay offers beyond lettre's `ServerInfo`.
pub struct Session {
    pub conn: AsyncSmtpConnection,
    /// The relay's EHLO listed PIPELINING.
    pub pipelining: bool,
}

/// Where a transaction failed: before the data, the relay cannot have the mail.
pub enum Failed {
    BeforeData(SendError),
    AfterData(SendError),
}

/// Whether an EHLO reply offers PIPELINING (a line whose first word is the keyword).
pub fn offers_pipelining(ehlo: &Response) -> bool {
    ehlo.message().any(|line| {
        line.split_whitespace()
            .next()
            .is_some_and(|word| word.eq_ignore_ascii_case("PIPELINING"))
    })
}

/// MAIL, RCPT, DATA, then the message, each reply awaited under `timeout` (what lettre's `send`
/// does, split so the caller knows whether the relay could have the mail). A failed session must
/// be dropped: with pipelining, replies to the rest of the group may still be unread.
pub async fn transaction(
    session: &mut Session,
    envelope: &Envelope,
    bytes: &[u8],
    timeout: Duration,
) -> Result<(), Failed> {
    let conn = &mut session.conn;
    let mail = Mail::new(
        envelope.from().cloned(),
        mail_options(conn, envelope, bytes)?,
    );
    let commands: Vec<String> = std::iter::once(mail.to_string())
        .chain(
            envelope
                .to()
                .iter()
                .map(|to| Rcpt::new(to.clone(), vec![]).to_string()),
        )
        .chain(std::iter::once(Data.to_string()))
        .collect();
    if session.pipelining {
        // One write; the replies come in the commands' order: MAIL's, each RCPT's, DATA's 354.
        step(timeout, conn.command(Verbatim(&commands.concat()))).await?;
        for _ in 1..commands.len() {
            step(timeout, conn.read_response()).await?;
        }
    } else {
        for command in &commands {
            step(timeout, conn.command(Verbatim(command))).await?;
        }
    }
    let block = data_block(bytes);
    let replied = match std::str::from_utf8(&block) {
        // The message and its final dot in one write (lettre's `message` makes two).
        Ok(text) => tokio::time::timeout(timeout, conn.command(Verbatim(text))).await,
        // `command` writes text only. Our parts are 7bit, quoted-printable or base64, so this is
        // for a mail with raw 8-bit bytes, which lettre's own writer sends correctly.
        Err(_) => tokio::time::timeout(timeout, conn.message(bytes)).await,
    };
    match replied {
        Ok(Ok(_)) => Ok(()),
        // A reply to the data is the relay's decision about this mail.
        Ok(Err(e)) if e.is_permanent() || e.is_transient() => Err(Failed::AfterData(classify(e))),
        Ok(Err(e)) => Err(Failed::AfterData(SendError::Unconfirmed(
            no_reply(&e),
            format!("no reply to the mail's data: {e}"),
        ))),
        Err(_) => Err(Failed::AfterData(SendError::Unconfirmed(
            SmtpReply::Timeout,
            format!("no reply to the mail's data within {timeout:?}"),
        ))),
    }
}

/// SMTPUTF8 and 8BITMIME when the envelope or the mail needs them; a relay without them refuses
/// here, before anything is sent.
fn mail_options(
    conn: &AsyncSmtpConnection,
    envelope: &Envelope,
    bytes: &[u8],
) -> Result<Vec<MailParameter>, Failed> {
    let mut options = vec![];
    let non_ascii = |a: &lettre::Address| !AsRef::<str>::as_ref(a).is_ascii();
    let refuse = |what: &str| {
        Failed::BeforeData(SendError::Permanent(
            SmtpReply::Local,
            format!("the {what}, which the relay does not offer"),
        ))
    };
    if envelope.from().is_some_and(non_ascii) || envelope.to().iter().any(non_ascii) {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(refuse("address needs SMTPUTF8"));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !bytes.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err(refuse("mail needs 8BITMIME"));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Ok(options)
}

/// One reply before the data, awaited under `timeout`.
async fn step(
    timeout: Duration,
    reply: impl Future<Output = Result<Response, lettre::transport::smtp::Error>>,
) -> Result<(), Failed> {
    match tokio::time::timeout(timeout, reply).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Failed::BeforeData(classify(e))),
        Err(_) => Err(Failed::BeforeData(SendError::Transient(
            SmtpReply::Timeout,
            format!("SMTP command timed out after {timeout:?}"),
        ))),
    }
}

/// 5xx replies are permanent; everything else (4xx, I/O, timeouts, TLS) may work next time.
/// (Callers decide first whether a failure came after the data, which makes it unconfirmed.)
pub fn classify(e: lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() {
        SendError::Permanent(SmtpReply::PermanentReply, e.to_string())
    } else if e.is_transient() {
        SendError::Transient(SmtpReply::TransientReply, e.to_string())
    } else {
        SendError::Transient(no_reply(&e), e.to_string())
    }
}

/// The class of an error that is not a relay's reply.
fn no_reply(e: &lettre::transport::smtp::Error) -> SmtpReply {
    if e.is_timeout() {
        SmtpReply::Timeout
    } else if e.is_client() {
        SmtpReply::Local
    } else {
        SmtpReply::Connection
    }
}

/// Text written to the relay as it is: lettre's `command` writes whatever a `Display` gives.
struct Verbatim<'a>(&'a str);

impl fmt::Display for Verbatim<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The message as DATA sends it (RFC 5321 §4.5.2): a line that starts with a dot gets another,
/// then CRLF, dot, CRLF. Lines start after CRLF, as in lettre's own encoder. Line starts are
/// found with `memmem`, not byte by byte (a few percent of a mail's CPU).
fn data_block(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    if message.first() == Some(&b'.') {
        out.push(b'.');
    }
    let mut copied = 0;
    for at in memchr::memmem::find_iter(message, b"\r\n.") {
        let dot = at + 2;
        out.extend_from_slice(&message[copied..dot]);
        out.push(b'.');
        copied = dot;
    }
    out.extend_from_slice(&message[copied..]);
    out.extend_from_slice(b"\r\n.\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::transport::smtp::response::{Category, Code, Detail, Severity};

    #[test]
    fn dots_at_line_starts_are_doubled_and_the_block_ends_with_a_lone_dot() {
        let block = data_block(b".top\r\nmid.dle\r\n.\r\n..two\nbare.\n.x");
        assert_eq!(
            String::from_utf8(block).unwrap(),
            "..top\r\nmid.dle\r\n..\r\n...two\nbare.\n.x\r\n.\r\n"
        );
        assert_eq!(data_block(b""), b"\r\n.\r\n");
        assert_eq!(data_block(b"\r\n.\r\n."), b"\r\n..\r\n..\r\n.\r\n");
    }

    /// The transparency rule exactly as lettre's byte-by-byte encoder applies it.
    fn stuffed_byte_by_byte(message: &[u8]) -> Vec<u8> {
        let (mut out, mut line_start, mut previous) = (vec![], true, 0u8);
        for &b in message {
            if line_start && b == b'.' {
                out.push(b'.');
            }
            out.push(b);
            line_start = previous == b'\r' && b == b'\n';
            previous = b;
        }
        out.extend_from_slice(b"\r\n.\r\n");
        out
    }

    #[test]
    fn dot_stuffing_matches_the_byte_by_byte_rule_on_any_input() {
        use proptest::prelude::*;
        let bytes = proptest::collection::vec(
            prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), any::<u8>()],
            0..64,
        );
        proptest!(|(message in bytes)| {
            prop_assert_eq!(data_block(&message), stuffed_byte_by_byte(&message));
        });
    }

    fn ehlo(lines: &[&str]) -> Response {
        let code = Code::new(
            Severity::PositiveCompletion,
            Category::MailSystem,
            Detail::Zero,
        );
        Response::new(code, lines.iter().map(|l| l.to_string()).collect())
    }

    #[test]
    fn pipelining_is_read_from_the_ehlo_keywords() {
        assert!(offers_pipelining(&ehlo(&[
            "relay.test",
            "PIPELINING",
            "8BITMIME"
        ])));
        assert!(offers_pipelining(&ehlo(&["relay.test", "pipelining"])));
        assert!(!offers_pipelining(&ehlo(&[
            "relay.test",
            "8BITMIME",
            "SIZE 100"
        ])));
        assert!(!offers_pipelining(&ehlo(&["relay.test", "XPIPELINING"])));
    }
}
