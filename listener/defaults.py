"""What ships with Listener: the reply templates, a starter config.yaml and the demo posts.

In a built wheel they live in ``listener/_defaults/`` (copied there by ``setup.py`` at build
time from the repository's top-level ``templates/``, ``config.yaml`` and ``examples/``); in
a source checkout (an editable install) they are read from the repository itself, so
editing ``templates/`` changes what the packaged defaults are.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from listener.errors import ConfigError

#: the folder inside the installed package (a wheel)
BUNDLED = Path(__file__).resolve().parent / "_defaults"
#: the repository root, when running from a checkout
CHECKOUT = Path(__file__).resolve().parent.parent


def defaults_root() -> Path:
    """The folder holding ``templates/``, ``config.yaml`` and ``examples/``."""
    for root in (BUNDLED, CHECKOUT):
        if (root / "templates" / "replies").is_dir():
            return root
    raise ConfigError(  # a broken installation, not a user's mistake
        f"the packaged reply templates are missing (looked in {BUNDLED} and {CHECKOUT}); "
        "reinstall Listener, or set recovery.templates_dir"
    )


def packaged_templates() -> Path:
    """The default reply templates (``replies/<channel>/<category>[.<n>].j2``)."""
    return defaults_root() / "templates"


def starter_config() -> str:
    """The commented starter config.yaml that ``listener init`` writes (the demo brand,
    polling the bundled example posts)."""
    return (defaults_root() / "config.yaml").read_text("utf-8")


def examples_dir() -> Path:
    """The bundled example posts (``blog.xml``, ``social.jsonl``)."""
    return defaults_root() / "examples"


def copy_templates(target: Path) -> list[Path]:
    """Copy the packaged templates into ``target`` for editing (existing files are kept);
    returns the files written."""
    source = packaged_templates()
    written: list[Path] = []
    for path in sorted(source.rglob("*.j2")):
        dest = target / path.relative_to(source)
        if dest.exists():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
        written.append(dest)
    return written


def write_starter(config: Path) -> list[Path]:
    """A starter config at ``config`` and the demo posts in ``examples/`` beside it (never
    overwritten); returns the files written."""
    written: list[Path] = []
    folder = config.parent
    if not config.exists():
        folder.mkdir(parents=True, exist_ok=True)
        config.write_text(starter_config(), "utf-8")
        written.append(config)
    examples = folder / "examples"
    for path in sorted(examples_dir().iterdir()):
        dest = examples / path.name
        if path.is_file() and not dest.exists():
            examples.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
            written.append(dest)
    return written
