//! The connection a `Store::run` closure gets, whatever the mode: it speaks
//! `redis::aio::ConnectionLike` by delegation, so commands and scripts are written once.
use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// One handle on Redis. Cloning is cheap and shares the underlying connection(s).
#[derive(Clone)]
pub enum Connection {
    /// The shared connection of standalone mode, or of sentinel mode to the current primary:
    /// reconnects by itself.
    Managed(ConnectionManager),
    /// Routes each command to the node that owns its keys (MOVED and ASK handled).
    Cluster(ClusterConnection),
    /// A dedicated connection to one server (blocking calls); dropped and rebuilt on errors
    /// by its owner.
    Dedicated(MultiplexedConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Managed(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
            Self::Dedicated(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Managed(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Dedicated(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Managed(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
            Self::Dedicated(c) => c.get_db(),
        }
    }
}
