"""Demo agents and the fleet launcher behind ``latcli demo``."""
