#!/usr/bin/env bash
# Prepare everything the real-kernel recorder needs for one kernel series, idempotently,
# on a fresh Debian bookworm x86_64 machine:
#   - host tools (qemu-system-arm, dtc, the aarch64 cross compiler, cpio, xz) from the
#     host's own apt sources;
#   - Debian's arm64 kernel (image + modules), its headers/kbuild, its source and
#     busybox-static:arm64, downloaded with `apt-get download` through a PRIVATE apt
#     configuration (tools/lib/private-apt.sh: sources, lists and cache under
#     build/apt/, the host's /etc/apt and /var/lib/apt untouched, no foreign
#     architecture added to dpkg), never installed, unpacked with dpkg-deb -x;
#       6.12: bookworm-security, linux-image-$KREL-unsigned (image, modules, DTBs);
#       7.2:  sid, linux-binary-$KREL (image), linux-modules-$KREL, linux-base-$KREL
#             (config, DTBs);
#   - qemu 10 (qemu-system-arm from bookworm-backports, same private apt), unpacked, for
#     the imx8mp-evk machine;
#   - out-of-tree builds (from Debian's linux-source of the same version) of the modules
#     Debian does not build: the CFI flash chain for qemu virt's pflash (physmap, cfi_probe,
#     cfi_util, gen_probe, cfi_cmdset_0001), the nvmem layouts/drivers (onie-tlv, sl28vpd,
#     u-boot-env layout, nvmem_u-boot-env) and nvmem_brcm_nvram.
# Usage: prepare.sh [BUILD [SERIES]]   (default build/realkernel 6.12) -> BUILD/SERIES/
# KVER selects the upstream version (defaults: 6.12.117, the version the 6.12 fixtures
# were first recorded with, 7.2.13).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PAPT="$HERE/../lib/private-apt.sh"
BUILD=$(mkdir -p "${1:-build/realkernel}" && cd "${1:-build/realkernel}" && pwd)
SERIES=${2:-6.12}
OUT="$BUILD/$SERIES"
mkdir -p "$OUT"
APTDIR="$BUILD/../apt"
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
export DEBIAN_FRONTEND=noninteractive

# ---- host packages (the host's own sources) ------------------------------------------
HOST_PKGS="qemu-system-arm device-tree-compiler gcc-12-aarch64-linux-gnu binutils-aarch64-linux-gnu gcc make cpio xz-utils kmod python3 bison flex libelf-dev"
missing=""
for p in $HOST_PKGS; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "prepare: apt-get install$missing"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

bookworm() { "$PAPT" "$APTDIR/bookworm" "bookworm bookworm-security bookworm-backports" "amd64 arm64" "$@"; }
sid() { "$PAPT" "$APTDIR/sid" "sid" "amd64 arm64" "$@"; }

# ---- kernel version -------------------------------------------------------------
case "$SERIES" in
    6.12) KVER=${KVER:-6.12.117}; ABI="$KVER+deb12"; APT=bookworm
          IMAGE_PKGS="linux-image-$ABI-arm64-unsigned:arm64" ;;
    7.2)  KVER=${KVER:-7.2.13};   ABI="$KVER+deb14"; APT=sid
          IMAGE_PKGS="linux-binary-$ABI-arm64:arm64 linux-modules-$ABI-arm64:arm64 linux-base-$ABI-arm64:arm64" ;;
    *) echo "prepare: unknown series $SERIES (6.12 or 7.2)" >&2; exit 2 ;;
esac
KREL="$ABI-arm64"                    # uname -r
# linux-source-X.Y of the same upstream version (several may be in the archive)
SRCVER=$($APT apt-cache madison "linux-source-$SERIES" | awk -v v="$KVER" '$3 ~ ("^" v "-") {print $3; exit}')
[ -n "$SRCVER" ] || { echo "prepare: linux-source-$SERIES $KVER not in the archive" >&2; exit 1; }
echo "$KREL" > "$OUT/kernel-release"

