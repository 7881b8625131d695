//! Sentinel mode: finds the primary through the sentinels and follows a failover without a
//! restart. A background task asks the sentinels every `POLL`, and at once when a call failed the
//! way a failover makes calls fail (connection lost, no answer, `READONLY` from a demoted
//! primary); when the primary's address changed it swaps in a connection to the new one. Calls
//! made before the first answer wait for it, within their own deadline.
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use super::StoreError;
use super::nodes::NodeTemplate;
use crate::config::NodeAddress;

/// How often the sentinels are asked when nothing failed.
const POLL: Duration = Duration::from_millis(500);
/// The least time between two rounds of questions, however many calls fail meanwhile.
const MIN_GAP: Duration = Duration::from_millis(100);

/// Where to ask, and how to reach the primary once known.
pub(super) struct SentinelSetup {
    pub master_name: String,
    pub sentinels: Vec<NodeAddress>,
    pub sentinel_password: Option<String>,
    pub template: NodeTemplate,
    pub timeout: Duration,
    pub manager_config: redis::aio::ConnectionManagerConfig,
}

/// The primary the sentinels named last.
#[derive(Clone)]
pub(super) struct Primary {
    pub address: NodeAddress,
    /// For dedicated connections (blocking calls); shared, as every call clones a `Primary`.
    pub client: Arc<redis::Client>,
    pub shared: ConnectionManager,
}

/// What the follower knows. A primary once found stays until another replaces it: sentinels that
/// stop answering do not make a working primary unusable.
#[derive(Clone)]
enum Lookup {
    /// Before the sentinels' first answer.
    Pending,
    /// No primary found yet, for this reason (a wrong sentinel password, no sentinel answers…):
    /// calls fail at once saying so, rather than with an unexplained timeout.
    Failed(String),
    Found(Primary),
}

/// A cheap-to-clone handle on the follower task; the task ends when the last handle is dropped.
#[derive(Clone)]
pub(super) struct SentinelFollower {
    primary: watch::Receiver<Lookup>,
    recheck: Arc<Notify>,
}

impl SentinelFollower {
    /// Spawns the follower on the current Tokio runtime; connects nothing before it runs.
    pub fn start(setup: SentinelSetup) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| StoreError::Setup(format!("sentinel mode needs a Tokio runtime: {e}")))?;
        let (tx, rx) = watch::channel(Lookup::Pending);
        let recheck = Arc::new(Notify::new());
        runtime.spawn(follow(setup, tx, recheck.clone()));
        Ok(Self {
            primary: rx,
            recheck,
        })
    }

    /// The current primary; waits for the sentinels' first answer (the caller bounds the wait).
    pub async fn primary(&self) -> Result<Primary, StoreError> {
        let mut rx = self.primary.clone();
        let known = rx
            .wait_for(|l| !matches!(l, Lookup::Pending))
            .await
            .map_err(|_| StoreError::Setup("the sentinel follower task has ended".into()))?;
        match &*known {
            Lookup::Found(primary) => Ok(primary.clone()),
            Lookup::Failed(problem) => Err(StoreError::Setup(format!(
                "no primary from the sentinels yet: {problem}"
            ))),
            Lookup::Pending => Err(StoreError::Setup("wait_for returned no answer".into())),
        }
    }

    /// Asks the sentinels again now rather than at the next poll.
    pub fn recheck(&self) {
        self.recheck.notify_one();
    }
}

/// Whether an error is one a failover explains, worth asking the sentinels about at once.
pub(super) fn suggests_failover(e: &StoreError) -> bool {
    match e {
        StoreError::Timeout(_) => true,
        StoreError::Redis(e) => e.is_io_error() || e.code() == Some("READONLY"),
        StoreError::Protocol(_) | StoreError::Setup(_) => false,
    }
}

async fn follow(setup: SentinelSetup, tx: watch::Sender<Lookup>, recheck: Arc<Notify>) {
    let mut sentinels: Vec<Option<MultiplexedConnection>> = vec![None; setup.sentinels.len()];
    let mut last_problem = None;
    loop {
        let problem = match ask(&setup, &mut sentinels).await {
            Ok(address) => follow_to(&setup, &tx, address).err(),
            Err(e) => Some(e),
        };
        if let Some(p) = &problem {
            tx.send_if_modified(|l| match l {
                Lookup::Found(_) => false,
                _ => {
                    *l = Lookup::Failed(p.clone());
                    true
                }
            });
        }
        // Logged when it changes, not on every poll of a long outage.
        if problem != last_problem {
            match &problem {
                Some(p) => {
                    warn!(problem = %p, "cannot find the Redis primary through the sentinels")
                }
                None => info!("the sentinels answer again"),
            }
            last_problem = problem;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = recheck.notified() => {}
            _ = tx.closed() => return,
        }
        tokio::time::sleep(MIN_GAP).await;
    }
}

/// Swaps in a connection to `address` unless it is the primary already followed.
fn follow_to(
    setup: &SentinelSetup,
    tx: &watch::Sender<Lookup>,
    address: NodeAddress,
) -> Result<(), String> {
    if matches!(&*tx.borrow(), Lookup::Found(p) if p.address == address) {
        return Ok(());
    }
    let client = setup
        .template
        .client_at(&address.host, address.port)
        .map_err(|e| format!("no client for the primary {address}: {e}"))?;
    let shared =
        ConnectionManager::new_lazy_with_config(client.clone(), setup.manager_config.clone())
            .map_err(|e| format!("no connection to the primary {address}: {e}"))?;
    info!(master = %setup.master_name, primary = %address, "following the Redis primary");
    tx.send_replace(Lookup::Found(Primary {
        address,
        client: Arc::new(client),
        shared,
    }));
    Ok(())
}

/// The primary's address from the first sentinel that knows it.
async fn ask(
    setup: &SentinelSetup,
    connections: &mut [Option<MultiplexedConnection>],
) -> Result<NodeAddress, String> {
    let mut problems = Vec::new();
    for (sentinel, cached) in setup.sentinels.iter().zip(connections.iter_mut()) {
        let asked = tokio::time::timeout(setup.timeout, ask_one(setup, sentinel, cached)).await;
        match asked {
            Ok(Ok(address)) => return Ok(address),
            Ok(Err(e)) => problems.push(format!("{sentinel}: {e}")),
            Err(_) => problems.push(format!("{sentinel}: no answer within {:?}", setup.timeout)),
        }
        // A sentinel that failed gets a new connection next time.
        *cached = None;
    }
    Err(problems.join("; "))
}

async fn ask_one(
    setup: &SentinelSetup,
    sentinel: &NodeAddress,
    cached: &mut Option<MultiplexedConnection>,
) -> Result<NodeAddress, String> {
    let conn = match cached {
        Some(c) => c,
        None => {
            let client = setup
                .template
                .sentinel_client(
                    &sentinel.host,
                    sentinel.port,
                    setup.sentinel_password.as_deref(),
                )
                .map_err(|e| e.to_string())?;
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(setup.timeout))
                .set_response_timeout(Some(setup.timeout));
            let c = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .map_err(|e| e.to_string())?;
            cached.insert(c)
        }
    };
    let reply: Option<(String, u16)> = redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg(&setup.master_name)
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    let (host, port) =
        reply.ok_or_else(|| format!("does not monitor a master named {}", setup.master_name))?;
    Ok(NodeAddress { host, port })
}
