//! The cache's name tables (NDS): each service's entries encoded once, and one table per
//! network some key is on, assembled again only when some service's entries changed (an
//! endpoint change of a ClusterSetIP service changes nothing here).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::HostChange;
use crate::model::ClientKey;
use crate::resource::Resource;
use crate::translate::{ServiceNames, name_table};

#[derive(Default)]
pub(super) struct NameTables {
    /// Host → its entries, for every service that has some, in host order.
    services: BTreeMap<String, ServiceNames>,
    /// Network → its table; only networks of keys in use.
    by_network: HashMap<String, Arc<Resource>>,
}

impl NameTables {
    /// Builds `network`'s table unless it is kept already.
    pub(super) fn ensure(&mut self, network: &str) {
        if !self.by_network.contains_key(network) {
            let table = Arc::new(name_table(self.services.values(), network));
            self.by_network.insert(network.to_owned(), table);
        }
    }

    /// Takes the entries of the services in `changes`; if any changed, every kept table is
    /// assembled again. Returns whether any did.
    pub(super) fn refresh(&mut self, changes: &[HostChange]) -> bool {
        let mut changed = false;
        for (host, svc) in changes {
            let names = svc.as_deref().map_or(ServiceNames::None, ServiceNames::new);
            changed |= match names {
                ServiceNames::None => self.services.remove(host).is_some(),
                names if self.services.get(host) == Some(&names) => false,
                names => {
                    self.services.insert(host.clone(), names);
                    true
                }
            };
        }
        if changed {
            for (network, table) in &mut self.by_network {
                *table = Arc::new(name_table(self.services.values(), network));
            }
        }
        changed
    }

    /// Forgets the tables of networks no key in `keys` is on.
    pub(super) fn retain<'a>(&mut self, keys: impl IntoIterator<Item = &'a ClientKey>) {
        let in_use: BTreeSet<&str> = keys.into_iter().map(|k| k.network.as_str()).collect();
        self.by_network
            .retain(|network, _| in_use.contains(network.as_str()));
    }

    /// The table of `network` (assembled on the spot if it is not kept, which callers avoid).
    pub(super) fn table(&self, network: &str) -> Arc<Resource> {
        self.by_network
            .get(network)
            .cloned()
            .unwrap_or_else(|| Arc::new(name_table(self.services.values(), network)))
    }
}
