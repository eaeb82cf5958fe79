#!/usr/bin/env bash
# mdbook for the book under docs/: built once from crates.io without its server and watcher,
# cached in ~/.cache/headroom by version. Prints the binary's path.
set -euo pipefail
MDBOOK_VERSION=0.5.4
root="${HOME}/.cache/headroom/mdbook-${MDBOOK_VERSION}"
# shellcheck source=../tests/cluster/serial.sh
source "$(dirname "$0")/../tests/cluster/serial.sh"
hold_build_lock mdbook
if [ ! -x "$root/bin/mdbook" ]; then
  echo "building mdbook ${MDBOOK_VERSION} into $root" >&2
  cargo install mdbook --version "$MDBOOK_VERSION" --locked --no-default-features --root "$root" --quiet >&2
fi
echo "$root/bin/mdbook"
