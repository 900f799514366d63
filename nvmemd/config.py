"""``/etc/nvmemd/nvmemd.toml`` (under the sysroot), shared by the daemon and the CLI.

::

    [kernel]
    legacy_cells = "auto"            # "opt-in" (v6.7+), "all" (older kernels), "auto"
    kernel_version = "auto"          # rule set: "6.12", "7.2", or "auto" (osrelease)
    extra_legacy_compatibles = []    # vendor drivers that set add_legacy_fixed_of_cells

    [access]
    groups = []                      # groups whose members may read root-only cells

``auto`` reads the kernel release from ``/proc/sys/kernel/osrelease`` under
the sysroot and picks ``all`` for kernels older than 6.7, ``opt-in`` otherwise.
``kernel_version`` picks the version-dependent rules (:mod:`nvmemd.kernel_version`);
``auto`` takes them from the same release.
"""

from __future__ import annotations

import os

from .errors import ConfigError
from .kernel_rules import LEGACY_CELLS_MODES
from .kernel_version import SERIES, parse_version, series_for
from .sysroot import Sysroot
from .values import field, value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Any, Literal

    from .kernel_rules import LegacyCellsMode
    from .kernel_version import Series

DEFAULT_CONFIG = "/etc/nvmemd/nvmemd.toml"
OSRELEASE = "/proc/sys/kernel/osrelease"
#: v6.7: commit 2cc3b37f5b6d makes legacy cells opt-in.
OPT_IN_SINCE = (6, 7)

_SCHEMA: dict[str, dict[str, type]] = {
    "kernel": {"legacy_cells": str, "extra_legacy_compatibles": list, "kernel_version": str},
    "access": {"groups": list},
}


@value
class Config:
    legacy_cells: LegacyCellsMode = "auto"
    extra_legacy_compatibles: tuple[str, ...] = ()
    access_groups: tuple[str, ...] = ()
    path: str | None = None
    kernel_release: str | None = field(default=None, compare=False)
    kernel_version: str = "auto"  # "auto" or one of kernel_version.SERIES

    def series(self) -> Series:
        """The rule set: the configured ``kernel_version``, else the running release's."""
        if self.kernel_version != "auto":
            return series_for(self.kernel_version)
        return series_for(self.kernel_release)

    def legacy_mode(self) -> Literal["opt-in", "all"]:
        if self.legacy_cells != "auto":
            return self.legacy_cells
        version = parse_version(self.kernel_release)
        if version is not None and version < OPT_IN_SINCE:
            return "all"
        return "opt-in"


def _string_list(path: str, key: str, value: list[Any]) -> tuple[str, ...]:
    if not all(isinstance(v, str) and v for v in value):
        raise ConfigError(path, key, "must be a list of non-empty strings")
    return tuple(value)


def load_config(sysroot: Sysroot, path: str | None = None) -> Config:
    """Load the configuration; a missing default file means defaults.

    *path* given explicitly (``--config``) is a host path and must exist.
    """
    release = sysroot.read_text(OSRELEASE)
    if path is None:
        host = sysroot.host_path(DEFAULT_CONFIG)
        shown = DEFAULT_CONFIG
        if not os.path.exists(host):
            return Config(kernel_release=release)
    else:
        host = path
        shown = path
    import tomllib  # only with a configuration file: 3 ms of start-up otherwise

    try:
        with open(host, "rb") as f:
            data = tomllib.loads(f.read().decode("utf-8"))
    except OSError as e:
        raise ConfigError(shown, None, f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(shown, None, "not valid UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(shown, None, f"invalid TOML: {e}") from None
    except RecursionError:  # tomllib recurses per nesting level: [[[[...]]]]
        raise ConfigError(shown, None, "invalid TOML: nested too deeply") from None

    for section, body in data.items():
        if section not in _SCHEMA and not isinstance(body, dict):
            raise ConfigError(shown, section, "a key outside any section (sections: "
                              + ", ".join(f"[{name}]" for name in _SCHEMA) + ")")
        if section not in _SCHEMA:
            raise ConfigError(shown, section, "unknown section")
        if not isinstance(body, dict):
            raise ConfigError(shown, section, "must be a table")
        for key, setting in body.items():
            expected = _SCHEMA[section].get(key)
            if expected is None:
                raise ConfigError(shown, f"{section}.{key}", "unknown key")
            if not isinstance(setting, expected):
                raise ConfigError(shown, f"{section}.{key}", f"must be a {expected.__name__}")

    kernel = data.get("kernel", {})
    access = data.get("access", {})
    mode = kernel.get("legacy_cells", "auto")
    if mode not in LEGACY_CELLS_MODES:
        raise ConfigError(
            shown, "kernel.legacy_cells", f"must be one of {', '.join(LEGACY_CELLS_MODES)}"
        )
    version = kernel.get("kernel_version", "auto")
    if version != "auto" and version not in SERIES:
        raise ConfigError(
            shown, "kernel.kernel_version", f"must be auto or one of {', '.join(SERIES)}"
        )
    return Config(
        legacy_cells=mode,
        kernel_version=version,
        extra_legacy_compatibles=_string_list(
            shown, "kernel.extra_legacy_compatibles", kernel.get("extra_legacy_compatibles", [])
        ),
        access_groups=_string_list(shown, "access.groups", access.get("groups", [])),
        path=shown,
        kernel_release=release,
    )
