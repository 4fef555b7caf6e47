"""Build hook: the top-level ``templates/``, ``config.yaml`` and ``examples/`` ship inside the
wheel as ``listener/_defaults/`` (see :mod:`listener.defaults`). Everything else about the
build is in pyproject.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
#: repository path → path under listener/_defaults/
DEFAULTS = {"templates": "templates", "examples": "examples", "config.yaml": "config.yaml"}


class BuildWithDefaults(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout
        target = Path(self.build_lib) / "listener" / "_defaults"
        for src, dst in DEFAULTS.items():
            path, dest = HERE / src, target / dst
            if path.is_dir():
                shutil.copytree(path, dest, dirs_exist_ok=True)
            elif path.is_file():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)


setup(cmdclass={"build_py": BuildWithDefaults})
