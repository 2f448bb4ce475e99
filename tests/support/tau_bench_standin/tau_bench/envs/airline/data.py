"""Tiny airline database (v1 loads flights/reservations/users JSON files in data/__init__.py).

`load_data()` returns a fresh deep copy on every call."""

import copy
from typing import Any, Dict

_USERS: Dict[str, Any] = {
    "omar_khan_1001": {
        "name": {"first_name": "Omar", "last_name": "Khan"},
        "email": "omar.khan@example.com",
        "dob": "1985-02-14",
        "payment_methods": {
            "credit_card_5555": {"source": "credit_card", "brand": "visa", "last_four": "5555", "id": "credit_card_5555"},
            "certificate_6666": {"source": "certificate", "amount": 100, "id": "certificate_6666"},
        },
        "membership": "silver",
        "reservations": ["ABC123", "XYZ789"],
    },
    "lena_park_2002": {
        "name": {"first_name": "Lena", "last_name": "Park"},
        "email": "lena.park@example.com",
        "dob": "1992-07-30",
        "payment_methods": {"gift_card_7777": {"source": "gift_card", "amount": 80, "id": "gift_card_7777"}},
        "membership": "regular",
        "reservations": ["QWE456"],
    },
}


def _reservation(rid: str, user_id: str, origin: str, destination: str, flight: str, date: str,
                 price: int, passenger: Dict[str, str], payment_id: str) -> Dict[str, Any]:
    return {
        "reservation_id": rid,
        "user_id": user_id,
        "origin": origin,
        "destination": destination,
        "flight_type": "one_way",
        "cabin": "economy",
        "flights": [{"flight_number": flight, "date": date, "price": price}],
        "passengers": [passenger],
        "payment_history": [{"payment_id": payment_id, "amount": price}],
        "total_baggages": 0,
        "nonfree_baggages": 0,
        "insurance": "no",
    }


_OMAR = {"first_name": "Omar", "last_name": "Khan", "dob": "1985-02-14"}
_RESERVATIONS: Dict[str, Any] = {
    "ABC123": _reservation("ABC123", "omar_khan_1001", "JFK", "SEA", "HAT001", "2024-05-20", 200, _OMAR, "credit_card_5555"),
    "XYZ789": _reservation("XYZ789", "omar_khan_1001", "SEA", "JFK", "HAT002", "2024-05-27", 350, _OMAR, "credit_card_5555"),
    "QWE456": _reservation("QWE456", "lena_park_2002", "BOS", "ORD", "HAT010", "2024-05-22", 150,
                           {"first_name": "Lena", "last_name": "Park", "dob": "1992-07-30"}, "gift_card_7777"),
}


def load_data() -> dict[str, Any]:
    """A fresh copy of the airline data: {"flights", "reservations", "users"}."""
    return copy.deepcopy({"flights": {}, "reservations": _RESERVATIONS, "users": _USERS})
