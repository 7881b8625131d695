//! How an idle worker waits for work without polling: it blocks on the wake list, which every
//! enqueue, promotion and reap pushes a token to. Only tokens travel on this connection, never
//! jobs, so a blocking call that completes after its waiter left (a timeout, a stalled Redis)
//! loses nothing but a wake-up; the worker claims again after at most `WAIT`.
use std::time::Duration;

use crate::store::{Connection, Store, StoreError};

/// The longest an idle worker sleeps before it looks at the queue anyway.
pub const WAIT: Duration = Duration::from_secs(1);

pub struct Waker {
    store: Store,
    wake: String,
    /// Blocking calls get their own connection: on the shared one they would stall every request.
    conn: Option<Connection>,
}

impl Waker {
    pub fn new(store: Store, wake: String) -> Self {
        Self {
            store,
            wake,
            conn: None,
        }
    }

    /// Waits up to `WAIT` for a wake-up; true when one came.
    pub async fn wait(&mut self) -> Result<bool, StoreError> {
        let conn = match &mut self.conn {
            Some(c) => c,
            None => {
                let c = self
                    .store
                    .blocking_connection(WAIT + Duration::from_secs(2))
                    .await?;
                self.conn.insert(c)
            }
        };
        let result = redis::cmd("BLPOP")
            .arg(&self.wake)
            .arg(WAIT.as_secs_f64())
            .query_async::<Option<(String, String)>>(conn)
            .await;
        if result.is_err() {
            self.conn = None;
        }
        Ok(result?.is_some())
    }
}
