"""Tools of the tiny airline domain (v1: one module per tool under tau_bench/envs/airline/tools/)."""

import json
from typing import Any, Dict

from tau_bench.envs.tool import Tool, _function_info

_RESERVATION_ID = {"type": "string", "description": "The reservation id, such as 'ABC123'."}


class GetUserDetails(Tool):
    @staticmethod
    def invoke(data: Dict[str, Any], user_id: str) -> str:
        user = data["users"].get(user_id)
        return json.dumps(user) if user is not None else "Error: user not found"

    @staticmethod
    def get_info() -> Dict[str, Any]:
        return _function_info(
            "get_user_details",
            "Get a user's profile: name, payment methods and reservation ids.",
            {"user_id": {"type": "string", "description": "The user id, such as 'omar_khan_1001'."}},
            ["user_id"],
        )


class GetReservationDetails(Tool):
    @staticmethod
    def invoke(data: Dict[str, Any], reservation_id: str) -> str:
        reservation = data["reservations"].get(reservation_id)
        return json.dumps(reservation) if reservation is not None else "Error: reservation not found"

    @staticmethod
    def get_info() -> Dict[str, Any]:
        return _function_info(
            "get_reservation_details", "Get the details of a reservation.",
            {"reservation_id": _RESERVATION_ID}, ["reservation_id"],
        )


class CancelReservation(Tool):
    @staticmethod
    def invoke(data: Dict[str, Any], reservation_id: str) -> str:
        reservation = data["reservations"].get(reservation_id)
        if reservation is None:
            return "Error: reservation not found"
        refunds = [{"payment_id": p["payment_id"], "amount": -p["amount"]} for p in reservation["payment_history"]]
        reservation["payment_history"].extend(refunds)
        reservation["status"] = "cancelled"
        return json.dumps(reservation)

    @staticmethod
    def get_info() -> Dict[str, Any]:
        return _function_info(
            "cancel_reservation", "Cancel the whole reservation.", {"reservation_id": _RESERVATION_ID}, ["reservation_id"]
        )


class UpdateReservationBaggages(Tool):
    @staticmethod
    def invoke(data: Dict[str, Any], reservation_id: str, total_baggages: int, nonfree_baggages: int, payment_id: str) -> str:
        reservation = data["reservations"].get(reservation_id)
        if reservation is None:
            return "Error: reservation not found"
        method = data["users"][reservation["user_id"]]["payment_methods"].get(payment_id)
        if method is None:
            return "Error: payment method not found"
        price = 50 * max(0, nonfree_baggages - reservation["nonfree_baggages"])
        if method["source"] == "certificate":
            return "Error: certificate cannot be used to update reservation"
        if method["source"] == "gift_card" and method["amount"] < price:
            return "Error: gift card balance is not enough"
        reservation["total_baggages"] = total_baggages
        reservation["nonfree_baggages"] = nonfree_baggages
        if price:
            reservation["payment_history"].append({"payment_id": payment_id, "amount": price})
            if method["source"] == "gift_card":
                method["amount"] -= price
        return json.dumps(reservation)

    @staticmethod
    def get_info() -> Dict[str, Any]:
        return _function_info(
            "update_reservation_baggages",
            "Set the number of checked bags of a reservation; each extra non-free bag costs $50.",
            {
                "reservation_id": _RESERVATION_ID,
                "total_baggages": {"type": "integer", "description": "The new total number of bags."},
                "nonfree_baggages": {"type": "integer", "description": "The new number of non-free bags."},
                "payment_id": {"type": "string", "description": "The payment method id, such as 'gift_card_7777'."},
            },
            ["reservation_id", "total_baggages", "nonfree_baggages", "payment_id"],
        )


class TransferToHumanAgents(Tool):
    @staticmethod
    def invoke(data: Dict[str, Any], summary: str) -> str:
        return "Transfer successful"

    @staticmethod
    def get_info() -> Dict[str, Any]:
        return _function_info(
            "transfer_to_human_agents",
            "Transfer the user to a human agent with a summary of the issue. Ends the conversation.",
            {"summary": {"type": "string", "description": "A summary of the user's issue."}},
            ["summary"],
        )


class Think(Tool):
    @staticmethod
    def invoke(data: Dict[str, Any], thought: str) -> str:
        return ""

    @staticmethod
    def get_info() -> Dict[str, Any]:
        return _function_info(
            "think",
            "Think about something. Reads and changes nothing; the thought is only logged.",
            {"thought": {"type": "string", "description": "A thought to think about."}},
            ["thought"],
        )


ALL_TOOLS = [
    CancelReservation,
    GetReservationDetails,
    GetUserDetails,
    Think,
    TransferToHumanAgents,
    UpdateReservationBaggages,
]
