#!/usr/bin/env bash
# The book under docs/: writes its generated reference pages (the CRD's fields, the operator's
# flags) from the binary, then builds it with mdbook (built once from crates.io and cached in
# ~/.cache/headroom) into target/book. `tests/docs.rs` fails when the pages are stale and
# checks every link; `scripts/test.sh` runs `scripts/docs.sh --check` (build only).
set -euo pipefail
cd "$(dirname "$0")/.."

mdbook=$(bash scripts/mdbook.sh)

if [ "${1:-}" != "--check" ]; then
  cargo build --quiet --bin headroom
  bin=target/debug/headroom
  "$bin" crd --reference >docs/src/reference/crd.md
  {
    printf '# headroom run flags\n\nGenerated from `headroom run --help` by `scripts/docs.sh`; a test fails when this page is stale. What each one is for: [operating it](../operations.md#flags).\n\n```text\n'
    "$bin" run --help
    printf '```\n'
  } >docs/src/reference/flags.md
fi

"$mdbook" build docs --dest-dir "$PWD/target/book"
echo "docs built in target/book (open target/book/index.html)"
