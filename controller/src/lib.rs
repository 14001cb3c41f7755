//! The `meshfleet` binary: its command line. The work lives in the library crates beside it
//! (`controller/*`, `xds/`, `ca/`); see ARCHITECTURE.md.
#![forbid(unsafe_code)]

pub mod ca;
pub mod cli;
pub mod explain;
pub mod explain_binding;
