"""Application services: one transaction per use case, the facade the command line, the web pages and
the JSON API call (:class:`Xiaowei`). See docs/architecture.md."""

from .facade import Xiaowei, dumps
from .supervision import warnings as _warnings  # noqa: F401  (registers the warning rules' local parameters)

__all__ = ["Xiaowei", "dumps"]
