"""`python -m tau_exp.report`, where users type it: the tool is `tau_exp.results.report`."""

from tau_exp.results.report import main

if __name__ == "__main__":
    main()
