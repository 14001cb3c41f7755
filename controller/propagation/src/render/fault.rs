//! What went wrong applying one overrider: the overriders report it, `overrides` turns it into
//! a render error naming the policy and the field.

use std::fmt;

/// Why one overrider did not apply: which one (`list` and the index part `at`, like `[2]` or
/// `[0].yaml[1]`) and what went wrong: the overrider's error as text, as
/// [`RenderError::ApplyOverride`](super::RenderError::ApplyOverride) carries it.
#[derive(Debug)]
pub(super) struct Fault {
    pub list: &'static str,
    pub at: String,
    pub message: String,
}

impl Fault {
    pub(super) fn at(list: &'static str, index: usize, error: &dyn fmt::Display) -> Self {
        Self {
            list,
            at: format!("[{index}]"),
            message: error.to_string(),
        }
    }
}
