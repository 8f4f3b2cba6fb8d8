"""The wheel ships every package of the source tree.

pyproject.toml lists the packages by hand (setuptools' discovery would pick up tests/ and scripts/), so a new
subpackage left out of the list installs fine in editable mode and is missing from a real install.
"""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_source_package_is_listed_in_pyproject() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    dirs = setuptools.get("package-dir", {})
    roots = {
        "crnn_cli": ROOT / "crnn_cli",
        **{name: ROOT / path for name, path in dirs.items() if "." not in name},
    }
    found = set()
    for name, folder in roots.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder)
            found.add(".".join([name, *rel.parts]))
    missing = sorted(found - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"
