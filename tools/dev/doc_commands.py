#!/usr/bin/env python3
"""Checks that every shell command the documentation tells a user to run is either run by a test or
says why it is not (CONTRIBUTING.md, "Documented commands"). Stdlib only.

Commands: the logical lines (backslash continuations joined) of the ```sh / ```bash / ```shell
blocks of README.md and docs/*.md (docs/cli.md is generated --help text), minus comment lines and
plain variable assignments (B=build/apps). Each must end in a comment that either
  - names where it runs: "# e2e.NAME" (tests/e2e/NAME.sh runs the same text through doc_cmd, see
    tests/e2e/common.bash) or "# .ci/run" (the line is in .ci/run as written), checked here; or
  - marks it as not run by the tests, saying what it needs: "# needs ImageNet", "# needs a GPU",
    "# needs root" (installs packages), "# needs a download" (official weights, the Python
    environment), "# needs your images", "# needs minutes" / "# needs hours" / "# needs ~N min" (a
    build, an experiment or a benchmark run by hand on the full data; its numbers are in the docs).
A comment line in a block that starts with such a marker ("# needs ImageNet and a GPU: ...") applies to every command after it in the block.
Also fails for a doc_cmd in tests/e2e whose text no document shows any more.

Usage: tools/dev/doc_commands.py [ROOT]   (prints every command with its verdict; exit 1 on a failure)
"""
import glob
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
LANGS = {"sh", "bash", "shell"}
NEEDS = re.compile(r"#.*\bneeds (ImageNet|a GPU|root|a download|your images|minutes|hours|~?[0-9.]+ ?(s|min|h)\b)")
RUN_BY = re.compile(r"#.*?(e2e\.([a-z0-9_]+)|\.ci/run)\b")
BLOCK = re.compile(r"^#\s*needs (ImageNet|a GPU|root|a download|your images|minutes|hours|~?[0-9.]+ ?(s|min|h)\b)")
ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*=[^\s$;`]*\s*;?\s*)+$")
# Tests another branch adds (issue 24: skd-extract/skd-export selection forms); until it lands a
# command may name it and is reported as pending. Remove a name once its test exists.
PENDING = set()


def strip_comment(line):
    """The command without its trailing comment (a # outside quotes, after a space)."""
    q = None
    for i, c in enumerate(line):
        if q:
            if c == q:
                q = None
        elif c in "'\"":
            q = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i:]
    return line.rstrip(), ""


def normalize(cmd):
    return " ".join(cmd.split())


def doc_commands():
    files = [os.path.join(ROOT, "README.md")] + sorted(
        f for f in glob.glob(os.path.join(ROOT, "docs", "*.md")) if os.path.basename(f) != "cli.md")
    for path in files:
        lines = open(path, encoding="utf-8").read().split("\n")
        lang, block_mark, i = None, "", 0
        while i < len(lines):
            m = re.match(r"^\s*```(\w*)", lines[i])
            if m:
                lang = None if lang is not None else m.group(1)
                block_mark = ""
                i += 1
                continue
            if lang is None or lang not in LANGS:
                i += 1
                continue
            start = i
            text = lines[i].strip()
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1].rstrip() + " " + lines[i].strip()
            i += 1
            if not text:
                continue
            if text.startswith("#"):
                if BLOCK.match(text):
                    block_mark = text
                continue
            cmd, comment = strip_comment(text)
            if ASSIGN.match(cmd):
                continue
            yield os.path.relpath(path, ROOT), start + 1, normalize(cmd), (comment + " " + block_mark).strip()


def doc_cmds_in_tests():
    """{test name: set of normalized doc_cmd texts} from tests/e2e/*.sh (single-quoted, one line)."""
    out = {}
    for path in glob.glob(os.path.join(ROOT, "tests", "e2e", "*.sh")):
        name = os.path.splitext(os.path.basename(path))[0]
        texts = set()
        for line in open(path, encoding="utf-8"):
            m = re.match(r"""\s*doc_cmd\s+("[^"]*"|\S+)\s+\S+\s+'([^']*)'""", line)
            if m:
                texts.add(normalize(m.group(2)))
        out[name] = texts
    return out


def main():
    runs = doc_cmds_in_tests()
    ci = {normalize(strip_comment(l)[0]) for l in open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8")}
    failures, pending, documented = [], [], set()
    for path, line, cmd, comment in doc_commands():
        documented.add(cmd)
        where = f"{path}:{line}: {cmd}"
        m = RUN_BY.search(comment)
        if m and m.group(1) == ".ci/run":
            verdict = "run by .ci/run" if cmd in ci else None
            if not verdict:
                failures.append(f"{where}\n    says '# .ci/run' but .ci/run has no such line")
        elif m:
            name = m.group(2)
            if name not in runs and name in PENDING:
                pending.append(f"{where}\n    e2e.{name} is not in this checkout yet (pending)")
                verdict = "pending"
            elif cmd in runs.get(name, ()):
                verdict = f"run by e2e.{name}"
            else:
                failures.append(f"{where}\n    says '# e2e.{name}' but tests/e2e/{name}.sh has no doc_cmd '{cmd}'")
                verdict = None
        elif NEEDS.search(comment):
            verdict = "marked: " + NEEDS.search(comment).group(0).lstrip("# ")
        else:
            failures.append(f"{where}\n    neither run by a test ('# e2e.NAME', '# .ci/run') nor marked "
                            "('# needs ImageNet|a GPU|root|a download|your images|minutes|hours')")
            verdict = None
        if verdict:
            print(f"ok    {where[:150]}  [{verdict}]")
    for name, texts in sorted(runs.items()):
        for t in sorted(texts - documented):
            failures.append(f"tests/e2e/{name}.sh: doc_cmd '{t}' is in no document")
    for p in pending:
        print("PEND  " + p)
    for f in failures:
        print("FAIL  " + f)
    print(f"{len(documented)} documented commands, {len(pending)} pending, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
