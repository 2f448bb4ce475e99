"""`python -m tau_exp.compare`, where users type it: the tool is `tau_exp.results.compare`."""

from tau_exp.results.compare import main

if __name__ == "__main__":
    main()
