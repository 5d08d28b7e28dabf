//! `infra`: deploy-time tool (placeholder until the schedule issue lands).
fn main() {}
