//! Integration tests of the quiver CLI (one binary).

mod io_cli;
