//! meshfleet's NameService over DNS: the catalog's global services under the Kubernetes
//! Multi-Cluster Services names (`<svc>.<ns>.svc.clusterset.local`, KEP-1645) and Istio's
//! `<svc>.<ns>.global`, with the virtual IPs the catalog allocates; every other name is
//! forwarded to upstream resolvers.
//!
//! ```text
//!  Mesh (virtual IPs from the catalog) ──NameTable::build (table: pure)──> NameTable
//!    ──watch──> server::DnsHandler (UDP: `udp`'s receive loops answer from the table in
//!               place; TCP: hickory-server; a client's zone from `zones`)
//!                                                              └─ other names: hickory-resolver
//! ```

pub mod server;
pub mod table;
pub mod udp;
pub mod zones;

pub use table::{Answer, NameTable, same_answers};
