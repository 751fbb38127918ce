"""One module per subcommand; see :mod:`multiflow_gm.cli.main`."""
