"""Airline test split of the test double (v1: tau_bench/envs/airline/tasks_test.py, TASKS)."""

from tau_bench.types import Action, Task

TASKS = [
    Task(
        user_id="omar_khan_1001",
        instruction="You are omar_khan_1001. Cancel your New York to Seattle trip (you do not remember the reservation id).",
        actions=[
            Action(name="get_user_details", kwargs={"user_id": "omar_khan_1001"}),
            Action(name="get_reservation_details", kwargs={"reservation_id": "ABC123"}),
            Action(name="cancel_reservation", kwargs={"reservation_id": "ABC123"}),
        ],
        outputs=[],
    ),
    Task(
        user_id="lena_park_2002",
        instruction="You are lena_park_2002. Add two checked bags (one of them non-free) to reservation QWE456, paid with your gift card.",
        actions=[
            Action(name="get_reservation_details", kwargs={"reservation_id": "QWE456"}),
            Action(
                name="update_reservation_baggages",
                kwargs={"reservation_id": "QWE456", "total_baggages": 2, "nonfree_baggages": 1, "payment_id": "gift_card_7777"},
            ),
        ],
        outputs=[],
    ),
    Task(
        user_id="omar_khan_1001",
        instruction="You are omar_khan_1001. Ask how much you paid for reservation XYZ789.",
        actions=[Action(name="get_reservation_details", kwargs={"reservation_id": "XYZ789"})],
        outputs=["350"],
    ),
    Task(
        user_id="lena_park_2002",
        instruction="You are lena_park_2002. You want to fly to Miami instead of Chicago on reservation QWE456; if that cannot be done, ask for a human.",
        actions=[
            Action(name="get_reservation_details", kwargs={"reservation_id": "QWE456"}),
            Action(name="transfer_to_human_agents", kwargs={"summary": "The user wants to change the destination of QWE456."}),
        ],
        outputs=[],
    ),
]
