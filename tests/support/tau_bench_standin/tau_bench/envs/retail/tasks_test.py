"""Retail test split of the test double (v1: tau_bench/envs/retail/tasks_test.py, TASKS_TEST)."""

from tau_bench.types import Action, Task

TASKS_TEST = [
    Task(
        user_id="ava_chen_1001",
        instruction="You are Ava Chen (ava.chen@example.com). Cancel your pending desk lamp order #W1000001; you no longer need it.",
        actions=[
            Action(name="find_user_id_by_email", kwargs={"email": "ava.chen@example.com"}),
            Action(name="get_order_details", kwargs={"order_id": "#W1000001"}),
            Action(name="cancel_pending_order", kwargs={"order_id": "#W1000001", "reason": "no longer needed"}),
        ],
        outputs=[],
    ),
    Task(
        user_id="ben_ortiz_2002",
        instruction="You are Ben Ortiz (ben.ortiz@example.com). Ask how much you paid for order #W2000002.",
        actions=[
            Action(name="find_user_id_by_email", kwargs={"email": "ben.ortiz@example.com"}),
            Action(name="get_order_details", kwargs={"order_id": "#W2000002"}),
        ],
        outputs=["1049"],
    ),
    Task(
        user_id="cara_diaz_3003",
        instruction="You are Cara Diaz (cara.diaz@example.com). You ordered a notebook by mistake; cancel that order.",
        actions=[
            Action(name="find_user_id_by_email", kwargs={"email": "cara.diaz@example.com"}),
            Action(name="get_user_details", kwargs={"user_id": "cara_diaz_3003"}),
            Action(name="get_order_details", kwargs={"order_id": "#W3000001"}),
            Action(name="cancel_pending_order", kwargs={"order_id": "#W3000001", "reason": "ordered by mistake"}),
        ],
        outputs=[],
    ),
    Task(
        user_id="ava_chen_1001",
        instruction="You are Ava Chen (ava.chen@example.com). You want to return the water bottle of order #W1000002; if that is not possible, ask for a human.",
        actions=[
            Action(name="find_user_id_by_email", kwargs={"email": "ava.chen@example.com"}),
            Action(name="get_order_details", kwargs={"order_id": "#W1000002"}),
            Action(name="transfer_to_human_agents", kwargs={"summary": "The user wants to return a delivered water bottle."}),
        ],
        outputs=[],
    ),
]
