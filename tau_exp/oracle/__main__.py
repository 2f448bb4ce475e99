"""`python -m tau_exp.oracle`: the oracle model server (`server.py`)."""

from tau_exp.oracle.server import main

if __name__ == "__main__":
    main()
