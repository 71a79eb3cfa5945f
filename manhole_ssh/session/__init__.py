"""One SSH session channel and everything it runs: the terminal REPL, one command or a
script, the worker thread that runs the code, its streams, namespace and recording."""
