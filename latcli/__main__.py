from latcli.cli.app import run

run()
