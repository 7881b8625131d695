//! A small pool of SMTP connections on sockets we open ourselves, with TCP_NODELAY: lettre never
//! sets it, and Nagle then holds the final "\r\n.\r\n" of every mail for the peer's delayed ACK
//! (~40 ms a mail). Pooled connections are reused without a NOOP health check; a send that fails on
//! a reused connection is retried once on a fresh one.
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::commands::Ehlo;
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::SendError;
use super::smtp_transaction::{Failed, Session, classify, offers_pipelining, transaction};
use super::tls::{TlsTcp, tls_connector};
use crate::config::{SmtpConfig, SmtpSecurity};
use crate::outcome::SmtpReply;

/// Servers drop idle clients after a few minutes (RFC 5321 §4.5.3.2); reconnect before that.
const MAX_IDLE: Duration = Duration::from_secs(60);

pub struct SmtpPool {
    host: String,
    port: u16,
    security: SmtpSecurity,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    /// Implicit TLS (`smtp.security = tls`).
    tls: Option<tokio_rustls::TlsConnector>,
    /// PEM of `smtp.tls_ca_file`, for STARTTLS (lettre builds that TLS session).
    extra_ca_pem: Option<Vec<u8>>,
    idle: Mutex<Vec<(Session, Instant)>>,
    slots: Semaphore,
}

impl SmtpPool {
    pub fn new(s: &SmtpConfig) -> anyhow::Result<Self> {
        let credentials = s
            .credentials
            .as_ref()
            .map(|(user, password)| Credentials::new(user.clone(), password.expose().to_owned()));
        let tls = match s.security {
            SmtpSecurity::Tls => Some(tls_connector(s.extra_ca_pem.as_deref())?),
            _ => None,
        };
        Ok(Self {
            host: s.host.clone(),
            port: s.port,
            security: s.security,
            credentials,
            timeout: s.timeout,
            hello: ClientId::default(),
            tls,
            extra_ca_pem: s.extra_ca_pem.clone(),
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(s.pool_size),
        })
    }

    /// Sends one mail. A failure on a reused connection before the data went out (the relay
    /// dropped an idle connection) is retried at once on a fresh one; once the data went out,
    /// nothing is resent here: an unanswered final dot is `Unconfirmed` and left to the queue's
    /// backoff. Every step is bounded by `smtp.timeout_secs`, and a connection that failed is
    /// dropped (closed without QUIT, which a silent relay would never answer).
    pub async fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Result<(), SendError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| SendError::Transient(SmtpReply::Local, "pool closed".into()))?;
        if let Some(mut conn) = self.take_idle() {
            match transaction(&mut conn, envelope, bytes, self.timeout).await {
                Ok(()) => {
                    self.put_back(conn);
                    return Ok(());
                }
                Err(Failed::BeforeData(SendError::Transient(..))) => {}
                Err(Failed::BeforeData(e) | Failed::AfterData(e)) => return Err(e),
            }
        }
        let mut conn = self.connect().await?;
        match transaction(&mut conn, envelope, bytes, self.timeout).await {
            Ok(()) => {
                self.put_back(conn);
                Ok(())
            }
            Err(Failed::BeforeData(e) | Failed::AfterData(e)) => Err(e),
        }
    }

    fn take_idle(&self) -> Option<Session> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < MAX_IDLE && !conn.conn.has_broken() {
                return Some(conn);
            }
        }
        None
    }

    fn put_back(&self, conn: Session) {
        if !conn.conn.has_broken() {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((conn, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<Session, SendError> {
        let connecting = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| {
                    SendError::Transient(
                        SmtpReply::Connection,
                        format!("connecting to {}:{}: {e}", self.host, self.port),
                    )
                })?;
            tcp.set_nodelay(true).map_err(|e| {
                SendError::Transient(SmtpReply::Connection, format!("TCP_NODELAY: {e}"))
            })?;
            let stream: Box<dyn AsyncTokioStream> = match &self.tls {
                Some(connector) => {
                    let name = rustls::pki_types::ServerName::try_from(self.host.clone()).map_err(
                        |e| {
                            SendError::Permanent(
                                SmtpReply::Local,
                                format!("smtp.host is not a TLS server name: {e}"),
                            )
                        },
                    )?;
                    let tls = connector.connect(name, tcp).await.map_err(|e| {
                        SendError::Transient(SmtpReply::Connection, format!("TLS handshake: {e}"))
                    })?;
                    Box::new(TlsTcp(tls))
                }
                None => Box::new(tcp),
            };
            let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
                .await
                .map_err(classify)?;
            if self.security == SmtpSecurity::Starttls {
                conn.starttls(self.starttls_parameters()?, &self.hello)
                    .await
                    .map_err(classify)?;
            }
            // lettre keeps no note of PIPELINING, so ask again (once per connection). Before AUTH:
            // RFC 4954 leaves EHLO after authentication to the server.
            let ehlo = conn
                .command(Ehlo::new(self.hello.clone()))
                .await
                .map_err(classify)?;
            let pipelining = offers_pipelining(&ehlo);
            if let Some(credentials) = &self.credentials {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                    .await
                    .map_err(classify)?;
            }
            Ok(Session { conn, pipelining })
        };
        match tokio::time::timeout(self.timeout, connecting).await {
            Ok(result) => result,
            Err(_) => Err(SendError::Transient(
                SmtpReply::Timeout,
                format!("connecting to {}:{} timed out", self.host, self.port),
            )),
        }
    }
}

impl SmtpPool {
    fn starttls_parameters(&self) -> Result<TlsParameters, SendError> {
        let mut builder = TlsParameters::builder(self.host.clone());
        if let Some(pem) = &self.extra_ca_pem {
            let ca = Certificate::from_pem(pem).map_err(|e| {
                SendError::Permanent(SmtpReply::Local, format!("smtp.tls_ca_file: {e}"))
            })?;
            builder = builder.add_root_certificate(ca);
        }
        builder
            .build_rustls()
            .map_err(|e| SendError::Permanent(SmtpReply::Local, format!("TLS parameters: {e}")))
    }
}
