//! Rebuild when a migration is added or changed: `refinery::embed_migrations!` reads
//! `migrations/` at compile time, but cargo only knows to look again if told.

fn main() {
    println!("cargo::rerun-if-changed=../../migrations");
}
