//! Clients for one node at a time, all built from the configured URL: it carries the scheme (TLS
//! or not), user, password and database; sentinel and cluster modes only swap in the address.
use redis::{
    ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo, TlsCertificates,
};

use super::StoreError;

/// How to reach any node of the deployment, given its address.
#[derive(Clone)]
pub(super) struct NodeTemplate {
    info: ConnectionInfo,
    ca_pem: Option<Vec<u8>>,
}

impl NodeTemplate {
    /// `ca_pem` replaces the public roots for every `rediss://` node.
    pub fn new(url: &str, ca_pem: Option<&[u8]>) -> Result<Self, StoreError> {
        Ok(Self {
            info: url.into_connection_info()?,
            ca_pem: ca_pem.map(<[u8]>::to_vec),
        })
    }

    /// The node the URL itself names.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    pub fn certificates(&self) -> Option<TlsCertificates> {
        self.ca_pem.as_ref().map(|ca| TlsCertificates {
            client_tls: None,
            root_cert: Some(ca.clone()),
        })
    }

    /// The URL's credentials and TLS mode at another address.
    pub fn info_at(&self, host: &str, port: u16) -> ConnectionInfo {
        let addr = match self.info.addr() {
            ConnectionAddr::TcpTls { insecure, .. } => ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure: *insecure,
                tls_params: None,
            },
            _ => ConnectionAddr::Tcp(host.to_owned(), port),
        };
        self.info.clone().set_addr(addr)
    }

    /// A client for the URL's own address.
    pub fn client(&self) -> Result<redis::Client, StoreError> {
        self.build(self.info.clone())
    }

    /// A client for another node of the same deployment.
    pub fn client_at(&self, host: &str, port: u16) -> Result<redis::Client, StoreError> {
        self.build(self.info_at(host, port))
    }

    /// A client for a sentinel: the URL's TLS mode, but the sentinel's own password (if any)
    /// and none of the data node's user, password or database.
    pub fn sentinel_client(
        &self,
        host: &str,
        port: u16,
        password: Option<&str>,
    ) -> Result<redis::Client, StoreError> {
        let mut handshake = RedisConnectionInfo::default();
        if let Some(password) = password {
            handshake = handshake.set_password(password);
        }
        self.build(self.info_at(host, port).set_redis_settings(handshake))
    }

    fn build(&self, info: ConnectionInfo) -> Result<redis::Client, StoreError> {
        let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        Ok(match self.certificates().filter(|_| tls) {
            Some(certs) => redis::Client::build_with_tls(info, certs)?,
            None => redis::Client::open(info)?,
        })
    }
}
