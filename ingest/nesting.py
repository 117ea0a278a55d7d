"""How deep a decoded JSON document nests: the intakes refuse what no real sender would nest.

Why it exists: Python's json recurses once per level and raises RecursionError near 1,000 levels,
less the frames already on the stack. A body that decodes at the door (a shallow stack) can fail
again where it is read later (the dispatcher, the jobs actor: deeper stacks), and every consumer
on the way (aiogram's models, json.dumps) recurses over it too. Telegram's updates and KIE's
callbacks nest about ten levels; MAX_DEPTH leaves a wide margin and stays far from the limit.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_DEPTH", "too_deep"]

MAX_DEPTH = 64


def too_deep(document: Any, limit: int = MAX_DEPTH, *, embedded: bool = False) -> bool:
    """True when `document` nests more than `limit` arrays and objects.

    Iterative, so a deep document cannot make the check itself recurse. With `embedded`, a string
    that holds a JSON array or object (KIE sends resultJson and param so) counts as one more level
    and is measured too: it is decoded again downstream.
    """
    kinds: tuple[type, ...] = (dict, list, str) if embedded else (dict, list)
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        elif embedded and isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
            try:
                children = [json.loads(value)]
            except RecursionError:
                return True
            except ValueError:
                continue
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, kinds))
    return False
