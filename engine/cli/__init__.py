"""The `xiaowei` command line. Its command forms are a contract (README, docs/cli.md).

:mod:`.base` holds the top-level group and what every command shares; each module below registers its
command group on it when imported, and this package imports them all, so ``engine.cli:main`` (the
``xiaowei`` script) and ``python -m engine.cli`` see every command.
"""

from .base import main
from . import (setup, directory, procedures, cases, editing, variants, warnings, supervision, serve,  # noqa: E402,F401
               worker, backup)  # (register)

__all__ = ["main"]
