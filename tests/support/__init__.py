"""What tests/ and bench/ share: the real ssh client's command line, and a terminal
screen that answers as a terminal does. bench/ imports it as ``tests.support``."""
