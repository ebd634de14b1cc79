# shellcheck shell=bash
# Shared helpers for the ci/ scripts. Sourced, never executed.

# Repository root (physical path, symlinks resolved).
KATO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
export KATO_ROOT

# The one toolchain release artefacts are built with. Override with
# KATO_TOOLCHAIN for experiments; PROVENANCE records what was used.
KATO_TOOLCHAIN=${KATO_TOOLCHAIN:-1.95.0}
KATO_TARGET=x86_64-unknown-linux-musl
export KATO_TOOLCHAIN KATO_TARGET

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

# die MESSAGE — the one way a ci/ script gives up: the message, exit 1.
die() {
  printf '%s: error: %s\n' "${0##*/}" "$*" >&2
  exit 1
}

# step NAME CMD... — run CMD as one named step of a gate: prints `==> NAME`,
# runs it, prints `<== NAME (N s)`; on failure names the failed step and
# returns CMD's status (so under `set -e` the first failed step ends the
# script; `step ... || failed=1` goes on). Each outcome is kept for
# step_summary. A CMD that is a shell function runs without errexit (it
# sits left of `||`), so such a function must return its own status.
STEP_RESULTS=()
step() {
  local name=$1 t0=$SECONDS rc=0
  shift
  echo "==> $name"
  "$@" || rc=$?
  local dt=$((SECONDS - t0))
  if ((rc == 0)); then
    STEP_RESULTS+=("$(printf 'PASS  %-40s %5ds' "$name" "$dt")")
    echo "<== $name ($dt s)"
  else
    STEP_RESULTS+=("$(printf 'FAIL  %-40s %5ds  (exit %d)' "$name" "$dt" "$rc")")
    echo "<== $name FAILED (exit $rc, $dt s)"
    printf '%s: step failed: %s (exit %d)\n' "${0##*/}" "$name" "$rc" >&2
  fi
  return "$rc"
}

# step_summary — one line per step run so far, with its result and time.
step_summary() {
  printf '%s: steps:\n' "${0##*/}"
  printf '  %s\n' "${STEP_RESULTS[@]}"
}

# apt_install PKG... — install Debian packages that are missing (root only).
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get to install them"
  [[ $(id -u) == 0 ]] || die "missing packages ${missing[*]}; run as root or install them"
  log "installing ${missing[*]}"
  local out
  out=$(mktemp)
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$out" 2>&1; then
    cat "$out" >&2
    rm -f "$out"
    die "apt-get could not install ${missing[*]}"
  fi
  rm -f "$out"
}

# need_cmd CMD PKG — make sure CMD exists, installing Debian package PKG if not.
need_cmd() {
  command -v "$1" >/dev/null 2>&1 || apt_install "$2"
  command -v "$1" >/dev/null 2>&1 || die "$1 not found after installing $2"
}

# source_date_epoch — SOURCE_DATE_EPOCH from the environment, else the last commit.
source_date_epoch() {
  if [[ -n ${SOURCE_DATE_EPOCH:-} ]]; then
    printf '%s\n' "$SOURCE_DATE_EPOCH"
  elif git -C "$KATO_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$KATO_ROOT" log -1 --format=%ct
  else
    die "not a git checkout and SOURCE_DATE_EPOCH is not set"
  fi
}
