//! The code scripts, compiled once per process (`Script` keeps the SHA: EVALSHA, with a load on
//! NOSCRIPT).
use std::sync::LazyLock;

use redis::Script;

pub struct Scripts {
    pub generate: Script,
    pub verify: Script,
    pub activate: Script,
}

pub static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    generate: Script::new(include_str!("lua/generate.lua")),
    verify: Script::new(include_str!("lua/verify.lua")),
    activate: Script::new(include_str!("lua/activate.lua")),
});
