pub mod client;
pub mod net;
pub mod protocol;
pub mod server;
pub mod shell;
