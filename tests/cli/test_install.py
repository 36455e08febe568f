"""What a fresh install needs is declared, and the sources are clean.

A fresh `python3 -m venv` has only what pyproject.toml asks for: a module imported at run time that no
dependency list names works on a developer's machine and fails for everyone else (matplotlib once did).
"""

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import ganzoo

from helpers import REPO
# project folder -> (its pyproject.toml, the source folders shipped by it)
PROJECTS = {
    "pyganzoo": (REPO / "pyproject.toml", [REPO / "ganzoo", REPO / "plugins"]),
    "ganzoo-sndcgan": (REPO / "examples" / "sndcgan" / "pyproject.toml",
                       [REPO / "examples" / "sndcgan" / "ganzoo_sndcgan"]),
}
OWN_MODULES = {"ganzoo", "ganzoo_plugins", "ganzoo_sndcgan"}
IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def declared(pyproject: Path) -> tuple[set[str], set[str]]:
    """(required distributions, distributions of the optional extras) of one pyproject.toml."""
    project = tomllib.loads(pyproject.read_text())["project"]
    required = {requirement_name(r) for r in project.get("dependencies", [])}
    extras = {requirement_name(r) for reqs in project.get("optional-dependencies", {}).values() for r in reqs}
    return required, extras


def guarded_by_import_error(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """True when the import sits in a `try` that catches ImportError: an optional extra, with its own message."""
    while node in parents:
        child, node = node, parents[node]
        if isinstance(node, ast.Try) and child in node.body:
            for handler in node.handlers:
                names = {n.id for n in ast.walk(handler.type) if isinstance(n, ast.Name)} if handler.type else set()
                if names & IMPORT_ERRORS:
                    return True
    return False


def third_party_imports(folder: Path) -> list[tuple[str, str, bool]]:
    """(top-level module, 'file:line', optional?) for every absolute import in the folder's sources."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in OWN_MODULES or top == "__future__":
                    continue
                where = f"{path.relative_to(REPO)}:{node.lineno}"
                found.append((top, where, guarded_by_import_error(node, parents)))
    return found


@pytest.mark.parametrize("project", PROJECTS)
def test_every_imported_module_is_a_declared_dependency(project):
    pyproject, folders = PROJECTS[project]
    required, extras = declared(pyproject)
    distributions = importlib.metadata.packages_distributions()
    problems = []
    imports = [found for folder in folders for found in third_party_imports(folder)]
    assert imports, "no third-party import found: the walk is broken"
    for module, where, optional in imports:
        dists = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
        if not dists:
            problems.append(f"{where}: {module} is not installed, so no declared dependency provides it")
        elif not dists & (required | (extras if optional else set())):
            kind = "an optional extra (guarded by `except ImportError`)" if optional else "`dependencies`"
            problems.append(f"{where}: {module} comes from {sorted(dists)}, which {kind} of {pyproject.name} "
                            f"does not name")
    assert not problems, "\n".join(problems)


def test_the_walk_finds_what_it_should():
    """The check itself can fail: an undeclared import and a guarded one are told apart."""
    source = ("import torch\nimport numpy.linalg\nfrom yaml import safe_load\n"
              "try:\n    import lmdb\nexcept ImportError:\n    lmdb = None\nimport json\nfrom . import x\n")
    tree = ast.parse(source)
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    imports = sorted((n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))), key=lambda n: n.lineno)
    assert [guarded_by_import_error(n, parents) for n in imports] == [False, False, False, True, False, False]


def test_plugins_depend_on_the_distribution_name():
    """`ganzoo` on the package index is someone else's project: a plugin must name `pyganzoo`."""
    assert ganzoo.DISTRIBUTION == "pyganzoo" == tomllib.loads(PROJECTS["pyganzoo"][0].read_text())["project"]["name"]
    required, _ = declared(PROJECTS["ganzoo-sndcgan"][0])
    assert ganzoo.DISTRIBUTION in required and "ganzoo" not in required
    assert importlib.metadata.version(ganzoo.DISTRIBUTION) == ganzoo.__version__


def test_no_stray_files_at_the_repository_root():
    stray = [p.name for p in REPO.iterdir() if p.is_file()
             and re.search(r"\.(whl|tar\.gz|zip|egg|pt|pth|ckpt|npy|npz)$", p.name)]
    assert not stray, f"build or run leftovers at the repository root: {stray}"


@pytest.mark.slow
def test_sources_pass_pyflakes():
    """Unused imports, undefined names, redefinitions: pyflakes is a declared test dependency."""
    folders = ["ganzoo", "plugins", "examples", "tests", "benchmarks"]
    result = subprocess.run([sys.executable, "-m", "pyflakes", *folders], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
