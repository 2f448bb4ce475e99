"""Tiny retail database (v1 loads orders/products/users JSON files in data/__init__.py).

`load_data()` returns a fresh deep copy on every call, as v1's reloading from disk does."""

import copy
from typing import Any, Dict

_USERS: Dict[str, Any] = {
    "ava_chen_1001": {
        "name": {"first_name": "Ava", "last_name": "Chen"},
        "address": {"address1": "12 Pine St", "city": "San Francisco", "state": "CA", "zip": "94105"},
        "email": "ava.chen@example.com",
        "payment_methods": {
            "credit_card_1111": {"source": "credit_card", "brand": "visa", "last_four": "4242", "id": "credit_card_1111"},
            "gift_card_2222": {"source": "gift_card", "balance": 50.0, "id": "gift_card_2222"},
        },
        "orders": ["#W1000001", "#W1000002"],
    },
    "ben_ortiz_2002": {
        "name": {"first_name": "Ben", "last_name": "Ortiz"},
        "address": {"address1": "3 Elm Ave", "city": "Austin", "state": "TX", "zip": "78701"},
        "email": "ben.ortiz@example.com",
        "payment_methods": {"paypal_3333": {"source": "paypal", "id": "paypal_3333"}},
        "orders": ["#W2000001", "#W2000002"],
    },
    "cara_diaz_3003": {
        "name": {"first_name": "Cara", "last_name": "Diaz"},
        "address": {"address1": "88 Oak Rd", "city": "Denver", "state": "CO", "zip": "80202"},
        "email": "cara.diaz@example.com",
        "payment_methods": {"gift_card_4444": {"source": "gift_card", "balance": 10.0, "id": "gift_card_4444"}},
        "orders": ["#W3000001", "#W3000002"],
    },
}


def _order(order_id: str, user_id: str, name: str, item_id: str, price: float, status: str, payment: str) -> Dict[str, Any]:
    return {
        "order_id": order_id,
        "user_id": user_id,
        "items": [{"name": name, "item_id": item_id, "price": price}],
        "status": status,
        "payment_history": [{"transaction_type": "payment", "amount": price, "payment_method_id": payment}],
    }


_ORDERS: Dict[str, Any] = {
    "#W1000001": _order("#W1000001", "ava_chen_1001", "Desk Lamp", "4100000001", 45.5, "pending", "credit_card_1111"),
    "#W1000002": _order("#W1000002", "ava_chen_1001", "Water Bottle", "4100000002", 18.25, "delivered", "credit_card_1111"),
    "#W2000001": _order("#W2000001", "ben_ortiz_2002", "Headphones", "4200000001", 129.99, "pending", "paypal_3333"),
    "#W2000002": _order("#W2000002", "ben_ortiz_2002", "Espresso Machine", "4200000002", 1049.0, "delivered", "paypal_3333"),
    "#W3000001": _order("#W3000001", "cara_diaz_3003", "Notebook", "4300000001", 12.75, "pending", "gift_card_4444"),
    "#W3000002": _order("#W3000002", "cara_diaz_3003", "Backpack", "4300000002", 60.0, "processed", "gift_card_4444"),
}


def load_data() -> dict[str, Any]:
    """A fresh copy of the retail data: {"orders", "products", "users"}."""
    return copy.deepcopy({"orders": _ORDERS, "products": {}, "users": _USERS})
