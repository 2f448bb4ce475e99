"""tau_exp: Hydra-configured tau-bench experiments with a hardened run loop.

Importing the package (or any module of it) changes nothing in the host process: the entry
points set up what a tau_exp process needs (`tau_exp.runtime`).
"""
