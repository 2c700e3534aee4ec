#!/usr/bin/env bash
# End-to-end: the scripts' preamble (scripts/lib/common.sh): strict mode, the checkout's root, and
# skd_args -- value flags, --flag=value, switches, repeated and passed-on flags, values that start
# with "--", --help from the "# Usage:" comment, and exit 2 for an unknown flag, a missing value or
# a value given to a switch.
source "$(dirname "$0")/common.bash"
cat >"$W/x.sh" <<EOF
#!/usr/bin/env bash
# Usage: x.sh [--a V] [--no-b] [--c V]... [--limit N]
#   a second usage line
source "$SRC/scripts/lib/common.sh"
A=default B=1 C=() PASS=()
skd_args --a A --no-b B=0 --c C+ --limit PASS++ -- "\$@"
echo "A=[\$A] B=[\$B] C=[\${C[*]-}] PASS=[\${PASS[*]-}] ROOT=[\$SKD_ROOT] NAME=[\$SKD_NAME] OPTS=[\$-]"
EOF
check "defaults" 0 bash "$W/x.sh"
expect_in "defaults kept" "$W/out" "^A=\[default\] B=\[1\] C=\[\] PASS=\[\] "
expect_in "the checkout's root" "$W/out" "ROOT=\[$(cd "$SRC" && pwd)\] NAME=\[x.sh\]"
expect_in "strict mode" "$W/out" "OPTS=\[[a-zA-Z]*e[a-zA-Z]*u"
check "every kind of flag" 0 bash "$W/x.sh" --a "--x y" --no-b --c 1 --c=2 --limit 5
expect_in "values, switch, array, pass-on" "$W/out" "^A=\[--x y\] B=\[0\] C=\[1 2\] PASS=\[--limit 5\] "
check "--help" 0 bash "$W/x.sh" --help
expect_in "--help prints the usage" "$W/out" "^Usage: x.sh \[--a V\]"
expect_in "--help prints all of it" "$W/out" "^  a second usage line"
check "unknown flag" 2 bash "$W/x.sh" --bogus
expect_in "names the script and the flag" "$W/err" "^x.sh: unknown argument --bogus"
check "missing value" 2 bash "$W/x.sh" --a
expect_in "says what is missing" "$W/err" "x.sh: --a needs a value"
check "value given to a switch" 2 bash "$W/x.sh" --no-b=1
expect_in "says the switch takes none" "$W/err" "x.sh: --no-b takes no value"
echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
