#!/usr/bin/env bash
# The simulator against reality, in a closed loop: two traffic traces played in real time by
# the demo app (Headroom's app model, fed the Deployments' real replica counts), scaled by the
# real HPA through prometheus-adapter, by real KEDA and by the Headroom operator, each on its
# own copy of the app; then the same traces through `headroom simulate`'s baselines. Writes
# target/bench/reality.md, reality.json and reality-<trace>-<autoscaler>.svg. About 25 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/cluster/deps.sh
bash tests/cluster/build.sh >/dev/null
bash tests/cluster/peers/build.sh >/dev/null
HEADROOM_PEERS=1 cargo test --locked --test reality_bench -- --nocapture
