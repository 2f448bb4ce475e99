"""`python -m tau_exp.status`, where users type it: the tool is `tau_exp.tracking.status`."""

from tau_exp.tracking.status import main

if __name__ == "__main__":
    main()
