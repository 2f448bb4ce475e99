"""TEST DOUBLE of the tau-bench v1 API -- this is NOT tau-bench.

The original tau-bench v1 package (`tau_bench`, GitHub sierra-research/tau-bench) is not on
PyPI and cannot be installed in this project's environment. This small stand-in package
reproduces v1's *public API* -- module paths, class and function names, signatures,
pydantic field names, return types and the exact keyword arguments of every
`litellm.completion(...)` call -- so that tau_exp's v1 adapter can be tested without the real
package. Put the folder that contains this package (tests/support/tau_bench_standin) on
sys.path to use it.

It is small on purpose and it is not the benchmark: the "retail" and "airline" domains hold a
few users/orders/reservations, a handful of tools and 3-4 hand-written tasks per split
(retail: train/test/dev, airline: test). Scores obtained with it mean nothing about tau-bench.
All code here was written for this double; only names, signatures and behaviour follow v1.

Which upstream (v1, main branch) file each module mirrors:
    tau_bench/__init__.py                     -> tau_bench/__init__.py (re-exports Env, Agent)
    tau_bench/types.py                        -> tau_bench/types.py
    tau_bench/run.py                          -> tau_bench/run.py (run, agent_factory, display_metrics)
    tau_bench/envs/__init__.py                -> tau_bench/envs/__init__.py (get_env)
    tau_bench/envs/base.py                    -> tau_bench/envs/base.py (Env, to_hashable, consistent_hash)
    tau_bench/envs/tool.py                    -> tau_bench/envs/tool.py (Tool)
    tau_bench/envs/user.py                    -> tau_bench/envs/user.py (user simulators, load_user)
    tau_bench/envs/retail/env.py              -> tau_bench/envs/retail/env.py (MockRetailDomainEnv)
    tau_bench/envs/retail/data.py             -> tau_bench/envs/retail/data/__init__.py (load_data)
    tau_bench/envs/retail/tools.py            -> tau_bench/envs/retail/tools/*.py (ALL_TOOLS; one module here)
    tau_bench/envs/retail/wiki.py, rules.py   -> same paths (WIKI, RULES)
    tau_bench/envs/retail/tasks_{train,test,dev}.py -> same paths (TASKS_TRAIN, TASKS_TEST, TASKS_DEV)
    tau_bench/envs/airline/...                -> same layout; tasks_test.py holds TASKS (test split only)
    tau_bench/agents/base.py                  -> tau_bench/agents/base.py (Agent)
    tau_bench/agents/tool_calling_agent.py    -> same path (ToolCallingAgent, message_to_action)
    tau_bench/agents/chat_react_agent.py      -> same path (ChatReActAgent)
    tau_bench/agents/few_shot_agent.py        -> same path (FewShotToolCallingAgent, message_to_action)

Like v1, the user simulators and agents do `from litellm import completion` at module level and
call that module-level name, so an adapter (or a test) can route the calls by replacing
`tau_bench.envs.user.completion`, `tau_bench.agents.tool_calling_agent.completion`,
`tau_bench.agents.chat_react_agent.completion` and `tau_bench.agents.few_shot_agent.completion`.

Known, deliberate difference from v1: when no task index is given, v1 draws
`random.randint(0, len(tasks))` (which can be out of range); this double draws a valid index.
"""

from tau_bench.envs.base import Env as Env
from tau_bench.agents.base import Agent as Agent
