#!/usr/bin/env bash
# Prepare everything the real-kernel recorder needs, idempotently, on a fresh
# Debian bookworm x86_64 machine:
#   - host tools (qemu-system-arm, dtc, the aarch64 cross compiler, cpio, xz);
#   - Debian's arm64 kernel (image + modules), its headers/kbuild, its source and
#     busybox-static:arm64, downloaded with `apt-get download` (never installed)
#     and unpacked with dpkg-deb -x into $OUT/root;
#   - out-of-tree builds (from Debian's linux-source of the same version) of the
#     modules Debian does not build: the CFI flash chain for qemu virt's pflash
#     (physmap, cfi_probe, cfi_util, gen_probe, cfi_cmdset_0001) and the nvmem
#     layouts/drivers (onie-tlv, sl28vpd, u-boot-env layout, nvmem_u-boot-env).
# Usage: prepare.sh [OUTDIR]   (default build/realkernel)
# KVER=6.12.117 selects the upstream version (default: newest 6.12 in the archive
# for which linux-source-6.12 has the same Debian version).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mkdir -p "${1:-build/realkernel}" && cd "${1:-build/realkernel}" && pwd)
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
export DEBIAN_FRONTEND=noninteractive

# ---- host packages --------------------------------------------------------------
HOST_PKGS="qemu-system-arm device-tree-compiler gcc-12-aarch64-linux-gnu binutils-aarch64-linux-gnu make cpio xz-utils kmod python3"
missing=""
for p in $HOST_PKGS; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
    NEED_UPDATE=1
fi
if [ -n "$missing" ] || [ -n "${NEED_UPDATE:-}" ] || [ ! -e "$OUT/.apt-updated" ]; then
    $SUDO apt-get update -qq
    touch "$OUT/.apt-updated"
fi
if [ -n "$missing" ]; then
    echo "prepare: apt-get install$missing"
    $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

# ---- kernel version -------------------------------------------------------------
SRCVER=$(apt-cache policy linux-source-6.12 | awk '/Candidate:/ {print $2}')
[ -n "$SRCVER" ] && [ "$SRCVER" != "(none)" ] || { echo "linux-source-6.12 not in apt lists" >&2; exit 1; }
KVER=${KVER:-${SRCVER%%-*}}          # e.g. 6.12.117
ABI="$KVER+deb12"                    # e.g. 6.12.117+deb12
KREL="$ABI-arm64"                    # uname -r
IMGVER=$(apt-cache policy "linux-image-$KREL-unsigned:arm64" | awk '/Candidate:/ {print $2}')
if [ "$IMGVER" != "$SRCVER" ]; then
    echo "prepare: linux-image-$KREL-unsigned:arm64 is '$IMGVER', linux-source-6.12 is '$SRCVER'" >&2
    exit 1
fi
echo "$KREL" > "$OUT/kernel-release"

