"""What each `modelyard` subcommand does, one function per subcommand, grouped by what it
works on; cli.py only parses arguments. Heavy imports (torch, Lightning, MLflow) wait inside
the functions, so `--help` and mistakes answer at once."""
