//! PLACEHOLDER — being written (filter grammar parser).
use super::Filter;
use crate::ScimError;

/// Parses a filter expression.
pub fn parse(_input: &str) -> Result<Filter, ScimError> {
    Err(ScimError::invalid_filter("filter parser not written yet"))
}

/// Parses a PATCH `path`.
pub fn parse_patch_path(_input: &str) -> Result<super::PatchPath, ScimError> {
    Err(ScimError::invalid_path("path parser not written yet"))
}
