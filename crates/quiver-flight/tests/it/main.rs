//! Integration tests of the Flight server: a real server on a loopback port, spoken to with
//! arrow-flight's own clients.

mod compat;
mod hygiene;
mod server;
