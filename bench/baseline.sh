#!/usr/bin/env bash
# Builds another commit's `webhooks` (release) for the drain's A/B figure and prints its path:
#   BENCH_BASELINE_WEBHOOKS="$(bench/baseline.sh 4822fdb)" BENCH_ONLY=drain target/release/bench
# The commit is checked out in a worktree under target/baseline/ and built in this checkout's
# target directory, so the dependencies already built are reused (build this checkout again
# afterwards: `make bench-baseline` does); the binary is copied to
# target/baseline/webhooks-<commit>.
set -euo pipefail
rev="${1:?usage: bench/baseline.sh <commit>}"
root="$(git rev-parse --show-toplevel)"
commit="$(git -C "$root" rev-parse --short "$rev^{commit}")"
out="$root/target/baseline/webhooks-$commit"
if [[ -x "$out" ]]; then
    echo "$out"
    exit 0
fi
src="$root/target/baseline/src-$commit"
if [[ ! -d "$src" ]]; then
    git -C "$root" worktree add --detach "$src" "$commit" >&2
fi
CARGO_TARGET_DIR="$root/target" \
    cargo build --release --quiet --manifest-path "$src/Cargo.toml" --bin webhooks >&2
cp "$root/target/release/webhooks" "$out"
git -C "$root" worktree remove --force "$src" >&2
echo "$out"
