"""``nvmemd-query``: the command-line front end (direct sysfs or the daemon)."""
