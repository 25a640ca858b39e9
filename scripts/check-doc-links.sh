#!/usr/bin/env bash
# Every relative link in the repository's Markdown files must name a file that exists
# and, with a #fragment, a heading of that file (GitHub's anchor rules). External
# links (http:, https:, mailto:) are not fetched. Prints each broken link and fails.
#
#   scripts/check-doc-links.sh                          # every *.md file git tracks
#   scripts/check-doc-links.sh --allow-missing docs/x.md README.md docs/y.md
#
# --allow-missing PATH (repeatable): a file another change is adding; links to it are
# reported as pending but do not fail.
set -euo pipefail
cd "$(dirname "$0")/.."
allow=()
files=()
while [ $# -gt 0 ]; do
  case "$1" in
    --allow-missing) allow+=("$2"); shift 2 ;;
    *) files+=("$1"); shift ;;
  esac
done
if [ ${#files[@]} -eq 0 ]; then
  mapfile -t files < <(git ls-files '*.md')
  # Markdown files added but not committed yet are checked too.
  mapfile -t -O "${#files[@]}" files < <(git ls-files --others --exclude-standard '*.md')
fi
ALLOW="${allow[*]:-}" python3 - "${files[@]}" <<'PY'
import os, re, sys, unicodedata

allow = set(os.environ.get("ALLOW", "").split())
files = sys.argv[1:]

def slug(text):
    # GitHub: strip markup, lower-case, drop punctuation but '-' and '_', spaces -> '-'.
    text = re.sub(r"`([^`]*)`", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[*_]{1,2}([^*_]+)[*_]{1,2}", r"\1", text)
    text = text.strip().lower()
    out = []
    for ch in text:
        if ch in "-_ " or unicodedata.category(ch)[0] in "LN":
            out.append("-" if ch == " " else ch)
    return "".join(out)

def lines_outside_code(path):
    fence = None
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        m = re.match(r"^\s*(```|~~~)", line)
        if m:
            if fence is None:
                fence = m.group(1)
            elif line.strip().startswith(fence):
                fence = None
            continue
        if fence is None:
            yield n, line

anchors_cache = {}
def anchors(path):
    if path not in anchors_cache:
        seen = {}
        result = set()
        for _, line in lines_outside_code(path):
            m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
            if not m:
                continue
            s = slug(m.group(2))
            k = seen.get(s, 0)
            seen[s] = k + 1
            result.add(s if k == 0 else f"{s}-{k}")
        for _, line in lines_outside_code(path):
            for a in re.findall(r'<a\s+(?:name|id)="([^"]+)"', line):
                result.add(a)
        anchors_cache[path] = result
    return anchors_cache[path]

link = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
broken = pending = checked = 0
for f in files:
    if not os.path.exists(f):
        continue
    base = os.path.dirname(f)
    for n, line in lines_outside_code(f):
        # Inline code spans are not links.
        line = re.sub(r"`[^`]*`", "", line)
        for target in link.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue
            checked += 1
            path, _, frag = target.partition("#")
            dest = os.path.normpath(os.path.join(base, path)) if path else f
            if not os.path.exists(dest):
                if dest in allow:
                    pending += 1
                    print(f"{f}:{n}: {target}: pending ({dest} is being added elsewhere)")
                else:
                    broken += 1
                    print(f"{f}:{n}: {target}: no file {dest}")
                continue
            if frag and dest.endswith(".md") and frag not in anchors(dest):
                broken += 1
                print(f"{f}:{n}: {target}: no heading #{frag} in {dest}")
print(f"doc links: {checked} relative links in {len(files)} files, {broken} broken, {pending} pending")
sys.exit(1 if broken else 0)
PY
