"""The library's loggers, without ``import logging`` on the command path.

``import logging`` costs more than a third of Python's own start-up (it loads
``re``, ``traceback``, ``string``, ``threading``), and ``nvmemd-query get``
logs nothing unless ``-v`` is given.  :func:`get_logger` returns a
:class:`Log` that hands each message to :mod:`logging` only when the program
has imported it, as every program that configures logging has (the daemon,
``nvmemd-query -v``, pytest).  A program that never imports logging has no
handler a message could reach, so nothing is lost.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    import logging


class Log:
    """The subset of :class:`logging.Logger` the library uses."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def _logger(self) -> logging.Logger | None:
        logging_module = sys.modules.get("logging")
        if logging_module is None:
            return None
        logger: logging.Logger = logging_module.getLogger(self.name)
        return logger

    def debug(self, msg: str, *args: object) -> None:
        if (logger := self._logger()) is not None:
            logger.debug(msg, *args, stacklevel=2)

    def info(self, msg: str, *args: object) -> None:
        if (logger := self._logger()) is not None:
            logger.info(msg, *args, stacklevel=2)

    def warning(self, msg: str, *args: object) -> None:
        if (logger := self._logger()) is not None:
            logger.warning(msg, *args, stacklevel=2)

    def error(self, msg: str, *args: object) -> None:
        if (logger := self._logger()) is not None:
            logger.error(msg, *args, stacklevel=2)


def get_logger(name: str) -> Log:
    """The logger for module *name* (``logging.getLogger(name)`` once logging is loaded)."""
    return Log(name)
