"""nvmemd: NVMEM cells exactly as the Linux kernel defines them, from userspace."""

__version__ = "0.1.0"
