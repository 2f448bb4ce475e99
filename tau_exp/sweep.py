"""`python -m tau_exp.sweep`, where users type it: the tool is `tau_exp.tracking.sweep`."""

from tau_exp.tracking.sweep import main

if __name__ == "__main__":
    main()
