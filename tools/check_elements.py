#!/usr/bin/env python3
"""Check that every GStreamer element this project uses comes from a package tools/setup.sh installs.

    tools/check_elements.py

1. Finds the elements named in the sources: pipeline descriptions (the words around `!`),
   `ElementFactory::make("…")` / `Gst.ElementFactory.make("…")`, and any word ending in `sink` or
   `src` (sinks passed as arguments: quoted in code, bare in shell scripts), in tests/, pipelines/,
   examples/, tools/, src/ and the Makefile.
2. Each of them must be in tools/setup.sh's ELEMENTS list (`element=package`); that list also
   names the decoders decodebin picks for ../shared/media, which no source names. Elements of
   ARCH_ELEMENTS whose package is installed only on other architectures (libcamerasrc: arm64)
   count as listed, and are not looked for here (`tools/setup.sh elements-elsewhere`).
3. Each listed element must be installed (`gst-inspect-1.0 --exists`), and its plugin file must
   belong to the Debian package the list names (`dpkg -S`). A missing element is reported with
   the package to install.

Exits 1 with one line per problem, 0 with a one-line summary. Needs only Python's standard library.
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This project's own elements, and shell words around a negating `!` (`if ! grep …`).
OWN = {"torchclassify", "torchdetect", "torchtrack", "torchoverlay", "torchpublish"}
NOT_ELEMENTS = {"if", "elif", "then", "do", "while", "until", "grep", "command"}

LINK = re.compile(r"(?<![!=<>\w])!(?![=(\w])")  # a `!` that links elements, not `!=`, `!x`, `x!(`
NAME = re.compile(r"^[a-z][a-z0-9]+$")
FACTORY = re.compile(r'ElementFactory(?:::|\.)make\(\s*"([a-z0-9]+)"')
# A sink or source named alone: quoted in code, or a bare word in a shell script.
QUOTED_SINK_OR_SRC = re.compile(r"[\"']([a-z][a-z0-9]*(?:sink|src))[\"']")
SINK_OR_SRC = re.compile(r"\b([a-z][a-z0-9]*(?:sink|src))\b")


QUOTE = re.compile(r"[\"']")
# Format placeholders and shell variables: `{caps}`, `{}`, `$MODEL_PROP`, `${x}`, `"$1"`.
PLACEHOLDER = re.compile(r"\{[^}]*\}|\$\{[^}]*\}|\$\w+")


def words_of(text: str) -> list:
    return [w.strip(",;()") for w in re.sub(r"[\\\"']", " ", PLACEHOLDER.sub(" ", text)).split()]


def listed(which: str = "elements") -> dict:
    """element -> package, from `tools/setup.sh elements` (or `elements-elsewhere`)."""
    out = subprocess.run([str(ROOT / "tools/setup.sh"), which], check=True,
                         capture_output=True, text=True).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def source_files():
    for d in ["tests", "pipelines", "examples", "tools", "src"]:
        for p in sorted((ROOT / d).rglob("*")):
            if p.is_file() and p.suffix in (".rs", ".py", ".sh", "") and "__pycache__" not in p.parts:
                yield p
    yield ROOT / "Makefile"


def used() -> dict:
    """element -> the first place (file:line) that names it."""
    found = {}
    for path in source_files():
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if line.lstrip().startswith("//"):  # Rust comments and doc comments use `!` as prose
                continue
            alone = SINK_OR_SRC if path.suffix in (".sh", "") else QUOTED_SINK_OR_SRC
            names = FACTORY.findall(line) + alone.findall(line)
            parts = LINK.split(line)
            for i, part in enumerate(parts if len(parts) > 1 else []):
                if i == 0:
                    # The first element: the first word after an opening quote (a string in
                    # code), or else the last word without `=` (a shell command line).
                    quoted = QUOTE.split(part)
                    words = words_of(quoted[-1]) if len(quoted) > 1 else \
                        [w for w in words_of(part) if "=" not in w][-1:]
                else:  # the element after a `!`
                    words = words_of(part)
                names.extend(words[:1])
            for name in names:
                if NAME.match(name) and name not in OWN and name not in NOT_ELEMENTS:
                    found.setdefault(name, f"{path.relative_to(ROOT)}:{n}")
    return found


def plugin_package(element: str):
    """(installed?, the Debian package that owns the element's plugin file or None)."""
    if subprocess.run(["gst-inspect-1.0", "--exists", element]).returncode != 0:
        return False, None
    info = subprocess.run(["gst-inspect-1.0", element], capture_output=True, text=True).stdout
    m = re.search(r"^\s*Filename\s+(\S+)", info, re.M)
    if not m:
        return True, None
    # With merged /usr, dpkg may know the file under /usr/lib or /lib: ask for both.
    path = Path(m.group(1))
    for candidate in dict.fromkeys([path, path.resolve(), Path("/usr") / path.relative_to("/")
                                    if not path.is_relative_to("/usr") else path]):
        owner = subprocess.run(["dpkg", "-S", str(candidate)], capture_output=True, text=True)
        if owner.returncode == 0:
            return True, owner.stdout.split(":")[0]
    return True, f"no package (plugin file {path})"


def main() -> int:
    elements = listed()
    elsewhere = listed("elements-elsewhere")
    problems = []
    for name, where in sorted(used().items()):
        if name not in elements and name not in elsewhere:
            problems.append(f"{name} (used at {where}) is not in tools/setup.sh's ELEMENTS: "
                            "add it with the Debian package that has it")
    for name, package in sorted(elements.items()):
        present, owner = plugin_package(name)
        if not present:
            problems.append(f"element {name} is missing: install package {package} "
                            "(`tools/setup.sh deps` does)")
        elif owner != package:
            problems.append(f"element {name} comes from {owner}, not {package} as tools/setup.sh's "
                            "ELEMENTS says")
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"{len(elements)} elements, each installed from the package tools/setup.sh names "
          f"({len(set(elements.values()))} packages)"
          + "".join(f"; {name} ({package}) is not installed on this architecture" for name, package in sorted(elsewhere.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
