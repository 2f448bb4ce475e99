"""Retail train split of the test double (v1: tau_bench/envs/retail/tasks_train.py, TASKS_TRAIN)."""

from tau_bench.types import Action, Task

TASKS_TRAIN = [
    Task(
        user_id="ben_ortiz_2002",
        instruction="You are Ben Ortiz (ben.ortiz@example.com). You ordered headphones (#W2000001) by mistake; cancel them.",
        actions=[
            Action(name="find_user_id_by_email", kwargs={"email": "ben.ortiz@example.com"}),
            Action(name="get_order_details", kwargs={"order_id": "#W2000001"}),
            Action(name="cancel_pending_order", kwargs={"order_id": "#W2000001", "reason": "ordered by mistake"}),
        ],
        outputs=[],
    ),
    Task(
        user_id="cara_diaz_3003",
        instruction="You are Cara Diaz (cara.diaz@example.com). Ask for the status of your backpack order #W3000002.",
        actions=[
            Action(name="find_user_id_by_email", kwargs={"email": "cara.diaz@example.com"}),
            Action(name="get_order_details", kwargs={"order_id": "#W3000002"}),
        ],
        outputs=["processed"],
    ),
    Task(
        user_id="ava_chen_1001",
        instruction="You are Ava Chen (ava.chen@example.com). Ask for the balance of your gift card.",
        actions=[
            Action(name="find_user_id_by_email", kwargs={"email": "ava.chen@example.com"}),
            Action(name="get_user_details", kwargs={"user_id": "ava_chen_1001"}),
        ],
        outputs=["50"],
    ),
]
