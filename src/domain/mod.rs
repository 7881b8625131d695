//! Types parsed at the edge: once a value has one of these types it is valid.
mod code;
mod email;
mod mac;

pub use code::{CodeFormatError, OtpCode};
pub use email::{EmailAddress, EmailError};
pub use mac::{CodeMac, MacKey};
