//! Placeholder: the infra schedule tests.
