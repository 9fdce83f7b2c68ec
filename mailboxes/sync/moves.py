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

A ``messageNew`` may have events that follow it (a bounce's ``messageBounce``, an abuse
report's ``messageComplaint``), held with it so that they are not published first: they go
with it when it is withdrawn (the report of a message moved into the INBOX was read as if it
were new), and are published with it otherwise.
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
    # Events held to follow this one (a report's), withdrawn with it.
    following: list = field(default_factory=list)


@dataclass
class MoveTracker:
    left: dict[str, Half] = field(default_factory=dict)  # emailId -> its messageDeleted
    arrived: dict[str, Half] = field(default_factory=dict)  # emailId -> its messageNew
    # Held events no half stands for any more (a half replaced by another of the same
    # emailId, or one already dispatched when its partner came): published at the end.
    loose: list = field(default_factory=list)

    def note_left(self, email_id: str, half: Half) -> None:
        if email_id:
            self._loosen(self.left.get(email_id))
            self.left[email_id] = half

    def note_arrived(self, email_id: str, half: Half) -> None:
        if email_id:
            self._loosen(self.arrived.get(email_id))
            self.arrived[email_id] = half

    def release(self) -> None:
        """The pass is over: publish the halves no partner claimed (they were held so that
        the publisher could not send one before its partner withdrew it), and the events
        held to follow them."""
        pks = [pk for half in [*self.left.values(), *self.arrived.values()]
               for pk in _held(half)] + self.loose
        self.left, self.arrived, self.loose = {}, {}, []
        if pks:
            events.release_held(pks)

    def _loosen(self, half: Half | None) -> None:
        if half is not None:
            self.loose.extend(_held(half))

    def take_left(self, email_id: str) -> Half | None:
        """The undispatched ``messageDeleted`` of this message, withdrawn, if there is one."""
        return self._withdraw(self.left, email_id)

    def take_arrived(self, email_id: str) -> Half | None:
        """The undispatched ``messageNew`` of this message, withdrawn with the events that
        follow it (``Half.following``), if there is one. The caller removes what else its
        report stored (``Bounce`` rows), in the same transaction."""
        return self._withdraw(self.arrived, email_id)

    def _withdraw(self, halves: dict[str, Half], email_id: str) -> Half | None:
        if not email_id:
            return None
        half = halves.pop(email_id, None)
        if half is None:
            return None
        if not events.withdraw(half.event_pk):
            self.loose.extend(half.following)  # it was said: what follows it stands too
            return None
        for pk in half.following:
            events.withdraw(pk)
        return half


def _held(half: Half) -> list:
    return [pk for pk in [half.event_pk, *half.following] if pk is not None]


def moved_data(summary: dict, source: Half, destination: Half) -> dict:
    """``messageMoved``: the message as it is now (new id, uid, path) and where it came from."""
    return {**summary, "id": destination.id, "uid": destination.uid, "path": destination.path,
            "source": {"id": source.id, "uid": source.uid, "path": source.path},
            "destination": {"id": destination.id, "uid": destination.uid,
                            "path": destination.path}}
