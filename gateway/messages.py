"""The session-level WebSocket messages (DESIGN §3) that are not a step's: built in one place each.

Step messages come from ``StepResult.message()``; zone events and alerts from ``ZoneEvent.to_dict`` and
``Alert.to_dict``.
"""

from __future__ import annotations


def session_ended(session_id: str, status: str | None, steps: int | None, error: str | None) -> dict:
    """The last message of a session's tracking and events streams."""
    return {"type": "session_ended", "session_id": session_id, "status": status, "steps": steps, "error": error}


def session_ended_from_summary(session_id: str, summary: dict) -> dict:
    """``session_ended`` for a session known only by its summary (another replica's, read from Redis)."""
    return session_ended(session_id, summary.get("status"), summary.get("steps"), summary.get("last_error"))
