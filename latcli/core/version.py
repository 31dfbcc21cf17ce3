"""latcli's version, in a module of its own so the layers below the package root (the
transports' User-Agent) can read it without importing the root and what it exposes."""

__version__ = "0.1.0"
