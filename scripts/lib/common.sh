# shellcheck shell=bash
# The preamble of the project's shell scripts, sourced (never run) as their first line:
#   source "$(dirname "$0")/../../scripts/lib/common.sh"     # from tools/<kind>/x.sh
#   source "$(dirname "$0")/lib/common.sh"                    # from scripts/x.sh
# It lives in scripts/ because everything under tools/ already depends on scripts/ (setup, build,
# the Python environment) and scripts/ never on tools/, so this is the lowest place both can reach.
# It gives:
#   strict mode (set -euo pipefail);
#   SKD_ROOT, the checkout's root (absolute), and skd_cd_root for scripts that work from there
#     (scripts that write relative --out-dir paths stay in the caller's folder: they do not call it);
#   skd_args: the flag loop every script used to write by hand (below);
#   skd_usage / skd_usage_error: the script's "# Usage:" comment as --help, exit 2 on bad usage.
set -euo pipefail
SKD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SKD_NAME="$(basename "$0")"

skd_cd_root() { cd "$SKD_ROOT"; }

# Prints the "# Usage:" block of the script's header comment (up to the first line that is not a comment).
skd_usage() {
  local text
  text=$(awk '/^# Usage/ {on = 1} on && !/^#/ {exit} on {sub(/^# ?/, ""); print}' "$0")
  if [ -n "$text" ]; then echo "$text"; else echo "$SKD_NAME: see the comment at the top of $0"; fi
}

# Bad usage: the message on stderr, named by the script, and exit status 2.
skd_usage_error() {
  echo "$SKD_NAME: $* (--help for usage)" >&2
  exit 2
}

# skd_args SPEC... -- "$@": parses the script's arguments by SPEC, pairs of a flag and what it sets:
#   --flag VAR        VAR=<the next argument> (or --flag=value)
#   --flag VAR=text   a switch: VAR=text, no value taken
#   --flag ARR+       appends the value to the array ARR (a flag given several times)
#   --flag ARR++      appends the flag and its value to ARR (options passed on to another script)
# -h/--help prints the usage and exits 0; an unknown flag, a missing value or a value given to a
# switch is a usage error (exit 2). A value is taken as it is, even when it starts with "--".
skd_args() {
  local -a _skd_spec=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    _skd_spec+=("$1")
    shift
  done
  [ $# -gt 0 ] && shift
  local _skd_arg _skd_value _skd_has _skd_target _skd_i
  while [ $# -gt 0 ]; do
    _skd_arg=$1 _skd_value="" _skd_has=0 _skd_target=""
    case $_skd_arg in
      -h | --help) skd_usage; exit 0 ;;
      --*=*) _skd_value=${_skd_arg#*=} _skd_arg=${_skd_arg%%=*} _skd_has=1 ;;
    esac
    for ((_skd_i = 0; _skd_i + 1 < ${#_skd_spec[@]}; _skd_i += 2)); do
      if [ "${_skd_spec[_skd_i]}" = "$_skd_arg" ]; then
        _skd_target=${_skd_spec[_skd_i + 1]}
        break
      fi
    done
    [ -n "$_skd_target" ] || skd_usage_error "unknown argument $1"
    shift
    case $_skd_target in
      *=*)
        [ "$_skd_has" = 0 ] || skd_usage_error "$_skd_arg takes no value"
        printf -v "${_skd_target%%=*}" '%s' "${_skd_target#*=}"
        ;;
      *)
        if [ "$_skd_has" = 0 ]; then
          [ $# -gt 0 ] || skd_usage_error "$_skd_arg needs a value"
          _skd_value=$1
          shift
        fi
        case $_skd_target in
          *++) eval "${_skd_target%++}+=(\"\$_skd_arg\" \"\$_skd_value\")" ;;
          *+) eval "${_skd_target%+}+=(\"\$_skd_value\")" ;;
          *) printf -v "$_skd_target" '%s' "$_skd_value" ;;
        esac
        ;;
    esac
  done
}
