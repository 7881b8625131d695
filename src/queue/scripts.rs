//! The queue's Lua scripts, compiled once per process (`Script` keeps the SHA: EVALSHA, with a
//! load on NOSCRIPT). Each file's header names its KEYS, ARGV and return value.
use std::sync::LazyLock;

use crate::store::{RedisOp, Script};

pub struct Scripts {
    pub claim: Script,
    pub retry: Script,
    pub dead_letter: Script,
    pub extend: Script,
    pub promote: Script,
    pub reap: Script,
    pub depth: Script,
}

pub static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    claim: Script::new(RedisOp::Claim, include_str!("lua/claim.lua")),
    retry: Script::new(RedisOp::Retry, include_str!("lua/retry.lua")),
    dead_letter: Script::new(RedisOp::DeadLetter, include_str!("lua/dead_letter.lua")),
    extend: Script::new(RedisOp::Extend, include_str!("lua/extend.lua")),
    promote: Script::new(RedisOp::Promote, include_str!("lua/promote.lua")),
    reap: Script::new(RedisOp::Reap, include_str!("lua/reap.lua")),
    depth: Script::new(RedisOp::Depth, include_str!("lua/depth.lua")),
});
