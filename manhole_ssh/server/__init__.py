"""The SSH server: listening sockets, accepting connections, and the per-connection
asyncssh server that admits and authenticates clients before a session starts."""
