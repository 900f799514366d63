"""nvmemd/config.py: nvmemd.toml, its schema and the kernel release it sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from nvmemd.config import Config, load_config
from nvmemd.errors import ConfigError
from nvmemd.kernel_version import parse_version
from nvmemd.sysroot import Sysroot


def sysroot_with(tmp_path: Path, toml: str | None, release: str | None = "6.12.117") -> Sysroot:
    if release is not None:
        (tmp_path / "proc/sys/kernel").mkdir(parents=True)
        (tmp_path / "proc/sys/kernel/osrelease").write_text(release + "\n")
    if toml is not None:
        (tmp_path / "etc/nvmemd").mkdir(parents=True)
        (tmp_path / "etc/nvmemd/nvmemd.toml").write_text(toml)
    return Sysroot(str(tmp_path))


def test_no_file_means_defaults(tmp_path: Path) -> None:
    config = load_config(sysroot_with(tmp_path, None))
    assert config == Config() and config.kernel_release == "6.12.117"
    assert config.legacy_mode() == "opt-in"


@pytest.mark.parametrize(("release", "mode"), [("6.6.30", "all"), ("6.7.0", "opt-in"),
                                               (None, "opt-in")])
def test_auto_follows_the_kernel_release(tmp_path: Path, release: str | None, mode: str) -> None:
    assert load_config(sysroot_with(tmp_path, None, release)).legacy_mode() == mode


def test_a_full_file(tmp_path: Path) -> None:
    config = load_config(sysroot_with(tmp_path, """
[kernel]
legacy_cells = "all"
extra_legacy_compatibles = ["vendor,otp"]
[access]
groups = ["nvmem"]
"""))
    assert config.legacy_mode() == "all"
    assert config.extra_legacy_compatibles == ("vendor,otp",)
    assert config.access_groups == ("nvmem",)


@pytest.mark.parametrize(("toml", "where"), [
    ("[kernel]\nlegacy_cells = 'sometimes'\n", "kernel.legacy_cells"),
    ("[kernel]\nno_such_key = 1\n", "kernel.no_such_key"),
    ("[nonsense]\n", "nonsense"),
    ("[access]\ngroups = [1]\n", "access.groups"),
    ("not toml at all [", "invalid TOML"),
    ("legacy_cells = 'all'\n", "legacy_cells: a key outside any section"),
])
def test_errors_name_the_key(tmp_path: Path, toml: str, where: str) -> None:
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        load_config(sysroot_with(tmp_path, toml))


def test_an_explicit_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(sysroot_with(tmp_path, None), str(tmp_path / "missing.toml"))


@pytest.mark.parametrize(("text", "parsed"), [
    ("6.12.117+deb12-arm64", (6, 12)), ("7.2.13", (7, 2)), ("6.7", (6, 7)), ("10.0-rc1", (10, 0)),
    ("garbage", None), (None, None), ("", None), ("6", None), ("6.", None), (".6.1", None),
    ("6.x", None), ("\u0666.1", None), ("6.\u0661", None)])
def test_parse_version(text: str | None, parsed: tuple[int, int] | None) -> None:
    """The release parser the config and the rule sets share; ASCII digits only (\\d's
    Unicode digits are not a kernel release)."""
    assert parse_version(text) == parsed
