//! The integration tests' harness: a mock upstream (`mock`, and an
//! Anthropic-shaped one in `anthropic`, a Gemini-shaped one in `gemini`),
//! the real
//! gateway in-process (`gateway`) or as the built binary (`binary`),
//! tunnelling proxies (`proxy`) and the stored usage records (`records`).

mod account;
mod anthropic;
mod binary;
mod gateway;
mod gemini;
mod mock;
mod proxy;
mod records;

pub use account::*;
pub use anthropic::*;
pub use binary::*;
pub use gateway::*;
pub use gemini::*;
pub use mock::*;
pub use proxy::*;
pub use records::*;
