//! Replicas and per-replica resource requests of a workload template (being written).
