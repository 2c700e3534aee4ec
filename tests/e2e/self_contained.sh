#!/usr/bin/env bash
# The checkout carries or makes everything its tests need: no file of the project names a folder
# beside the checkout, and the fixtures the tests read are all in tests/fixtures, matching SHA256SUMS.
# (CI also runs the whole suite with the checkout's siblings hidden: scripts/isolated.sh.)
set -uo pipefail
SRC="${SKD_SOURCE_DIR:?}"
cd "$SRC" || exit 1
fails=0 pass=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files)
else
  mapfile -t files < <(find . -type f -not -path './build*' -not -path './.git/*' | sed 's#^\./##')
fi
# the pattern is spelled in two pieces so that this file does not match itself
outside="\.\./""shared"
hits=$(grep -nE -- "$outside" "${files[@]}" 2>/dev/null | grep -v '^tests/e2e/self_contained.sh:')
if [ -z "$hits" ]; then ok "no file names the folder beside the checkout (${#files[@]} files)"
else bad "files that name a folder beside the checkout:"; echo "$hits" | sed 's/^/  | /' | head -20; fi
fixtures="${SKD_FIXTURES:-$SRC/tests/fixtures}"
case "$(cd "$fixtures" 2>/dev/null && pwd -P)/" in
  "$(pwd -P)/"*) ok "the fixtures folder is inside the checkout ($fixtures)" ;;
  *) echo "note: SKD_FIXTURES points outside the checkout ($fixtures); the suite then tests that folder" ;;
esac
if (cd "$fixtures" && sha256sum --quiet -c "$SRC/tests/fixtures/SHA256SUMS") >/dev/null 2>&1; then
  ok "every reference file in $fixtures matches tests/fixtures/SHA256SUMS"
else
  bad "fixtures differ from tests/fixtures/SHA256SUMS (run tests/fixtures/make_fixtures.sh)"
  (cd "$fixtures" && sha256sum -c "$SRC/tests/fixtures/SHA256SUMS" 2>&1 | grep -v ': OK$' | sed 's/^/  | /' | head)
fi
echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
