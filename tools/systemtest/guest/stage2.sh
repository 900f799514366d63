#!/bin/sh
# init= of the one-time image build boot: debootstrap's second stage (run inside the
# arm64 guest, since the host has no binfmt), then the image's fixed configuration.
# Prints SYSTEST-STAGE2-OK on the console on success; the host checks for it.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# debootstrap prints nothing while it unpacks and configures (most of the time): show its
# log on the console, so a slow or stuck build can be told apart
: > /debootstrap/debootstrap.log
tail -f /debootstrap/debootstrap.log > /dev/console &
tailpid=$!
/debootstrap/debootstrap --second-stage
rc=$?
kill $tailpid 2>/dev/null
# debootstrap unmounts /proc on exit
mount -t proc proc /proc 2>/dev/null
if [ $rc = 0 ]; then
    set -e
    echo systest > /etc/hostname
    printf '127.0.0.1\tlocalhost\n127.0.1.1\tsystest\n' > /etc/hosts
    printf '/dev/vda\t/\text4\tdefaults\t0\t1\n' > /etc/fstab
    passwd -d root
    # no network in the VM: nothing may wait for it
    systemctl mask systemd-networkd-wait-online.service
    # the hook that runs the test script passed in over 9p (see systest-hook)
    systemctl enable systest-hook.service
    # keep the journal on disk across the test's reboot (the disk is a qemu snapshot)
    mkdir -p /var/log/journal
    rm -f /etc/dpkg/dpkg.cfg.d/systest-unsafe-io
    apt-get clean
    rm -rf /var/lib/apt/lists/* /debootstrap
    echo SYSTEST-STAGE2-OK
else
    echo "SYSTEST-STAGE2-FAILED rc=$rc"
    tail -50 /debootstrap/debootstrap.log 2>/dev/null
fi
sync
echo 1 > /proc/sys/kernel/sysrq
echo o > /proc/sysrq-trigger
sleep 30
