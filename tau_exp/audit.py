"""`python -m tau_exp.audit`, where users type it: the tool is `tau_exp.results.audit`."""

from tau_exp.results.audit import main

if __name__ == "__main__":
    main()
