"""`python -m tau_exp.examples`, where users type it: the tool is `tau_exp.agents.examples`."""

from tau_exp.agents.examples import main

if __name__ == "__main__":
    main()
