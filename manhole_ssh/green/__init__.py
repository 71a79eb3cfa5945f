"""The operating system's own threads and loop, whatever a green-thread library patched,
and what a session can see of a green host (its hub, its greenlets)."""
