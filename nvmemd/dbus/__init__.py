"""The D-Bus side of nvmemd: names, object paths, the service, its client."""
