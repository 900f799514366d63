#!/bin/sh
# Guest entry point (run by the image's systest-hook.service from the 9p share): the checks
# run with Debian's own /usr/bin/python3, on the console and into out/. checks.py reboots
# (once, for the boot-time checks) or powers off itself; this is only the safety net.
cd /run/systest || exit 1
/usr/bin/python3 -X faulthandler in/checks.py 2>&1 | tee -a out/checks.log > /dev/console
echo "systest: checks.py ended unexpectedly, powering off" > /dev/console
journalctl --no-pager -o short-monotonic > out/journal.txt 2>&1
sync
systemctl poweroff
