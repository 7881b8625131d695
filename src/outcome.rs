//! What became of each request and job, as enums whose metric label lives next to them. The
//! metric label sets are built from `ALL`, so every series exists (at 0) from the start and no
//! label is ever spelled twice.

/// An outcome with a bounded set of labels.
pub trait Outcome: Copy + PartialEq + 'static {
    const ALL: &'static [Self];
    fn label(self) -> &'static str;
}

macro_rules! outcome {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $label:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl Outcome for $name {
            const ALL: &'static [Self] = &[$(Self::$variant,)+];

            fn label(self) -> &'static str {
                match self {
                    $(Self::$variant => $label,)+
                }
            }
        }
    };
}

outcome!(
    /// `email_otp_generate_total{outcome}`.
    Generate {
        Accepted => "accepted",
        RateLimited => "rate_limited",
        /// `limits.queue_max_depth` jobs were waiting.
        QueueFull => "queue_full",
        /// `limits.mails_per_minute` was spent.
        SendBudget => "send_budget",
        /// `limits.domain_mails_per_minute` was spent for the recipient's domain.
        DomainBudget => "domain_budget",
        /// A malformed request (bad JSON, address, content type or size).
        Invalid => "invalid",
        Unavailable => "unavailable",
    }
);

outcome!(
    /// `email_otp_verify_total{outcome}`.
    Verify {
        Verified => "verified",
        /// Wrong, expired, used, never issued or burned: one answer to the client.
        Incorrect => "incorrect",
        TooManyAttempts => "too_many_attempts",
        Invalid => "invalid",
        Unavailable => "unavailable",
    }
);

outcome!(
    /// `email_otp_jobs_total{outcome}`: what became of one claimed job.
    Job {
        Sent => "sent",
        Retried => "retried",
        DeadLettered => "dead_lettered",
        DroppedExpired => "dropped_expired",
        /// The queue update found the lease expired: the job was reaped meanwhile and runs again.
        LeaseLost => "lease_lost",
        /// Redis stayed unreachable for a whole lease: the job is left to the reaper.
        Abandoned => "abandoned",
    }
);

outcome!(
    /// `email_otp_smtp_send_errors_total{class}`.
    SmtpError {
        /// Before the relay could have the mail: 4xx, refused connection, timeout.
        Transient => "transient",
        /// The data went out but no reply came: the mail may have been delivered.
        Unconfirmed => "unconfirmed",
        /// 5xx, an address or message the relay will never take.
        Permanent => "permanent",
    }
);

outcome!(
    /// `email_otp_smtp_replies_total{class}`: how the relay answered one send, the accepted ones
    /// included. The outbox transport counts a written file as `2xx` and a failed write as `local`.
    SmtpReply {
        /// The relay took the mail.
        Accepted => "2xx",
        /// A 4xx reply: try again later.
        TransientReply => "4xx",
        /// A 5xx reply: the relay refuses this mail or sender.
        PermanentReply => "5xx",
        /// No reply within `smtp.timeout_secs` (connecting, a command or the data).
        Timeout => "timeout",
        /// No reply at all: refused or dropped connection, DNS, TLS handshake.
        Connection => "connection",
        /// Refused before talking to the relay: a missing SMTP extension, TLS settings, the
        /// outbox directory.
        Local => "local",
    }
);

outcome!(
    /// `email_otp_http_slow_clients_total{stage}`: where the API port gave up on a slow client.
    SlowStage {
        /// The request body did not arrive within `http.body_read_timeout_ms`.
        Body => "body",
        /// The client took none of an answer within `http.write_timeout_ms`.
        Response => "response",
    }
);

outcome!(
    /// `email_otp_redis_command_duration_seconds{op}`: which call a Redis round trip made. Each
    /// Lua script is one op, named after its file; plain commands are named by their purpose.
    RedisOp {
        Generate => "generate",
        Verify => "verify",
        Activate => "activate",
        Claim => "claim",
        /// `ZREM` of a finished job's lease.
        Ack => "ack",
        Retry => "retry",
        DeadLetter => "dead_letter",
        Extend => "extend",
        Promote => "promote",
        Reap => "reap",
        /// The queue depth read of every `/metrics` scrape and `/status`.
        Depth => "depth",
        /// The reachability ping every 2 s.
        Ping => "ping",
        /// `INFO memory`, read once for the eviction-policy check.
        Info => "info",
        /// A durable write (verify with `redis.wait_replicas`): its script and the `WAIT` for
        /// replicas, sent together.
        Wait => "wait",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    fn labels<T: Outcome>() -> Vec<&'static str> {
        T::ALL.iter().map(|o| o.label()).collect()
    }

    #[test]
    fn labels_are_unique_snake_case_or_reply_classes() {
        for set in [
            labels::<Generate>(),
            labels::<Verify>(),
            labels::<Job>(),
            labels::<SmtpError>(),
            labels::<SmtpReply>(),
            labels::<RedisOp>(),
            labels::<SlowStage>(),
        ] {
            let mut sorted = set.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), set.len(), "{set:?}");
            assert!(
                set.iter()
                    .all(|l| l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                        || matches!(*l, "2xx" | "4xx" | "5xx")),
                "{set:?}"
            );
        }
    }
}
