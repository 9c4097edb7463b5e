"""Emulated Raspberry Pis for the tests (make test-pi): targets, root filesystems, wheels, chroot runs."""
