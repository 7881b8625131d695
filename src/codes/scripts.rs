//! The code scripts, compiled once per process (`Script` keeps the SHA: EVALSHA, with a load on
//! NOSCRIPT), each measured under its own `RedisOp`.
use std::sync::LazyLock;

use crate::store::{RedisOp, Script};

pub struct Scripts {
    pub generate: Script,
    pub verify: Script,
    pub activate: Script,
}

pub static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    generate: Script::new(RedisOp::Generate, include_str!("lua/generate.lua")),
    verify: Script::new(RedisOp::Verify, include_str!("lua/verify.lua")),
    activate: Script::new(RedisOp::Activate, include_str!("lua/activate.lua")),
});
