# Shared by the e2e scripts (sourced; not a test itself). Sets BIN (the apps folder, $SKD_BIN), SRC
# (the source tree, $SKD_SOURCE_DIR), W (a scratch folder removed on exit; a script that needs more
# cleanup sets its own EXIT trap after sourcing) and OMP_WAIT_POLICY=PASSIVE (tests run two at a time).
# check NAME EXPECTED_EXIT CMD...   runs CMD (stdout -> $W/out, stderr -> $W/err), compares the exit code
# expect_in NAME FILE TEXT          FILE contains TEXT
# same_weights NAME A B ATOL        every tensor of safetensors A within ATOL of B (needs $SRC)
# free_port                         a free TCP port on 127.0.0.1
# json FILE EXPR                    prints the Python expression EXPR of the JSON file's content d
# manifest FILE EXPR                the same for the skd manifest (m) of a safetensors artifact
# doc_cmd NAME EXPECTED_EXIT 'CMD'   runs CMD exactly as README.md / docs show it (one line, single
#                                   quotes: tools/dev/doc_commands.py matches the text against the
#                                   docs) with bash in $W/doc, where the checkout's folders are linked,
#                                   build -> the build folder and B=build/apps; outputs stay in $W/doc
BIN="${SKD_BIN:?}"
SRC="${SKD_SOURCE_DIR:?}"
# torchrun of the Python whose LibTorch this build uses (tests/CMakeLists.txt: SKD_TORCHRUN)
TORCHRUN="${SKD_TORCHRUN:-torchrun}"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export OMP_WAIT_POLICY=PASSIVE
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
same_weights() {  # same_weights NAME A B ATOL
  if python3 "$SRC/tools/dev/compare_outputs.py" "$2" "$3" ALL --atol "$4" >"$W/cmp" 2>&1; then
    ok "$1 ($(tail -1 "$W/cmp"))"
  else
    bad "$1"; sed 's/^/  | /' "$W/cmp" | tail -10
  fi
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
manifest() {
  python3 -c '
import json, struct, sys
b = open(sys.argv[1], "rb").read()
m = json.loads(json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])["__metadata__"]["skd_manifest"])
print(eval(sys.argv[2]))' "$@"
}
doc_setup() {  # $W/doc as doc_cmd runs in it (idempotent)
  local e
  [ -e "$W/doc/build" ] && return
  mkdir -p "$W/doc"
  for e in assets configs docs python scripts tests tools; do ln -s "$SRC/$e" "$W/doc/$e"; done
  ln -s "${SKD_BUILD_DIR:?}" "$W/doc/build"
}
doc_cmd() {
  local name=$1 want=$2 cmd=$3
  doc_setup
  check "$name" "$want" env -C "$W/doc" B=build/apps bash -c "$cmd"
}
