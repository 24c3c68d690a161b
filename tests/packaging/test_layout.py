"""The package's layout, without building it: every package folder is in the wheel's list,
and `import keras_sgdplus` (the optimizer) loads nothing of the lab or the dashboard."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[2]
#: What the optimizer never loads: the engine, the app, and the lab's own dependencies.
NOT_FOR_THE_OPTIMIZER = (
    *("keras_sgdplus.lab", "keras_sgdplus.dashboard", "streamlit", "altair"),
    *("pandas", "sklearn"),
)
#: Keras itself loads pandas and scikit-learn where they are installed (its data adapters,
#: its scikit-learn wrappers): after `import keras`, the check is what keras_sgdplus adds.
LOADED_BY_KERAS = ("pandas", "sklearn")


def setuptools_config() -> dict:
    with (REPO / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["tool"]["setuptools"]


def test_every_package_folder_is_listed_for_the_wheel():
    """`packages` is an explicit list (the dashboard is mapped from the root folder): a new
    subpackage left out of it would be missing from the wheel, and from every install."""
    config = setuptools_config()
    roots = {"keras_sgdplus": REPO / "keras_sgdplus"}
    roots.update({name: REPO / folder for name, folder in config["package-dir"].items()})
    found = {
        ".".join([name, *init.parent.relative_to(root).parts])
        for name, root in roots.items()
        for init in root.rglob("__init__.py")
    }
    assert set(config["packages"]) == found
    assert config["package-dir"] == {"keras_sgdplus.dashboard": "dashboard"}


def modules_loaded_by(
    python: str, first: str, cwd: Path, env: dict[str, str] | None = None
) -> tuple[list[str], list[str]]:
    """(every module loaded, those that `import keras_sgdplus` added) in a fresh `python`
    started in `cwd` (not the repository, whose folder would shadow an installed package),
    after running `first`."""
    script = (
        f"import json, sys\n{first}\n"
        "before = set(sys.modules)\n"
        "import keras_sgdplus\n"
        "print(json.dumps([sorted(sys.modules), sorted(set(sys.modules) - before)]))\n"
    )
    result = subprocess.run(
        [python, "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    loaded, added = json.loads(result.stdout.splitlines()[-1])
    return loaded, added


def starting_with(names: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes)]


def assert_the_optimizer_loads_no_lab(
    python: str, cwd: Path, env: dict[str, str] | None = None
) -> None:
    # alone: nothing of the lab, the dashboard or their dependencies
    loaded, _ = modules_loaded_by(python, "", cwd, env)
    assert starting_with(loaded, NOT_FOR_THE_OPTIMIZER) == []
    # in a Keras script: SGDPlus registered with Keras, and still nothing of the lab
    loaded, added = modules_loaded_by(python, "import keras", cwd, env)
    assert "keras_sgdplus.sgd_plus" in added
    others = tuple(p for p in NOT_FOR_THE_OPTIMIZER if p not in LOADED_BY_KERAS)
    assert starting_with(loaded, others) == []
    assert starting_with(added, NOT_FOR_THE_OPTIMIZER) == []


def test_importing_the_optimizer_loads_no_lab_no_dashboard(tmp_path):
    assert_the_optimizer_loads_no_lab(sys.executable, tmp_path)
