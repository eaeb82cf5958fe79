#!/usr/bin/env python3
"""Refuses pipelines whose reader can stop before the writer is done.

Under `set -o pipefail`, `cmd | grep -q x` fails at random: grep exits at its first match, cmd
dies of SIGPIPE while it still writes, and the pipeline's status is cmd's 141. The same holds for
`head`, `grep -m`, `grep -l`, and grep writing to /dev/null (GNU grep then stops at its first
match as -q does). Read the writer's output into a variable or a file first, or use a reader
that reads everything.

Checks every shell script of the repository (*.sh, .ci/run, and files with a bash or sh
shebang) and the `bash -c` strings in them. Prints each finding as path:line and exits 1.
`--self-test` checks the check itself on lines it must refuse and lines it must allow.
"""
import re
import subprocess
import sys

EARLY_GREP = re.compile(r"^grep(?=\s)(?=.*(\s-[a-zA-Z]*[qlLm]|\s--(quiet|silent|max-count|files-with(out)?-match)|>\s*/dev/null))")
EARLY_OTHER = re.compile(r"^(head(\s|$)|sed\s.*\bq\b|awk\s.*\bexit\b)")


def shell_files():
    out = subprocess.run(["git", "ls-files"], capture_output=True, text=True, check=True).stdout
    for path in out.splitlines():
        if path.endswith(".sh") or path == ".ci/run":
            yield path
            continue
        try:
            with open(path, "rb") as f:
                first = f.readline()
        except OSError:
            continue
        if first.startswith(b"#!") and (b"bash" in first or first.rstrip().endswith(b"/sh")):
            yield path


def stages(line):
    """The commands after each single `|` (not `||`) of a line, outside comments."""
    code = re.sub(r"(^|\s)#.*$", "", line)
    parts = re.split(r"(?<!\|)\|(?!\|)", code)
    return [p.strip() for p in parts[1:]]


def findings(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if flagged(line):
                yield f"{path}:{n}: the reader can stop early: {line.strip()}"


# Lines the check must refuse, and lines it must let through (`--self-test`).
REFUSED = [
    "tar -tf a.tar | grep -qx index.json || fail",
    "ip addr show dev x | grep -qF 10.0.0.1 || ip addr add",
    'bash -c "kubectl get node n | grep -q True"',
    "ctr images ls -q | grep -x name >/dev/null || die",
    "kubectl get events | head -8",
    "cmd | grep -m1 x",
    "cmd | sed -n '1p;q'",
]
ALLOWED = [
    "listing=$(tar -tf a.tar); grep -qx index.json <<<\"$listing\"",
    "cmd || grep -q x file",
    "cmd | grep -v x | sort",
    "pgrep -fa 'a|headroom-demo-app|b' || true",
    "head -n 1 file",
    "grep -q x file  # cmd | grep -q x",
]


def self_test():
    wrong = [l for l in REFUSED if not flagged(l)] + [l for l in ALLOWED if flagged(l)]
    for line in wrong:
        print(f"lint-pipes self-test: misjudged: {line}", file=sys.stderr)
    return 1 if wrong else 0


def flagged(line):
    return any(EARLY_GREP.search(c) or EARLY_OTHER.search(c) for c in stages(line))


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    bad = [msg for path in shell_files() for msg in findings(path)]
    for msg in bad:
        print(msg, file=sys.stderr)
    if bad:
        print(f"lint-pipes: {len(bad)} pipeline(s) can fail under pipefail; read into a variable first", file=sys.stderr)
        return 1
    print("lint-pipes: no early-closing readers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
