"""The Debian package: build, lintian, metadata and contents, without installing it.

``make deb`` builds ``build/deb/nvmemd_*.deb`` from a copy of the tree and runs
lintian on it; these tests check its metadata and its file list (``dpkg-deb``).
Nothing is installed on this machine: the installed package — scripts on
Debian's ``/usr/bin/python3``, the daemon importing Debian's python3-* packages,
``systemd-analyze verify`` of the installed units, and the installed
``nvmemd-query`` printing byte-identical output to the venv's on the committed
recordings — is checked on a booted Debian system by ``make system-test``
(tools/systemtest/).

The man pages are checked against the argument parsers without building
anything.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEB_DIR = REPO / "build" / "deb"
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
MAN = REPO / "man"

INSTALLED_FILES = [
    "/usr/bin/nvmemd",
    "/usr/bin/nvmemd-query",
    "/lib/systemd/system/nvmemd.service",
    "/lib/systemd/system/nvmemd-wait@.service",
    "/usr/share/dbus-1/system.d/org.nvmemd.Nvmem1.conf",
    "/usr/share/dbus-1/system-services/org.nvmemd.Nvmem1.service",
    "/usr/share/polkit-1/actions/org.nvmemd.Nvmem1.policy",
    "/etc/nvmemd/nvmemd.toml",
    "/usr/share/man/man8/nvmemd.8.gz",
    "/usr/share/man/man1/nvmemd-query.1.gz",
    "/usr/share/man/man5/nvmemd.toml.5.gz",
    "/usr/share/doc/nvmemd/examples/nvmemd-set-mac@.service",
    "/usr/share/doc/nvmemd/copyright",
]


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload,no-any-return]


# --- man pages against the real parsers (no build needed) ----------------------------


def _long_options(parser: object) -> set[str]:
    import argparse

    assert isinstance(parser, argparse.ArgumentParser)
    found: set[str] = set()
    for action in parser._actions:
        found.update(o for o in action.option_strings if o.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _long_options(sub)
    return found - {"--help"}


def _commands(parser: object) -> set[str]:
    import argparse

    assert isinstance(parser, argparse.ArgumentParser)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def test_query_man_page_documents_every_option_and_command() -> None:
    from nvmemd.cli.main import build_parser

    page = (MAN / "nvmemd-query.1.scd").read_text()
    parser = build_parser()
    for option in sorted(_long_options(parser)):
        assert f"*{option}*" in page, f"nvmemd-query(1) does not document {option}"
    for command in sorted(_commands(parser)):
        assert re.search(rf"^\*{re.escape(command)}\*", page, re.M), (
            f"nvmemd-query(1) does not document the {command} command"
        )


def test_query_man_page_documents_only_real_options() -> None:
    from nvmemd.cli.main import build_parser

    page = (MAN / "nvmemd-query.1.scd").read_text()
    documented = set(re.findall(r"\*(--[a-z][a-z-]*)\*", page))
    assert documented <= _long_options(build_parser()) | {"--help", "--version"}


def test_daemon_man_page_documents_every_option() -> None:
    from nvmemd.daemon import build_parser

    page = (MAN / "nvmemd.8.scd").read_text()
    options = _long_options(build_parser())
    for option in sorted(options):
        assert f"*{option}*" in page, f"nvmemd(8) does not document {option}"
    assert set(re.findall(r"\*(--[a-z][a-z-]*)\*", page)) <= options | {"--help", "--version"}


def test_daemon_man_page_lists_every_error_name() -> None:
    from nvmemd.dbus import names as dbus_defs

    page = (MAN / "nvmemd.8.scd").read_text()
    names = {name for _cls, name in dbus_defs.ERROR_MAP} | {dbus_defs.ERROR_FAILED}
    for name in sorted(names):
        assert f"*{name.removeprefix(dbus_defs.ERROR_PREFIX)}*" in page, name


def _exit_statuses(page: str) -> set[int]:
    """The statuses listed (``*N*`` items) in a man page's EXIT STATUS section."""
    section = page.split("# EXIT STATUS", 1)[1].split("\n# ", 1)[0]
    return {int(n) for n in re.findall(r"^\*(\d+)\*$", section, re.M)}


