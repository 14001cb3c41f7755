//! meshfleet's certificate authority: one root and trust domain for the whole fleet, one
//! intermediate per member cluster in Istio's plug-in CA format. It never sees Kubernetes.
#![forbid(unsafe_code)]
