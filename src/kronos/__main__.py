"""``python -m kronos``: the ``kronos`` command."""

from kronos.cli import main

if __name__ == "__main__":
    main(prog="kronos")
