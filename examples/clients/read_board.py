#!/usr/bin/env python3
"""The board's serial number and eth0's MAC address, through nvmemd, with nvmemd.client.

    python3 read_board.py [BUS-ADDRESS]     (default: the system bus)

The serial number lives in a root-only EEPROM: run as root, as a member of
nvmemd.toml's [access] groups, or with polkit's org.nvmemd.Nvmem1.read-protected.
"""

import sys

from nvmemd.client import Client

with Client(sys.argv[1] if len(sys.argv) > 1 else None) as nvmem:
    serial = nvmem.read_cell("board-eeprom1/serial-number")
    mac = nvmem.read_netdev_cell("eth0", "mac-address")  # what eth0's driver gets
print("serial", serial.rstrip(b"\0\xff").decode())
print("eth0", mac.hex(":"))