# ---- download + unpack ------------------------------------------------------------
mkdir -p "$OUT/debs" "$OUT/root"
chmod 0777 "$OUT/debs" 2>/dev/null || true
PKGS="linux-image-$KREL-unsigned:arm64 linux-headers-$KREL:arm64 linux-headers-$ABI-common linux-kbuild-$ABI linux-source-6.12=$SRCVER busybox-static:arm64"
if [ ! -e "$OUT/.unpacked-$KREL" ]; then
    (cd "$OUT/debs" && apt-get download -q $PKGS)
    rm -rf "$OUT/root"; mkdir -p "$OUT/root"
    for d in "$OUT"/debs/*.deb; do
        case "$d" in
            *linux-image-*|*linux-headers-*|*linux-kbuild-*|*linux-source-*|*busybox-static*)
                case "$d" in *"$SRCVER"*|*busybox*) dpkg-deb -x "$d" "$OUT/root" ;; esac ;;
        esac
    done
    touch "$OUT/.unpacked-$KREL"
fi
ROOT="$OUT/root"
HDR="$ROOT/usr/src/linux-headers-$KREL"
# the headers' Makefile includes the -common one by absolute path: point it into $ROOT
sed -i "s#^include /usr/src/#include $ROOT/usr/src/#" "$HDR/Makefile"

# ---- qemu 10 (machine imx8mp-evk) from bookworm-backports, unpacked, not installed ----------
# PREPARE_QEMU10=no skips it (tools/systemtest only boots virt, and must not add apt sources).
if [ "${PREPARE_QEMU10:-yes}" != no ] && [ ! -x "$OUT/qemu10/usr/bin/qemu-system-aarch64" ]; then
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        echo 'deb http://deb.debian.org/debian bookworm-backports main' \
            | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
        $SUDO apt-get update -qq
    fi
    mkdir -p "$OUT/debs-qemu10"
    chmod 0777 "$OUT/debs-qemu10" 2>/dev/null || true
    rm -f "$OUT"/debs-qemu10/*.deb
    (cd "$OUT/debs-qemu10" && apt-get download -q qemu-system-arm/bookworm-backports)
    rm -rf "$OUT/qemu10"; mkdir -p "$OUT/qemu10"
    dpkg-deb -x "$OUT"/debs-qemu10/qemu-system-arm_*.deb "$OUT/qemu10"
fi
[ "${PREPARE_QEMU10:-yes}" = no ] || "$OUT/qemu10/usr/bin/qemu-system-aarch64" -M help | grep -q imx8mp-evk

# ---- out-of-tree modules --------------------------------------------------------------
OOT="$OUT/oot-$KREL"
if [ ! -e "$OOT/.built" ]; then
    rm -rf "$OOT" "$OUT/src"; mkdir -p "$OOT/mtd" "$OOT/nvmem/layouts" "$OUT/src"
    tar -xJf "$ROOT/usr/src/linux-source-6.12.tar.xz" -C "$OUT/src" \
        linux-source-6.12/drivers/mtd/chips linux-source-6.12/drivers/mtd/maps \
        linux-source-6.12/drivers/nvmem
    S="$OUT/src/linux-source-6.12/drivers"
    cp "$S"/mtd/chips/{cfi_probe,cfi_util,gen_probe,cfi_cmdset_0001,fwh_lock}.[ch] "$OOT/mtd/" 2>/dev/null || true
    cp "$S"/mtd/maps/physmap-*.[ch] "$OOT/mtd/"
    cp "$S"/nvmem/u-boot-env.c "$OOT/nvmem/"
    cp "$S"/nvmem/layouts/{onie-tlv,sl28vpd,u-boot-env}.[ch] "$OOT/nvmem/layouts/" 2>/dev/null || true
    cat > "$OOT/mtd/Kbuild" <<'EOF'
# CONFIG_MTD_CFI / _GEN_PROBE / _CFI_UTIL / _CFI_INTELEXT / _PHYSMAP(_OF) are off in Debian
ccflags-y += -DCONFIG_MTD_PHYSMAP_OF=1
obj-m += cfi_util.o gen_probe.o cfi_probe.o cfi_cmdset_0001.o physmap.o
physmap-y := physmap-core.o
EOF
    cat > "$OOT/nvmem/Kbuild" <<'EOF'
obj-m += layouts/ nvmem_u-boot-env.o
nvmem_u-boot-env-y := u-boot-env.o
EOF
    cat > "$OOT/nvmem/layouts/Kbuild" <<'EOF'
obj-m += onie-tlv.o sl28vpd.o u-boot-env.o
EOF
    for sub in mtd nvmem; do
        make -C "$HDR" M="$OOT/$sub" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- \
            KBUILD_MODPOST_WARN=1 CONFIG_DEBUG_INFO_BTF_MODULES= -j2 modules
    done
    touch "$OOT/.built"
fi
echo "prepare: kernel $KREL ready in $OUT"
