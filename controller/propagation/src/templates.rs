//! Resource templates: the objects of the index that propagation copies to member clusters.
//! Every object without the `multicluster.kubernetes.io/source-cluster` label whose whole
//! document is kept: Service, ServiceExport and DestinationRule templates and every untyped
//! kind (Deployments, ConfigMaps, …).
//! Observed copies, Clusters, policies and bindings are not templates.

use std::fmt;

use meshfleet_api::{Object, ObjectKey, ObjectMeta};
use meshfleet_index::Index;

/// One resource template, borrowed from the index.
#[derive(Clone, Debug)]
pub struct Template<'a> {
    pub key: &'a ObjectKey,
    pub object: &'a Object,
    pub api_version: &'a str,
    pub kind: &'a str,
    /// Empty for cluster-scoped kinds; `default` when a namespaced one names none.
    pub namespace: &'a str,
    pub meta: &'a ObjectMeta,
    /// The document as written.
    pub raw: &'a serde_norway::Value,
}

/// Every template of the index, in key order.
pub fn templates(index: &Index) -> Vec<Template<'_>> {
    index
        .objects()
        .filter(|(key, _)| key.cluster.is_empty())
        .filter_map(|(key, object)| {
            let raw = match object {
                Object::Generic(g) => &g.raw,
                Object::Service(s) => s.raw.as_deref()?,
                Object::ServiceExport(e) => e.raw.as_deref()?,
                Object::DestinationRule(r) => r.raw.as_deref()?,
                _ => return None,
            };
            Some(Template {
                key,
                object,
                api_version: object.api_version(),
                kind: object.kind(),
                namespace: &key.namespace,
                meta: object.meta(),
                raw,
            })
        })
        .collect()
}

/// Why a template cannot be propagated.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The YAML document has no JSON form (a non-string mapping key, a tagged value), so no
    /// overrider can patch it.
    #[error("cannot be propagated: it holds YAML that JSON cannot (a non-string key or a tag)")]
    ConvertToJson(#[source] serde_json::Error),
}

impl Template<'_> {
    /// The document as JSON, the form overriders patch.
    ///
    /// # Errors
    /// YAML that JSON cannot hold (a non-string mapping key, a tagged value); the message says
    /// so without quoting values.
    pub fn json(&self) -> Result<serde_json::Value, TemplateError> {
        serde_json::to_value(self.raw).map_err(TemplateError::ConvertToJson)
    }
}

impl fmt::Display for Template<'_> {
    /// `Deployment web/nginx`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.key.fmt(f)
    }
}
