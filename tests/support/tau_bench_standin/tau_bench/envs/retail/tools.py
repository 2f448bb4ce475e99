"""Tools of the tiny retail domain (v1: one module per tool under tau_bench/envs/retail/tools/)."""

import json
from typing import Any, Dict

from tau_bench.envs.tool import Tool, _function_info

_ORDER_ID = {"type": "string", "description": "The order id, such as '#W1000001' (note the leading '#')."}


class FindUserIdByEmail(Tool):
    @staticmethod
    def invoke(data: Dict[str, Any], email: str) -> str:
        for user_id, user in data["users"].items():
            if user["email"].lower() == email.lower():
                return user_id
        return "Error: user not found"

    @staticmethod
    def get_info() -> Dict[str, Any]:
        return _function_info(
            "find_user_id_by_email",
            "Find the user id from an email address. Returns an error message if not found.",
            {"email": {"type": "string", "description": "The user's email, such as 'someone@example.com'."}},
            ["email"],
        )


class GetUserDetails(Tool):
    @staticmethod
    def invoke(data: Dict[str, Any], user_id: str) -> str:
        user = data["users"].get(user_id)
        return json.dumps(user) if user is not None else "Error: user not found"

    @staticmethod
    def get_info() -> Dict[str, Any]:
        return _function_info(
            "get_user_details",
            "Get a user's profile: name, address, email, payment methods and order ids.",
            {"user_id": {"type": "string", "description": "The user id, such as 'ava_chen_1001'."}},
            ["user_id"],
        )


class GetOrderDetails(Tool):
    @staticmethod
    def invoke(data: Dict[str, Any], order_id: str) -> str:
        order = data["orders"].get(order_id)
        return json.dumps(order) if order is not None else "Error: order not found"

    @staticmethod
    def get_info() -> Dict[str, Any]:
        return _function_info(
            "get_order_details", "Get the status and details of an order.", {"order_id": _ORDER_ID}, ["order_id"]
        )


class CancelPendingOrder(Tool):
    @staticmethod
    def invoke(data: Dict[str, Any], order_id: str, reason: str) -> str:
        order = data["orders"].get(order_id)
        if order is None:
            return "Error: order not found"
        if order["status"] != "pending":
            return "Error: non-pending order cannot be cancelled"
        if reason not in ("no longer needed", "ordered by mistake"):
            return "Error: invalid reason"
        refunds = []
        for payment in order["payment_history"]:
            method_id = payment["payment_method_id"]
            refunds.append({"transaction_type": "refund", "amount": payment["amount"], "payment_method_id": method_id})
            if method_id.startswith("gift_card"):  # gift cards are refunded at once
                method = data["users"][order["user_id"]]["payment_methods"][method_id]
                method["balance"] = round(method["balance"] + payment["amount"], 2)
        order["status"] = "cancelled"
        order["cancel_reason"] = reason
        order["payment_history"].extend(refunds)
        return json.dumps(order)

    @staticmethod
    def get_info() -> Dict[str, Any]:
        return _function_info(
            "cancel_pending_order",
            "Cancel a pending order after explicit user confirmation. Refunds go to the original "
            "payment methods. Returns the order after cancellation.",
            {
                "order_id": _ORDER_ID,
                "reason": {
                    "type": "string",
                    "enum": ["no longer needed", "ordered by mistake"],
                    "description": "Why the order is cancelled.",
                },
            },
            ["order_id", "reason"],
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
    CancelPendingOrder,
    FindUserIdByEmail,
    GetOrderDetails,
    GetUserDetails,
    Think,
    TransferToHumanAgents,
]
