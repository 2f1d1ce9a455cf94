"""Prove the Raspberry Pi path without a Pi: a real arm64 Debian userland under qemu-user.

64-bit Raspberry Pi OS is Debian bookworm for arm64. On an x86 Linux host (as root) the
steps are, one small module each, readable as documentation of what a Pi user does:

1. :mod:`.binfmt` - let the kernel run arm64 programs through ``qemu-aarch64-static``.
2. :mod:`.userland` - ``debootstrap`` bookworm arm64 with python3, cached by its inputs.
3. :mod:`.wheels` - ``pip download`` the aarch64 wheels (for offline installs).
4. :mod:`.chroot` - run commands in that userland with a clean environment.
5. :mod:`.check` - install the deploy bundle there exactly as ``INSTALL.txt`` says and run
   ``python -m edge_gru.predict``; the ``*_arm64`` stages compare its answers with x86.

Emulated timings say nothing about a Pi's speed and are never reported as such.
"""
