"""`python -m crnn_cli ...` runs the CLI (used by torchrun, which needs a module to launch)."""

from crnn_cli.cli import main

if __name__ == "__main__":
    main()
