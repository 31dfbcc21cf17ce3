"""`latcli bench`: the load generator, its workers and its reports."""
