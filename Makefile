# nvmemd — `make demo` runs the bundled demo board, `make test` the whole suite.
# Both install what they need on a fresh Debian bookworm machine (apt + a venv)
# and are idempotent: a second run installs nothing.

PYTHON    ?= python3
VENV      := .venv
VPY       := $(VENV)/bin/python
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages the build, the tests and the demo use: one list, .ci/apt-packages.txt.
APT_PACKAGES := $(shell sed -e 's/\#.*//' .ci/apt-packages.txt)

.PHONY: all setup demo test lint bench clean interfaces

all: test

.stamp-apt: .ci/apt-packages.txt
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "apt: installing $$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@touch $@

$(VENV)/.stamp: pyproject.toml .stamp-apt
	[ -x $(VPY) ] || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[systemd,fdt,dev]'
	@touch $@

setup: .stamp-apt $(VENV)/.stamp

demo: setup
	$(VPY) examples/demo-board/demo.py

test: setup
	$(VPY) -m pytest -q tests; rc=$$?; [ $$rc -eq 5 ] && { echo "no tests collected"; exit 1; }; exit $$rc

# ruff over everything that is Python; mypy --strict over the package (pyproject.toml).
lint: setup
	$(VENV)/bin/ruff check nvmemd tests tools benchmarks examples
	$(VENV)/bin/mypy

bench: setup
	$(VPY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .stamp-apt build *.egg-info examples/demo-board/sysroot

# The D-Bus interface XML (/usr/share/dbus-1/interfaces/) in build/interfaces, and the
# generated part of org.nvmemd.Nvmem1(5), from the interface definitions (nvmemd.dbus.xmlgen).
interfaces: setup
	$(VPY) -m nvmemd.dbus.xmlgen --xml build/interfaces --man man/org.nvmemd.Nvmem1.5.scd

# Debian package (issue 6). Built from a copy of the tree (tracked files plus
# untracked, non-ignored ones) in build/deb-src, because dpkg-buildpackage
# writes its results to the parent directory; they end up in build/deb/.
# `make deb` needs the build dependencies of debian/control (.ci/apt-packages.txt).
DEB_SRC := build/deb-src/nvmemd
DEB_OUT := build/deb
# Debian's own toolchain and /usr/bin/python3, not a pyenv or venv python first on PATH.
DEB_PATH := /usr/sbin:/usr/bin:/sbin:/bin

.PHONY: deb
deb: .stamp-apt
	rm -rf build/deb-src $(DEB_OUT)
	mkdir -p $(DEB_SRC) $(DEB_OUT)
	git ls-files -z --cached --others --exclude-standard \
		| tar --null --no-recursion --ignore-failed-read -T - -cf - 2>/dev/null \
		| tar -C $(DEB_SRC) -xf -
	cd $(DEB_SRC) && env PATH=$(DEB_PATH) dpkg-buildpackage -us -uc -b > ../build.log 2>&1 \
		|| { tail -40 ../build.log; exit 1; }
	mv build/deb-src/*.deb build/deb-src/*.changes build/deb-src/*.buildinfo $(DEB_OUT)/
	env PATH=$(DEB_PATH) lintian --info --display-info --pedantic --fail-on error,warning $(DEB_OUT)/*.changes
	@ls -l $(DEB_OUT)/*.deb

# Real-kernel fixtures (issues 5, 15): boot Debian's arm64 Linux 6.12 (bookworm-security) and
# 7.2 (sid) under qemu (TCG) for every case in tests/fixtures/realkernel/ and rewrite its
# sysroot.tar.gz + kernel-cells.json (6.12) and sysroot-7.2.tar.gz + kernel-cells-7.2.json.
# Installs its own host tools (qemu, dtc, aarch64 gcc) and downloads the kernel packages
# through a private apt state (tools/lib/private-apt.sh, build/apt/; the host's /etc/apt is
# never changed) into build/realkernel/<series>/. Slow (10-95 s per case and kernel after a
# ~2 min set-up per kernel); not part of `make test`.
# `make record-fixtures CASES="rmem-bits mtd-partitions" KERNELS=7.2` records a subset.
# Needs only the system python3 (no venv): tools/realkernel/prepare.sh installs the rest.
.PHONY: record-fixtures
record-fixtures:
	$(PYTHON) tools/realkernel/record.py $(if $(KERNELS),--kernels $(KERNELS)) $(CASES)

# System test (issue 14): the .deb on a real booted Debian bookworm arm64 system under qemu
# (TCG) with Debian's 6.12 kernel and a board DT with NVMEM (tools/systemtest/). Builds its
# image once into ~/.cache/nvmemd-systemtest (about 15 min), then a few minutes per run.
# `make system-test CHECKS=hotplug` runs the checks whose names start with "hotplug".
# Results (PASS/FAIL lines, journal, console) land in build/systemtest/results/.
SYSTEMTEST_KERNEL ?= 6.12
.PHONY: system-test
system-test: setup deb
	$(PYTHON) tools/systemtest/run.py --kernel $(SYSTEMTEST_KERNEL) --checks "$(CHECKS)" \
		--deb $$(ls build/deb/nvmemd_*_all.deb)
