//! CRDs generated from the API types (being written).
