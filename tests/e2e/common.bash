# Shared by the e2e scripts (sourced; not a test itself). Needs $W (a scratch folder).
# check NAME EXPECTED_EXIT CMD...   runs CMD (stdout -> $W/out, stderr -> $W/err), compares the exit code
# expect_in NAME FILE TEXT          FILE contains TEXT
fails=0
pass=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
check() {
  local name=$1 want=$2
  shift 2
  "$@" >"$W/out" 2>"$W/err"
  local rc=$?
  if [ "$rc" -ne "$want" ]; then
    bad "$name: exit $rc, expected $want"; sed 's/^/  | /' "$W/out" "$W/err" | tail -20
  else
    ok "$name"
  fi
}
expect_in() {
  if grep -q -- "$3" "$2"; then ok "$1"; else bad "$1: '$3' not in $2"; sed 's/^/  | /' "$2" | tail -10; fi
}
