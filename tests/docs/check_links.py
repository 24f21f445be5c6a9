#!/usr/bin/env python3
"""Checks that the documentation points only at files that exist.

For every Markdown file under docs/, README.md and examples/**/README.md:
- a Markdown link [text](target) with a relative target must resolve from the file's
  folder (an #anchor after it is ignored; http(s) and mailto links are not checked);
- a repository path written in the text (`docs/scheduling.md`, src/flowcontrol/admission.h,
  scripts/demo.sh, ...) must exist from the repository's root, as a file or folder or as
  the stem of files (src/kube/status for status.h and status.cc);
- a section named after a document, as in docs/scheduling.md ("Performance"), must be a
  heading of that document (the heading starts with the quoted words). Paths holding a
  placeholder or a pattern (<topic>, *, {a,b}, $VAR, ...) and build outputs are skipped.

Exit status 0 when every reference resolves, 1 with one line per broken reference.
Usage: check_links.py [REPO_ROOT]   (default: two folders above this file)
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[2])
TOP = ("docs", "src", "tests", "scripts", "examples", "deploy", "bench", "profiles", "cmake", ".ci")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
PATH = re.compile(r"(?<![\w./-])((?:%s)/[\w.+/-]*[\w/])" % "|".join(re.escape(t) for t in TOP))
PLACEHOLDER = re.compile(r"[<>*{}$]|\.\.\.")
SECTION = re.compile(r"((?:%s)/[\w./-]+\.md),? \(\"([^\"]+)\"\)" % "|".join(re.escape(t) for t in TOP))


def documents():
    yield ROOT / "README.md"
    yield from sorted((ROOT / "docs").rglob("*.md"))
    yield from sorted((ROOT / "examples").rglob("README.md"))


def exists(path):
    """A path, or a stem naming its files or the target built from them (src/kube/status
    for status.h and status.cc, bench/scheduler_bench for scheduler_bench.cc)."""
    full = ROOT / path.rstrip("/")
    return full.exists() or any(full.parent.glob(glob_escape(full.name) + ".*"))


def glob_escape(name):
    return re.sub(r"([*?\[])", r"[\1]", name)


def headings(path):
    return [line.lstrip("#").strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith("#")]


def broken(doc):
    text = doc.read_text(encoding="utf-8")
    rel = doc.relative_to(ROOT)
    # Section references may wrap across lines: look for them in the text as one line.
    for path, title in SECTION.findall(" ".join(text.split())):
        target = ROOT / path
        if target.is_file() and not any(h.startswith(title) for h in headings(target)):
            yield f"{rel}: {path} has no section \"{title}\""
    for lineno, line in enumerate(text.splitlines(), 1):
        for target in LINK.findall(line):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = target.split("#", 1)[0]
            if not (doc.parent / path).exists():
                yield f"{rel}:{lineno}: link to {target} does not resolve"
        for match in PATH.finditer(line):
            path = match.group(1)
            end = match.end(1)
            # Skip patterns and placeholders that continue the path (docs/<area>.md).
            if end < len(line) and PLACEHOLDER.match(line[end:end + 3]):
                continue
            if PLACEHOLDER.search(path):
                continue
            if not exists(path):
                yield f"{rel}:{lineno}: {path} is not in the repository"


def main():
    problems = [p for doc in documents() if doc.exists() for p in broken(doc)]
    for p in problems:
        print(p)
    checked = sum(1 for d in documents() if d.exists())
    print(f"{checked} documents checked, {len(problems)} broken references")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
