"""One module per command group; each exposes add_parser(subparsers) and sets args.func."""
