"""`python -m shipdeck`: the same entry point as the `shipdeck` console script."""

from shipdeck.tui.cli import main

if __name__ == "__main__":
    main()
