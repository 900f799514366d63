#!/bin/busybox sh
# /init of the recorder's initramfs (busybox-static:arm64). It loads the modules
# listed in /modules.list, lets the devices settle, runs /pre-capture.sh if any,
# copies the nvmem-related sysfs state into /out (files and the kernel's own
# relative symlinks, WITHOUT the cells/ directories), writes the kernel's cells
# listing to /out/kernel-cells.tsv, and prints /out as base64 of a gzipped tar
# between markers on the console. Then it powers off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo 1 > /proc/sys/kernel/printk 2>/dev/null

if [ -f /modules.list ]; then
    while read -r m; do
        [ -n "$m" ] || continue
        insmod "/modules/$m" || echo "RECORDER: insmod $m failed"
    done < /modules.list
fi

# Settle: wait until the set of nvmem devices has not changed for 1 s (max 10 s)
prev=""; same=0; n=0
while [ $n -lt 40 ]; do
    cur=$(ls /sys/bus/nvmem/devices 2>/dev/null | tr '\n' ' ')
    if [ "$cur" = "$prev" ]; then same=$((same + 1)); else same=0; fi
    [ $same -ge 4 ] && break
    prev=$cur; n=$((n + 1)); sleep 0.25
done

[ -f /pre-capture.sh ] && . /pre-capture.sh

O=/out
mkdir -p $O
copy_file() {  # absolute path of a readable regular file
    [ -f "$1" ] || return 0
    mkdir -p "$O$(dirname "$1")"
    if cat "$1" > "$O$1" 2>/dev/null; then
        echo "$(stat -c %a "$1") $1" >> $O/modes.txt
    else
        rm -f "$O$1"
    fi
}
copy_link() {  # absolute path of a symlink: copied as is (sysfs links are relative)
    [ -L "$1" ] || return 0
    mkdir -p "$O$(dirname "$1")"
    ln -sfn "$(readlink "$1")" "$O$1"
}
copy_dir_attrs() {  # every regular file of one sysfs directory (no recursion)
    for f in "$1"/*; do
        [ -f "$f" ] && [ ! -L "$f" ] && copy_file "$f"
    done
}

: > $O/kernel-cells.tsv
for dev in /sys/bus/nvmem/devices/*; do
    [ -e "$dev" ] || continue
    name=$(basename "$dev")
    copy_link "$dev"
    real=$(readlink -f "$dev")
    for f in nvmem type force_ro uevent; do copy_file "$real/$f"; done
    for l in of_node subsystem driver; do copy_link "$real/$l"; done
    # nvmem-layout child devices (bus nvmem-layout): links and uevent only
    for c in "$real"/*; do
        if [ -d "$c" ] && [ ! -L "$c" ] && [ -L "$c/subsystem" ]; then
            copy_file "$c/uevent"
            for l in of_node subsystem driver; do copy_link "$c/$l"; done
        fi
    done
    # ancestors up to /sys/devices
    p=$(dirname "$real")
    while [ "$p" != /sys/devices ] && [ "$p" != / ]; do
        for f in uevent name modalias; do copy_file "$p/$f"; done
        for l in of_node subsystem driver; do copy_link "$p/$l"; done
        case "$(readlink "$p/subsystem" 2>/dev/null)" in
            */class/mtd) copy_dir_attrs "$p" ;;
        esac
        p=$(dirname "$p")
    done
    # the kernel's answer
    if [ -d "$real/cells" ]; then
        for c in "$real"/cells/*; do
            [ -e "$c" ] || continue
            f=$(basename "$c")
            mode=$(stat -c %a "$c")
            size=$(stat -c %s "$c")
            if cat "$c" > /tmp/cell 2>/tmp/cellerr; then
                val=$(od -An -v -tx1 /tmp/cell | tr -d ' \n')
                printf '%s\t%s\t%s\t%s\tOK\t%s\n' "$name" "$f" "$mode" "$size" "$val" >> $O/kernel-cells.tsv
            else
                printf '%s\t%s\t%s\t%s\tERR\t%s\n' "$name" "$f" "$mode" "$size" "$(cat /tmp/cellerr)" >> $O/kernel-cells.tsv
            fi
        done
    else
        printf '%s\t-\n' "$name" >> $O/kernel-cells.tsv
    fi
done
for l in /sys/class/mtd/*; do copy_link "$l"; done
for l in /sys/bus/nvmem-layout/devices/*; do copy_link "$l"; done
ls /sys/bus/nvmem-layout/drivers > $O/layout-drivers.txt 2>/dev/null

mkdir -p $O/sys/firmware/devicetree
cp -a /sys/firmware/devicetree/base $O/sys/firmware/devicetree/base
cp /sys/firmware/fdt $O/sys/firmware/fdt
mkdir -p $O/proc/sys/kernel
cat /proc/sys/kernel/osrelease > $O/proc/sys/kernel/osrelease
uname -r > $O/uname-r.txt
dmesg > $O/dmesg.txt

echo "===RECORDER-BEGIN==="
tar -C $O -cf - . | gzip -9 | base64
echo "===RECORDER-END==="
sync
poweroff -f
