"""What the extra pyganzoo[view] adds to an install: the distributions it needs that pyganzoo itself does not,
and their size on disk, read from the installed packages' own file lists (run it where the extra is installed).

    python benchmarks/view_install_size.py            # a table, largest first
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import sys

from packaging.requirements import Requirement


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(requirements: list[str], extras: tuple[str, ...] = ()) -> set[str]:
    """Every installed distribution these requirements pull in, with their own requirements."""
    found: set[str] = set()
    todo = [(r, extras) for r in requirements]
    while todo:
        text, chosen = todo.pop()
        req = Requirement(text)
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in (chosen or ("",))):
            continue
        name = canonical(req.name)
        if name in found:
            continue
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            continue
        found.add(name)
        todo += [(r, tuple(req.extras)) for r in dist.requires or []]
    return found


def size(name: str) -> int:
    dist = md.distribution(name)
    total = 0
    for file in dist.files or []:
        path = dist.locate_file(file)
        try:
            total += path.stat().st_size
        except OSError:
            pass
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", default="view", help="which extra of pyganzoo (default view)")
    args = parser.parse_args()
    requires = md.distribution("pyganzoo").requires or []
    marker = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")
    base = [r for r in requires if not marker.search(r)]
    extra = [marker.sub("", r).rstrip(" ;") for r in requires if (m := marker.search(r)) and m.group(1) == args.extra]
    if not extra:
        print(f"pyganzoo declares no extra {args.extra!r}", file=sys.stderr)
        return 1
    have = closure(base)
    added = sorted(closure(extra) - have, key=size, reverse=True)
    sizes = {name: size(name) for name in added}
    print("| distribution | version | size (MB) |\n|---|---|---:|")
    for name in added:
        print(f"| {name} | {md.version(name)} | {sizes[name] / 1e6:.1f} |")
    print(f"| **{len(added)} distributions** | | **{sum(sizes.values()) / 1e6:.1f}** |")
    shared = sorted(closure(extra) & have)
    print(f"\nalready installed with pyganzoo itself: {', '.join(shared)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
