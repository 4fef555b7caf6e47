"""The application context every entry point builds: settings, database, classifier.

CLI commands, the web app, the scheduler and Celery workers all create one
:class:`App` and call the same use-case functions with it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from listener.config import Settings, load_settings
from listener.db import make_engine, make_sessionmaker, migrate

if TYPE_CHECKING:
    from classifiers import Classifier
    from classifiers.progress import Progress


@dataclass
class App:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    _classifier: Classifier | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: shows the (slow) first load of the model, e.g. a spinner on the CLI's terminal
    model_progress: Progress | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, *, upgrade: bool = True) -> App:
        engine = make_engine(settings.database.url, echo=settings.database.echo)
        if upgrade:
            migrate(engine)
        return cls(settings=settings, engine=engine, sessions=make_sessionmaker(engine))

    @classmethod
    def from_config(cls, path: str | Path | None = None, *, upgrade: bool = True) -> App:
        return cls.from_settings(load_settings(path), upgrade=upgrade)

    @property
    def classifier(self) -> Classifier:
        """The configured classifier, loaded on first use (it may import torch)."""
        if self._classifier is None:
            with self._lock:
                if self._classifier is None:
                    from classifiers import load_classifier

                    settings = self.settings.classifier.resolved(self.settings.base_dir)
                    if self.model_progress is None or settings.kind == "lexicon":
                        self._classifier = load_classifier(settings)
                    else:  # one live display at a time: the load's own steps stay quiet
                        with self.model_progress(f"Loading the {settings.kind} model"):
                            self._classifier = load_classifier(settings)
        return self._classifier

    def use_classifier(self, classifier: Classifier) -> None:
        """Replace the classifier (after training a new head)."""
        with self._lock:
            self._classifier = classifier

    def close(self) -> None:
        self.engine.dispose()
