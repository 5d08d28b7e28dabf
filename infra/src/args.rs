//! Command-line values as the commands read them: a variable set to "" is unset.

/// An unset variable and one set to "" (common in env files) mean the same.
pub(crate) fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}