# ---- download + unpack ------------------------------------------------------------
mkdir -p "$OUT/debs"
chmod 0777 "$OUT/debs" 2>/dev/null || true
PKGS="$IMAGE_PKGS linux-headers-$KREL:arm64 linux-headers-$ABI-common linux-kbuild-$ABI linux-source-$SERIES=$SRCVER"
if [ ! -e "$OUT/.unpacked-$KREL" ]; then
    (cd "$OUT/debs" && rm -f ./*.deb && $APT apt-get download -q $PKGS && bookworm apt-get download -q busybox-static:arm64)
    rm -rf "$OUT/root"; mkdir -p "$OUT/root"
    for d in "$OUT"/debs/*.deb; do dpkg-deb -x "$d" "$OUT/root"; done
    touch "$OUT/.unpacked-$KREL"
fi
ROOT="$OUT/root"
HDR="$ROOT/usr/src/linux-headers-$KREL"
# the headers' Makefile includes the -common one by absolute path: point it into $ROOT
# (and 7.2's names its own directory, KBUILD_OUTPUT=/usr/src/...)
sed -i -e "s#^include /usr/src/#include $ROOT/usr/src/#" \
    -e "s#^KBUILD_OUTPUT=/usr/src/#KBUILD_OUTPUT=$ROOT/usr/src/#" "$HDR/Makefile"
# paths the recorder needs, whatever the packaging (6.12: /boot, /lib/modules; 7.2: /usr/lib)
{
    for p in "boot/vmlinuz-$KREL" "usr/lib/modules/$KREL/vmlinuz"; do
        [ -e "$ROOT/$p" ] && { echo "vmlinuz=$p"; break; }
    done
    for p in "lib/modules/$KREL" "usr/lib/modules/$KREL"; do
        [ -d "$ROOT/$p/kernel" ] && { echo "moddir=$p"; break; }
    done
    for p in "usr/lib/linux-image-$KREL"; do
        [ -d "$ROOT/$p" ] && { echo "dtbs=$p"; break; }
    done
} > "$OUT/paths"
grep -q '^vmlinuz=' "$OUT/paths" && grep -q '^moddir=' "$OUT/paths" && grep -q '^dtbs=' "$OUT/paths" \
    || { echo "prepare: kernel files not found under $ROOT" >&2; cat "$OUT/paths" >&2; exit 1; }

# ---- qemu 10 (machine imx8mp-evk) from bookworm-backports, unpacked, not installed ----------
Q10="$BUILD/qemu10"
# PREPARE_QEMU10=no skips it (tools/systemtest boots only virt).
if [ "${PREPARE_QEMU10:-yes}" != no ] && [ ! -x "$Q10/usr/bin/qemu-system-aarch64" ]; then
    mkdir -p "$BUILD/debs-qemu10"
    chmod 0777 "$BUILD/debs-qemu10" 2>/dev/null || true
    rm -f "$BUILD"/debs-qemu10/*.deb
    (cd "$BUILD/debs-qemu10" && bookworm apt-get download -q qemu-system-arm/bookworm-backports)
    rm -rf "$Q10"; mkdir -p "$Q10"
    dpkg-deb -x "$BUILD"/debs-qemu10/qemu-system-arm_*.deb "$Q10"
fi
[ "${PREPARE_QEMU10:-yes}" = no ] || "$Q10/usr/bin/qemu-system-aarch64" -M help | grep -q imx8mp-evk

# ---- out-of-tree modules --------------------------------------------------------------
OOT="$OUT/oot-$KREL"
SRC="$OUT/src/linux-source-$SERIES"
MAKEARGS=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- CC=aarch64-linux-gnu-gcc-12 KBUILD_MODPOST_WARN=1
          CONFIG_DEBUG_INFO_BTF_MODULES=)
if [ "$SERIES" != 6.12 ]; then
    # Debian builds 7.2 with gcc-16; bookworm's gcc-12 works against its headers when
    # told: no -fmin-function-alignment (gcc 14+), no warnings about newer attributes, and
    # no -fpatchable-function-entry (arm64 CALL_OPS ftrace patches 12 bytes before each
    # function; our modules need no tracing).
    MAKEARGS+=(CONFIG_CC_HAS_MIN_FUNCTION_ALIGNMENT= KCFLAGS=-Wno-attributes CC_FLAGS_FTRACE=)
fi
if [ ! -e "$OOT/.built" ]; then
    rm -rf "$OOT" "$OUT/src"; mkdir -p "$OOT/mtd" "$OOT/nvmem/layouts" "$OUT/src"
    tar -xJf "$ROOT/usr/src/linux-source-$SERIES.tar.xz" -C "$OUT/src" \
        "linux-source-$SERIES/drivers/mtd" "linux-source-$SERIES/drivers/nvmem" \
        "linux-source-$SERIES/drivers/rtc" "linux-source-$SERIES/drivers/misc/eeprom" \
        "linux-source-$SERIES/drivers/of" "linux-source-$SERIES/scripts/mod" \
        "linux-source-$SERIES/include"
    if [ "$SERIES" != 6.12 ]; then
        # sid's modpost (scripts/mod/modpost.real-lsb-64 behind Debian's wrapper) needs
        # glibc 2.38: rebuild it from the same source with the host compiler. Its inputs
        # are generated as scripts/mod/Makefile does: elfconfig.h from an arm64 object
        # (mk_elfconfig), devicetable-offsets.h from devicetable-offsets.c compiled for
        # arm64 against the headers (the "offsets" sed of scripts/Kbuild.include).
        tar -xJf "$ROOT/usr/src/linux-source-$SERIES.tar.xz" -C "$OUT/src" \
            "linux-source-$SERIES/scripts/include"
        CMN="$ROOT/usr/src/linux-headers-$ABI-common"
        ( cd "$SRC/scripts/mod" &&
          aarch64-linux-gnu-gcc-12 -c empty.c -o empty.o &&
          gcc -O2 -o mk_elfconfig mk_elfconfig.c &&
          ./mk_elfconfig < empty.o > elfconfig.h &&
          aarch64-linux-gnu-gcc-12 -S -o devicetable-offsets.s -nostdinc \
            -I"$CMN/arch/arm64/include" -I"$HDR/arch/arm64/include/generated" \
            -I"$CMN/include" -I"$HDR/include" -I"$CMN/arch/arm64/include/uapi" \
            -I"$HDR/arch/arm64/include/generated/uapi" -I"$CMN/include/uapi" \
            -I"$HDR/include/generated/uapi" -include "$CMN/include/linux/compiler-version.h" \
            -include "$CMN/include/linux/kconfig.h" -include "$CMN/include/linux/compiler_types.h" \
            -D__KERNEL__ -Wno-attributes -DKBUILD_MODNAME='"x"' -DKBUILD_BASENAME='"x"' \
            devicetable-offsets.c &&
          sed -ne 's:^[[:space:]]*\.ascii[[:space:]]*"\(.*\)".*:\1:; /^->/{s:->#\(.*\):/* \1 */:; s:^->\([^ ]*\) [\$#]*\([^ ]*\) \(.*\):#define \1 \2 /* \3 */:; s:->::; p;}' \
            devicetable-offsets.s > devicetable-offsets.h &&
          gcc -O2 -I. -I../include -o "$ROOT/usr/lib/linux-kbuild-$ABI/scripts/mod/modpost.real-lsb-64" \
            modpost.c file2alias.c sumversion.c symsearch.c )
    fi
    S="$SRC/drivers"
    cp "$S"/mtd/chips/{cfi_probe,cfi_util,gen_probe,cfi_cmdset_0001,fwh_lock}.[ch] "$OOT/mtd/" 2>/dev/null || true
    cp "$S"/mtd/maps/physmap-*.[ch] "$OOT/mtd/"
    cp "$S"/nvmem/u-boot-env.c "$S"/nvmem/brcm_nvram.c "$OOT/nvmem/"
    cp "$S"/nvmem/layouts/{onie-tlv,sl28vpd,u-boot-env}.[ch] "$OOT/nvmem/layouts/" 2>/dev/null || true
    cat > "$OOT/mtd/Kbuild" <<'KB'
# CONFIG_MTD_CFI / _GEN_PROBE / _CFI_UTIL / _CFI_INTELEXT / _PHYSMAP(_OF) are off in Debian
ccflags-y += -DCONFIG_MTD_PHYSMAP_OF=1
obj-m += cfi_util.o gen_probe.o cfi_probe.o cfi_cmdset_0001.o physmap.o
physmap-y := physmap-core.o
KB
    cat > "$OOT/nvmem/Kbuild" <<'KB'
# CONFIG_NVMEM_U_BOOT_ENV, CONFIG_NVMEM_BRCM_NVRAM are off in Debian
obj-m += layouts/ nvmem_u-boot-env.o nvmem_brcm_nvram.o
nvmem_u-boot-env-y := u-boot-env.o
nvmem_brcm_nvram-y := brcm_nvram.o
KB
    cat > "$OOT/nvmem/layouts/Kbuild" <<'KB'
obj-m += onie-tlv.o sl28vpd.o u-boot-env.o
KB
    for sub in mtd nvmem; do
        make -C "$HDR" M="$OOT/$sub" "${MAKEARGS[@]}" -j2 modules
    done
    touch "$OOT/.built"
fi
echo "prepare: kernel $KREL ready in $OUT"
