"""One module per subcommand; see tunesmith.cli.COMMANDS."""
