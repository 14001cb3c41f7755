//! meshfleet's NameService over DNS: the catalog's global services under the Kubernetes
//! Multi-Cluster Services names (`<svc>.<ns>.svc.clusterset.local`, KEP-1645) and Istio's
//! `<svc>.<ns>.global`, with virtual IPs allocated deterministically; every other name is
//! forwarded to upstream resolvers.
//!
//! ```text
//!  Mesh ──allocate_vips (vip: hashed, the same on every instance)──> Vips
//!   └──NameTable::build (table: pure)──> NameTable ──watch──> server::DnsHandler (UDP, TCP)
//!                                                              └─ other names: hickory-resolver
//! ```

pub mod server;
pub mod table;
pub mod vip;
pub mod zones;

pub use table::{Answer, NameTable, ServiceVips, Vips, allocate_vips, same_answers};
