"""Pairing a message that left one folder with the same message arriving in another.

Within one sync pass over an account, a message moved by another client shows up twice: it
vanishes from its old folder and appears, with a new UID, in its new one. Users would rather
hear one ``messageMoved`` than a ``messageDeleted`` plus a ``messageNew`` (their stored id is
what changed, the message did not). ``emailId`` (the server's OBJECTID, else a fingerprint of
Message-ID, date and size) is what ties the two halves together.

Whichever half is seen first is recorded as usual (durably: the pass may die before the other
half is seen), but held back from publication until the pass ends (``release``) or
``events.HOLD_SECONDS`` pass, so that it can still be withdrawn. When its partner arrives in
the same pass, the first event is withdrawn if it was not dispatched yet and one
``messageMoved`` is recorded in its place, in the partner's transaction. If it was already
dispatched, both events stand: nothing said is taken back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from webhooks import events


@dataclass
class Half:
    event_pk: object
    id: str
    uid: int
    path: str
    summary: dict = field(default_factory=dict)


@dataclass
class MoveTracker:
    left: dict[str, Half] = field(default_factory=dict)  # emailId -> its messageDeleted
    arrived: dict[str, Half] = field(default_factory=dict)  # emailId -> its messageNew
    # Events held only so as not to be published before a held messageNew (a bounce's
    # messageBounce): released with the halves, never withdrawn.
    following: list = field(default_factory=list)

    def note_left(self, email_id: str, half: Half) -> None:
        if email_id:
            self.left[email_id] = half

    def note_arrived(self, email_id: str, half: Half) -> None:
        if email_id:
            self.arrived[email_id] = half

    def note_following(self, event_pk) -> None:
        self.following.append(event_pk)

    def release(self) -> None:
        """The pass is over: publish the halves no partner claimed (they were held so that
        the publisher could not send one before its partner withdrew it), and the events
        held to follow them."""
        pks = [half.event_pk for half in [*self.left.values(), *self.arrived.values()]
               if half.event_pk is not None] + self.following
        self.left, self.arrived, self.following = {}, {}, []
        if pks:
            events.release_held(pks)

    def take_left(self, email_id: str) -> Half | None:
        """The undispatched ``messageDeleted`` of this message, withdrawn, if there is one."""
        return _withdraw(self.left, email_id)

    def take_arrived(self, email_id: str) -> Half | None:
        """The undispatched ``messageNew`` of this message, withdrawn, if there is one."""
        return _withdraw(self.arrived, email_id)


def _withdraw(halves: dict[str, Half], email_id: str) -> Half | None:
    if not email_id:
        return None
    half = halves.pop(email_id, None)
    if half is None:
        return None
    return half if events.withdraw(half.event_pk) else None


def moved_data(summary: dict, source: Half, destination: Half) -> dict:
    """``messageMoved``: the message as it is now (new id, uid, path) and where it came from."""
    return {**summary, "id": destination.id, "uid": destination.uid, "path": destination.path,
            "source": {"id": source.id, "uid": source.uid, "path": source.path},
            "destination": {"id": destination.id, "uid": destination.uid,
                            "path": destination.path}}
