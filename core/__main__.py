from core.cli import main

raise SystemExit(main(prog="python -m core"))
