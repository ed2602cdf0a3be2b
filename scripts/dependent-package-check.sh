#!/usr/bin/env bash
# The README's "A first program", done exactly as the README says, in a temporary directory: a
# copy of this checkout as `swift-execnet/`, the README's commands, Package.swift and main.swift
# taken from the README's text, then the first `swift run` of the new package, which must print
# one `gwN 'hello'` line per gateway. Fails if the README's steps are incomplete (for example, if
# the stock worker is not built beside the program: workerNotFound).
#
# Usage: scripts/dependent-package-check.sh        (about 3-6 minutes: a fresh debug build)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/execnet-dependent.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# The checkout as the clone the README speaks of, without build products or git data.
mkdir "$work/swift-execnet"
tar -C "$root" --exclude='./.build*' --exclude=./.git --exclude='./.venv*' --exclude=./Package.resolved -cf - . \
    | tar -C "$work/swift-execnet" -xf -

# The README's section, its fenced blocks in order: an sh block runs in the work directory, a
# block is written to the file named on the line before it (`path`:), in README order (so a
# file whose directory the README has not made yet fails, as it would for a reader).
awk '/^## A first program$/ { on = 1; next } /^## / { on = 0 } on' "$root/README.md" > "$work/section.md"
mkdir "$work/blocks"
awk -v dir="$work/blocks" '
    /^```/ {
        if (inblock) { inblock = 0; close(out); next }
        inblock = 1; n++
        out = dir "/" n
        if (substr($0, 4) == "sh") { print n " sh" > (dir "/manifest") }
        else if (file != "") { print n " " file > (dir "/manifest") }
        # A block that names no file (a later example of the section) is not a step.
        file = ""
        next
    }
    inblock { print > out; next }
    /^`[^`]+`:/ { match($0, /^`[^`]+`/); file = substr($0, 2, RLENGTH - 2) }
' "$work/section.md"
while read -r number target; do
    if [ "$target" = sh ]; then
        (cd "$work" && bash -euo pipefail "$work/blocks/$number")
    else
        cp "$work/blocks/$number" "$work/$target"
    fi
done < "$work/blocks/manifest"
for file in hello-execnet/Package.swift hello-execnet/Sources/hello-execnet/main.swift; do
    [ -s "$work/$file" ] || { echo "the README did not give $file" >&2; exit 1; }
done

# The first `swift run`, as a user runs it: no worker path from this environment.
cd "$work/hello-execnet"
unset EXECNET_WORKER EXECNET_WORKER_MODE EXECNET_ENDPOINT EXECNET_DEBUG
status=0
output="$(timeout 1800 swift run 2>"$work/build.log")" || status=$?
if [ "$status" != 0 ]; then
    echo "swift run failed ($status):" >&2
    grep -m 10 -E "error:|Fatal error|Error raised" "$work/build.log" >&2 || tail -n 40 "$work/build.log" >&2
    printf '%s\n' "$output" >&2
    exit 1
fi
printf '%s\n' "$output"
lines="$(printf '%s\n' "$output" | grep -cE "^gw[0-2] 'hello'$" || true)"
ids="$(printf '%s\n' "$output" | grep -E "^gw[0-2] 'hello'$" | cut -d' ' -f1 | sort -u | wc -l)"
if [ "$lines" != 3 ] || [ "$ids" != 3 ]; then
    echo "expected one \"gwN 'hello'\" line from each of gw0, gw1, gw2" >&2
    exit 1
fi
echo "dependent package: the README's first program ran on the first swift run"
