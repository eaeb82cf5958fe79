# Times the stages of a run and prints them at its end, also when it fails, so that a slow or
# failing stage shows. Sourced by .ci/run and scripts/test.sh; the outermost one prints.
# shellcheck shell=bash
if [ -z "${HEADROOM_STAGES:-}" ]; then
  HEADROOM_STAGES=$(mktemp)
  export HEADROOM_STAGES
  stages_owner=1
else
  stages_owner=0
fi

# Runs a command (not a shell function: set -e would not apply inside it) as a named stage.
stage() { # name, command...
  local name=$1 start rc=0
  shift
  start=$(date +%s)
  "$@" || rc=$?
  printf '%s\t%s\t%s\n' "$name" "$(( $(date +%s) - start ))" "$([ "$rc" = 0 ] && echo ok || echo "FAILED ($rc)")" >>"$HEADROOM_STAGES"
  return "$rc"
}

stages_report() {
  [ "$stages_owner" = 1 ] && [ -s "$HEADROOM_STAGES" ] || return 0
  echo "== stage times (s)"
  awk -F'\t' '{printf "%6d  %-44s %s\n", $2, $1, $3}' "$HEADROOM_STAGES"
}
