from tau_exp.oracle.server import main

main()
