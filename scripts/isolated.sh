#!/usr/bin/env bash
# Runs a command where nothing beside the checkout can be seen: in a private mount namespace, every
# other entry of the checkout's parent folder is covered by an empty read-only tmpfs (a file by
# /dev/null), and SKD_FIXTURES is unset, so the tests use the fixtures the checkout carries or makes.
# CI runs the whole of .ci/run this way: a test that reaches outside the checkout fails there.
# Needs root (or CAP_SYS_ADMIN) and util-linux's unshare.
# Usage: scripts/isolated.sh COMMAND [ARGS...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)
parent=$(dirname "$root")
if [ "${SKD_ISOLATED:-}" = 1 ]; then exec "$@"; fi
if ! unshare --mount --propagation private true 2>/dev/null; then
  echo "isolated.sh: cannot make a mount namespace here (needs root and unshare): the checkout's" \
       "siblings in $parent would stay visible" >&2
  exit 1
fi
export SKD_ISOLATED=1 SKD_ISOLATED_ROOT="$root"
unset SKD_FIXTURES
# What must stay visible even when it sits beside the checkout: the system's own folders (a checkout
# directly under /) and the caches the project keeps outside it (packages' environment, fixtures,
# ccache), the tools on PATH and the temporary folder.
keep=("$HOME" "${XDG_CACHE_HOME:-$HOME/.cache}" "${CCACHE_DIR:-$HOME/.ccache}" "${TMPDIR:-/tmp}")
IFS=: read -r -a path_dirs <<<"$PATH"  # the tools on PATH (a pyenv under $HOME, say) and python3 itself
keep+=("${path_dirs[@]}")
command -v python3 >/dev/null 2>&1 && keep+=("$(readlink -f "$(command -v python3)")")
for d in /bin /boot /dev /etc /home /lib /lib32 /lib64 /libx32 /media /mnt /opt /proc /root /run /sbin /srv /sys /tmp /usr /var; do
  keep+=("$d")
done
exec unshare --mount --propagation private bash -c '
  set -euo pipefail
  root=$1; parent=$2; shift 2
  keep=()
  while [ "$1" != "--" ]; do keep+=("$(readlink -f "$1" 2>/dev/null || echo "$1")"); shift; done
  shift
  hidden=0
  shopt -s dotglob nullglob
  for e in "$parent"/*; do
    [ "$e" = "$root" ] && continue
    real=$(readlink -f "$e")
    for k in "${keep[@]}"; do
      case "$k/" in "$real"/*) continue 2 ;; esac
    done
    if [ -d "$e" ] && [ ! -L "$e" ]; then mount -t tmpfs -o ro,size=4k skd-hidden "$e"
    elif [ -f "$e" ] && [ ! -L "$e" ]; then mount --bind /dev/null "$e"
    else continue; fi
    hidden=$((hidden + 1))
  done
  echo "isolated.sh: $hidden entries beside $root hidden; SKD_FIXTURES unset" >&2
  cd "$root"
  exec "$@"' isolated "$root" "$parent" "${keep[@]}" -- "$@"
