"""``python -m attrib``: the command line."""

from attrib.cli import main

if __name__ == "__main__":
    main()
