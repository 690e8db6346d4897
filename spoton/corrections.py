"""Operators' identity corrections as reads see them (DESIGN §6: corrections never rewrite history; reads resolve
global IDs through them). One copy, used by the gateway (persons) and analytics_svc (every query)."""

from __future__ import annotations

from collections.abc import Iterable


def follow_merges(pairs: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Merge corrections ``(from, into)`` in the order made -> {global id: the id it now belongs to}, chains
    followed (3 -> 2 and 2 -> 1 give 3 -> 1); a cycle stops where it would repeat."""
    direct = {int(a): int(b) for a, b in pairs}
    resolved = {}
    for src in direct:
        dst, seen = direct[src], {src}
        while dst in direct and dst not in seen:
            seen.add(dst)
            dst = direct[dst]
        resolved[src] = dst
    return resolved


def merge_pairs(rows: Iterable[tuple[str, dict]]) -> list[tuple[int, int]]:
    """``identity_corrections`` rows ``(kind, detail)`` in the order made -> the merges ``(from, into)`` still in
    effect: an ``undo`` row whose ``undoes`` is a merge takes that merge back (reid_svc/undo.py); a later merge of
    the same pair counts again."""
    pairs: list[tuple[int, int]] = []
    for kind, detail in rows:
        if kind == "merge":
            pairs.append((int(detail["from"]), int(detail["into"])))
        elif kind == "undo" and detail.get("undoes", {}).get("kind") == "merge":
            undone = (int(detail["undoes"]["from"]), int(detail["undoes"]["into"]))
            if undone in pairs:
                del pairs[len(pairs) - 1 - pairs[::-1].index(undone)]
    return pairs
