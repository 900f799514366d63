#!/bin/busybox sh
# /init of the system test's initramfs (busybox-static:arm64). Debian's arm64 kernel
# has ext4 and virtio_blk as modules, so this loads them (/modules.list, in dependency
# order), mounts the root disk (vda, ext4) and the kernel's modules disk (vdb, ext4, made
# by the host per kernel, so the cached root image is kernel-independent) on
# /usr/lib/modules, and switch_roots to init= from the command line (default /sbin/init).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

while read -r m; do
    [ -n "$m" ] && { insmod "/modules/$m" || echo "systest-initramfs: insmod $m failed"; }
done < /modules.list

init=/sbin/init
for arg in $(cat /proc/cmdline); do
    case "$arg" in init=*) init=${arg#init=} ;; esac
done

# virtio-blk probes asynchronously: wait (max 10 s) for both disks
n=0
while { [ ! -b /dev/vda ] || [ ! -b /dev/vdb ]; } && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
mkdir -p /newroot
mount -t ext4 -o rw /dev/vda /newroot || { echo "systest-initramfs: cannot mount /dev/vda"; poweroff -f; }
mount -t ext4 -o ro /dev/vdb /newroot/usr/lib/modules \
    || echo "systest-initramfs: cannot mount the modules disk /dev/vdb"
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot "$init"
