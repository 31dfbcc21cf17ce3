from latcli.cli.entry import run

run()
