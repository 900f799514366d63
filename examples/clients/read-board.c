/* The board's serial number and eth0's MAC address, through nvmemd, with sd-bus.
 *
 *   cc read-board.c $(pkg-config --cflags --libs libsystemd) -o read-board
 *   ./read-board [BUS-ADDRESS]     (default: the system bus)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-bus.h>

#define NVMEMD "org.nvmemd.Nvmem1"
#define ROOT "/org/nvmemd/Nvmem1"
#define MANAGER "org.nvmemd.Nvmem1.Manager"

/* Call a Manager method that answers a byte array (ay) and copy it to buf. */
static int read_bytes(sd_bus *bus, const char *method, uint8_t *buf, size_t *len,
                      const char *types, const char *a, const char *b) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const void *data;
        size_t size;
        int r;

        if (b)
                r = sd_bus_call_method(bus, NVMEMD, ROOT, MANAGER, method, &error, &reply,
                                       types, a, b);
        else
                r = sd_bus_call_method(bus, NVMEMD, ROOT, MANAGER, method, &error, &reply,
                                       types, a);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", method, error.message ? error.message : strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        r = sd_bus_message_read_array(reply, 'y', &data, &size);
        if (r >= 0) {
                *len = size < *len ? size : *len;
                memcpy(buf, data, *len);
        }
        sd_bus_message_unref(reply);
        return r;
}

int main(int argc, char **argv) {
        sd_bus *bus = NULL;
        uint8_t serial[256], mac[6];
        size_t serial_len = sizeof(serial), mac_len = sizeof(mac);
        int r;

        if (argc > 1) {
                r = sd_bus_new(&bus);
                if (r >= 0)
                        r = sd_bus_set_address(bus, argv[1]);
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, 1);
                if (r >= 0)
                        r = sd_bus_start(bus);
        } else
                r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "cannot connect to the bus: %s\n", strerror(-r));
                return 1;
        }
        if (read_bytes(bus, "ReadCellByName", serial, &serial_len, "s",
                       "board-eeprom1/serial-number", NULL) < 0 ||
            read_bytes(bus, "ReadNetdevCell", mac, &mac_len, "ss", "eth0", "mac-address") < 0 ||
            mac_len != 6) {
                sd_bus_unref(bus);
                return 1;
        }
        /* the EEPROM pads the text with NUL or 0xff (erased) bytes */
        while (serial_len > 0 && (serial[serial_len - 1] == 0 || serial[serial_len - 1] == 0xff))
                serial_len--;
        printf("serial %.*s\n", (int) serial_len, (const char *) serial);
        printf("eth0 %02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1], mac[2], mac[3], mac[4],
               mac[5]);
        sd_bus_unref(bus);
        return 0;
}