def test_exit_status_sections_list_every_status() -> None:
    """nvmemd-query(1) lists each EXIT_* of the CLI; nvmemd(8) those its start-up errors
    take from the same table (nvmemd.daemon.start_up_error), and 0 and 1."""
    from nvmemd import errors
    from nvmemd.cli import common

    query_codes = {v for k, v in vars(common).items() if k.startswith("EXIT_")
                   and isinstance(v, int)}
    assert _exit_statuses((MAN / "nvmemd-query.1.scd").read_text()) == query_codes
    start_up = {common.exit_code_for(e) for e in (
        errors.ConfigError("f", None, "bad"), errors.AccessDeniedError("x"),
        errors.SysrootError("x"))}
    start_up |= {common.exit_code_for_os_error(e) for e in (
        PermissionError(13, "x"), OSError(5, "x"))}
    assert _exit_statuses((MAN / "nvmemd.8.scd").read_text()) == {0, 1} | start_up


def test_config_man_page_and_example_match_the_loader(tmp_path: Path) -> None:
    """Every key of nvmemd.toml(5) exists in the loader; the shipped file loads as the defaults."""
    from nvmemd import config as cfg
    from nvmemd.sysroot import Sysroot

    page = (MAN / "nvmemd.toml.5.scd").read_text()
    for section, keys in cfg._SCHEMA.items():
        assert f"# SECTION [{section}]" in page
        for key in keys:
            assert f"*{key}* =" in page, f"nvmemd.toml(5) does not document {section}.{key}"
    shipped = REPO / "data" / "nvmemd.toml"
    commented = re.findall(r"^#\s*([a-z_]+)\s*=", shipped.read_text(), re.M)
    assert sorted(commented) == sorted(k for keys in cfg._SCHEMA.values() for k in keys)
    loaded = cfg.load_config(Sysroot(str(tmp_path)), str(shipped))
    assert (loaded.legacy_cells, loaded.extra_legacy_compatibles, loaded.access_groups) == (
        cfg.Config().legacy_cells, (), ())
    # Uncommented, the shipped defaults are valid and still the defaults.
    uncommented = tmp_path / "uncommented.toml"
    uncommented.write_text(re.sub(r"^#([a-z_]+\s*=)", r"\1", shipped.read_text(), flags=re.M))
    loaded = cfg.load_config(Sysroot(str(tmp_path)), str(uncommented))
    assert (loaded.legacy_cells, loaded.extra_legacy_compatibles, loaded.access_groups) == (
        "auto", (), ())


def _api_members() -> dict[str, set[str]]:
    """Interface name → method and property names, from the dbus-fast service classes."""
    from nvmemd.dbus import interfaces as dbus_service

    members: dict[str, set[str]] = {}
    for cls in vars(dbus_service).values():
        if not (isinstance(cls, type) and cls.__module__ == dbus_service.__name__):
            continue
        names = set()
        for value in vars(cls).values():
            method = getattr(value, "__dict__", {}).get("__DBUS_METHOD")
            if method is not None:
                names.add(method.name)
            elif type(value).__name__ == "_Property":
                names.add(value.name)
        if names:
            members[cls.__name__] = names
    return members


def test_readme_documents_the_dbus_api() -> None:
    """The README's D-Bus table names every method and property the daemon exports."""
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## D-Bus API"):readme.index("## Boot integration")]
    members = _api_members()
    assert {"ManagerInterface", "ProviderInterface", "CellInterface"} <= set(members)
    for cls, names in members.items():
        for name in sorted(names):
            assert re.search(rf"`{name}[`(]", table), f"README D-Bus table lacks {cls}.{name}"


