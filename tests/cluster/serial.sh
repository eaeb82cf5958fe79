# What must not run twice at once. CI builds the slow dependencies in the background while
# the first tests run (.ci/run); a stage that needs one of them waits here for that build
# instead of starting a second one. Sourced.
# shellcheck shell=bash

# Holds an exclusive lock on FILE until the calling script exits (fd 9).
hold_lock() { # file
  mkdir -p "$(dirname "$1")"
  exec 9>"$1"
  flock -n 9 && return 0
  echo "waiting for $(basename "$1" .lock), which another process is building ..." >&2
  flock 9
}

# The lock of a build cached in ~/.cache/headroom.
hold_build_lock() { # name
  hold_lock "${HEADROOM_CACHE:-$HOME/.cache/headroom}/locks/$1.lock"
}

# Installs Debian packages, one apt run at a time: two at once fail on dpkg's lock.
apt_install() { # package...
  [ $# -gt 0 ] || return 0
  echo "installing $* from Debian's packages" >&2
  (
    flock 8
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "$@" >/dev/null
  ) 8>"${TMPDIR:-/tmp}/headroom-apt.lock"
}
