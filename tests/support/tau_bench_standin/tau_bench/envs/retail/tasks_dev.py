"""Retail dev split of the test double (v1: tau_bench/envs/retail/tasks_dev.py, TASKS_DEV)."""

from tau_bench.types import Action, Task

TASKS_DEV = [
    Task(
        user_id="ava_chen_1001",
        instruction="You are Ava Chen (ava.chen@example.com). You ordered the desk lamp (#W1000001) by mistake; cancel it.",
        actions=[
            Action(name="find_user_id_by_email", kwargs={"email": "ava.chen@example.com"}),
            Action(name="cancel_pending_order", kwargs={"order_id": "#W1000001", "reason": "ordered by mistake"}),
        ],
        outputs=[],
    ),
    Task(
        user_id="ben_ortiz_2002",
        instruction="You are Ben Ortiz (ben.ortiz@example.com). You insist on talking to a human about your espresso machine.",
        actions=[
            Action(name="find_user_id_by_email", kwargs={"email": "ben.ortiz@example.com"}),
            Action(name="transfer_to_human_agents", kwargs={"summary": "The user asks for a human agent about order #W2000002."}),
        ],
        outputs=[],
    ),
    Task(
        user_id="cara_diaz_3003",
        instruction="You are Cara Diaz (cara.diaz@example.com). Ask how much your two orders cost in total.",
        actions=[
            Action(name="find_user_id_by_email", kwargs={"email": "cara.diaz@example.com"}),
            Action(name="get_user_details", kwargs={"user_id": "cara_diaz_3003"}),
            Action(name="get_order_details", kwargs={"order_id": "#W3000001"}),
            Action(name="get_order_details", kwargs={"order_id": "#W3000002"}),
        ],
        outputs=["72.75"],
    ),
]