def test_readme_keeps_the_setup_commands_first() -> None:
    readme = (REPO / "README.md").read_text()
    first_block = readme[readme.index("```sh"):].split("```")[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["sh", "make demo", "make test"]
    assert readme.index("## Set-up") < readme.index("## What nvmemd is")


@pytest.mark.skipif(shutil.which("scdoc") is None, reason="scdoc not installed")
@pytest.mark.parametrize("source", sorted(MAN.glob("*.scd")), ids=lambda p: p.name)
def test_man_page_renders(source: Path) -> None:
    result = run(["scdoc"], input=source.read_text())
    assert result.returncode == 0, result.stderr
    name, section = source.name.removesuffix(".scd").rsplit(".", 1)
    assert result.stdout.count(f'.TH "{name}" "{section}"') == 1


# --- the package ---------------------------------------------------------------------


def _skip_without_tools() -> None:
    for tool in ("dpkg-buildpackage", "dh", "lintian", "scdoc", "apt-get"):
        if shutil.which(tool, path=SYSTEM_PATH) is None:
            pytest.skip(f"{tool} not installed (make setup installs .ci/apt-packages.txt)")


@pytest.fixture(scope="module")
def deb() -> Path:
    _skip_without_tools()
    result = run(["make", "--no-print-directory", "deb"], cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    debs = sorted(DEB_DIR.glob("nvmemd_*_all.deb"))
    assert len(debs) == 1, debs
    deb_path = debs[0]
    deb_path.with_suffix(".lintian").write_text(result.stdout)
    return deb_path


@pytest.mark.integration
def test_lintian_clean(deb: Path) -> None:
    """No error and no warning; the remaining overrides each carry a comment."""
    report = deb.with_suffix(".lintian").read_text()
    tags = [line for line in report.splitlines() if re.match(r"^[EW]: ", line)]
    assert tags == [], "\n".join(tags)
    overrides = (REPO / "debian" / "nvmemd.lintian-overrides").read_text().splitlines()
    for i, line in enumerate(overrides):
        if line and not line.startswith("#"):
            assert i > 0 and overrides[i - 1].startswith("#"), f"override without comment: {line}"


@pytest.mark.integration
def test_package_metadata(deb: Path) -> None:
    fields = run(["dpkg-deb", "-f", str(deb), "Architecture", "Depends"]).stdout
    assert "Architecture: all" in fields
    for dep in ("python3-pyudev", "python3-dbus-fast", "python3-systemd", "python3-libfdt",
                "dbus-system-bus | dbus"):
        assert dep in fields, dep
    conffiles = run(["dpkg-deb", "--info", str(deb), "conffiles"]).stdout.split()
    assert conffiles == ["/etc/nvmemd/nvmemd.toml"]


@pytest.mark.integration
def test_package_contents(deb: Path) -> None:
    """What the package would install, from its data archive (nothing is installed here:
    the installed package is tested on a booted system, `make system-test`)."""
    listing = run(["dpkg-deb", "-c", str(deb)]).stdout
    paths = {line.split()[-1].removeprefix(".") for line in listing.splitlines()
             if line.startswith("-") or line.startswith("l")}
    # symlinks list "name -> target": take the name
    paths |= {line.split(" -> ")[0].split()[-1].removeprefix(".")
              for line in listing.splitlines() if " -> " in line}
    for path in INSTALLED_FILES:
        assert path in paths, f"{path} not in the package"
    modes = {line.split()[-1].removeprefix("."): line.split()[0]
             for line in listing.splitlines() if line.startswith("-")}
    for script in ("/usr/bin/nvmemd", "/usr/bin/nvmemd-query"):
        assert modes[script] == "-rwxr-xr-x", (script, modes[script])
    # the postinst enables the daemon (deb-systemd-helper), never the template
    postinst = run(["dpkg-deb", "--info", str(deb), "postinst"]).stdout
    assert "deb-systemd-helper" in postinst and "nvmemd.service" in postinst
    assert "nvmemd-wait@" not in postinst
