"""The import directions in .importlinter hold: no cycles between sibling modules, only
training.runners imports the ML stack, the web side never reaches it, annotation never imports
training or the pages, the pure cores import no Django, and inside each package the layers run
one way (urls -> apis -> services -> selectors -> pure core; tasks -> services, never back)."""

from pathlib import Path

import pytest
from importlinter import cli

ROOT = Path(__file__).resolve().parents[2]


def _lint(config: Path) -> int:
    return cli.lint_imports(config_filename=str(config), no_cache=True, no_logo=True)


def test_every_import_contract_is_kept(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert _lint(ROOT / ".importlinter") == cli.EXIT_STATUS_SUCCESS


def test_the_contracts_do_catch_a_wrong_direction(monkeypatch, tmp_path):
    # The same linter on a contract the tree breaks today (frontend -> annotation is allowed and
    # used), so a linter that silently checked nothing would fail here.
    monkeypatch.chdir(ROOT)
    broken = tmp_path / "broken.ini"
    broken.write_text(
        "[importlinter]\nroot_packages =\n    annotation\n    frontend\n\n"
        "[importlinter:contract:x]\nname = x\ntype = forbidden\nsource_modules =\n    frontend\n"
        "forbidden_modules =\n    annotation\n"
    )
    assert _lint(broken) != cli.EXIT_STATUS_SUCCESS


@pytest.mark.parametrize("package", ["annotation.labeling", "annotation.agreement", "annotation.exports",
                                     "annotation.adjudication", "annotation.demo", "training"])
def test_each_package_says_what_it_owns(package):
    module = __import__(package, fromlist=["__doc__"])
    assert module.__doc__ and len(module.__doc__.split()) > 20, f"{package}/__init__.py must say what it owns and may import"
