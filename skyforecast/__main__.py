"""`python -m skyforecast ...` (and `torchrun -m skyforecast train ...`) run the command line."""

from .cli import main

main()
