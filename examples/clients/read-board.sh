#!/bin/sh
# The board's serial number and eth0's MAC address, through nvmemd, with busctl.
#   read-board.sh [BUS-ADDRESS]     (default: the system bus)
# busctl prints a byte array as "ay N b1 b2 ...": the values start at field 3.
set -eu
if [ $# -gt 0 ]; then bus="--address=$1"; else bus="--system"; fi
manager() {
	reply=$(busctl "$bus" call org.nvmemd.Nvmem1 /org/nvmemd/Nvmem1 \
		org.nvmemd.Nvmem1.Manager "$@")
	echo "$reply" | cut -d' ' -f3-
}
serial_bytes=$(manager ReadCellByName s board-eeprom1/serial-number)
mac_bytes=$(manager ReadNetdevCell ss eth0 mac-address)
serial=""
for byte in $serial_bytes; do
	# the EEPROM pads the text with NUL or 0xff (erased) bytes
	[ "$byte" -eq 0 ] || [ "$byte" -eq 255 ] && continue
	serial="$serial$(printf "\\$(printf %03o "$byte")")"
done
# shellcheck disable=SC2086  # one argument per byte
mac=$(printf '%02x:%02x:%02x:%02x:%02x:%02x' $mac_bytes)
echo "serial $serial"
echo "eth0 $mac"
