"""The host's end of the protocol, sans-I/O.

Feed it what arrives on the events characteristic (``receive_data``), call
``tick`` when ``next_deadline_us`` comes, write what ``data_to_send`` returns
to the control characteristic, and read ``next_event``. It never sleeps and
never does I/O, so the same object survives link drops: the command in flight
is re-sent with the same sequence number after a reconnect, and band events
come out exactly once and in order, whatever the link did to them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from . import messages as m
from .errors import LocalProtocolError, RemoteProtocolError
from .frames import FrameFlags, Reassembler, decode_frame, encode_frame, fragment

__all__ = ["PROTOCOL_VERSION", "CommandFailed", "CommandResult", "HostProtocol"]

PROTOCOL_VERSION = 2  # v2: workouts have an identity (START, CAPABILITIES, every event)
_DEFAULT_MTU = 23


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The band answered command ``seq``; ``received_us`` is when (host clock)."""

    seq: int
    command: m.Command
    reply: m.Reply
    received_us: int


@dataclass(frozen=True, slots=True)
class CommandFailed:
    """Command ``seq`` was sent ``attempts`` times and never answered."""

    seq: int
    command: m.Command
    attempts: int


@dataclass(slots=True)
class _InFlight:
    seq: int
    command: m.Command
    frame: bytes
    attempts: int = 0
    deadline_us: int | None = None


class HostProtocol:
    """Sequence numbers, retransmission and in-order, exactly-once band events for the host."""

    def __init__(
        self,
        *,
        retransmit_us: int = 300_000,
        max_attempts: int = 8,
        first_seq: int = 1,
        hold_acks: bool = False,
    ) -> None:
        """``first_seq`` should be random per host instance (1..65535), so that a band
        never mistakes a new host's first commands for copies of an old host's.

        With ``hold_acks`` an event of a workout is acknowledged only once
        :meth:`release` has passed it: the band keeps it (and replays it to the next
        host) until the host has recorded it, not merely received it. An event
        outside any workout is acknowledged on arrival once everything before it is.
        """
        if retransmit_us <= 0 or max_attempts < 1 or not 1 <= first_seq <= 0xFFFF:
            raise LocalProtocolError(
                "retransmit_us must be positive, max_attempts at least 1, first_seq 1..65535"
            )
        self._retransmit_us = retransmit_us
        self._max_attempts = max_attempts
        self._mtu = _DEFAULT_MTU
        self._connected = False
        self._reassembler = Reassembler()
        self._next_seq = first_seq
        self._queue: deque[tuple[int, m.Command]] = deque()
        self._in_flight: _InFlight | None = None
        self._outgoing: list[bytes] = []
        self._events: deque[CommandResult | CommandFailed | m.BandEvent] = deque()
        self._expected_event: int | None = None  # None until the band says where its stream is
        self._boot_id: int | None = None
        self._ack_due = False
        # The band workout this host follows (0: none yet), and while it follows none, the
        # first event of a workout it does not follow: acknowledgements stop short of it,
        # so the band keeps those events for the host that will follow that workout.
        self._followed = 0
        self._hold_from: int | None = None
        # With hold_acks: the last event the host has kept (acknowledgements stop there).
        self._hold_acks = hold_acks
        self._released = 0
        self._unheld: deque[int] = deque()  # received outside a workout, past the released

    # -- link lifecycle --------------------------------------------------------------

    def connection_made(self, mtu: int, now_us: int) -> None:
        """The link is up with this ATT MTU; a command in flight is re-sent at once."""
        self._mtu = mtu
        self._connected = True
        self._reassembler.reset()
        if self._in_flight is not None:
            self._transmit(self._in_flight, now_us, retransmit=True)
        self._pump(now_us)

    def connection_lost(self) -> None:
        """The link dropped: nothing is sent, and no retry is counted, until it is back."""
        self._connected = False
        self._outgoing.clear()
        self._reassembler.reset()
        if self._in_flight is not None:
            self._in_flight.deadline_us = None

    def follow(self, session_id: int) -> None:
        """From now on this host records band workout ``session_id`` (a host adopting a
        running workout calls this; sending START does it): every event received is
        acknowledged, those of earlier workouts included (they are given up for it).

        Until a host follows one, events of a running or finished workout are taken but
        not acknowledged, so a host that only looks (or refuses a foreign workout) leaves
        them on the band for the host that started it.
        """
        self._followed = session_id
        if session_id:
            self._hold_from = None  # the next acknowledgement takes in everything held

    def release(self, event_number: int, boot_id: int | None) -> None:
        """The host has kept every event up to ``event_number`` of boot ``boot_id``
        (recorded it, or found it needs no record): they may be acknowledged.

        Only with ``hold_acks``. A release from before the band rebooted is ignored:
        the new boot numbers its events afresh.
        """
        if boot_id == self._boot_id and event_number > self._released:
            self._released = event_number
            self._ack_due = True
            self._release_unheld()

    def _release_unheld(self) -> None:
        """Take the released mark over the events outside a workout that follow it."""
        unheld = self._unheld
        while unheld and unheld[0] <= self._released + 1:
            if unheld.popleft() == self._released + 1:
                self._released += 1
                self._ack_due = True

    @property
    def boot_id(self) -> int | None:
        """The band boot whose event numbers this host is following (None before HELLO)."""
        return self._boot_id

    # -- inputs -------------------------------------------------------------------------

    def send_command(self, command: m.Command, now_us: int) -> int:
        """Queue ``command``; returns its sequence number. One command is in flight at a time."""
        if not isinstance(command, m.COMMAND_TYPES):
            raise LocalProtocolError(f"{type(command).__name__} is not a host command")
        if isinstance(command, m.Start):
            self.follow(command.session_id)  # its first events may come before its answer
        seq = self._next_seq
        self._next_seq = self._next_seq % 0xFFFF + 1  # 1..65535: 0 marks unsequenced frames
        self._queue.append((seq, command))
        self._pump(now_us)
        return seq

    def receive_data(self, data: bytes, now_us: int) -> None:
        """A notification from the events characteristic (one fragment).

        Raises :class:`RemoteProtocolError` for bytes that are not a valid
        frame; the frame is dropped and the state machine carries on.
        """
        frame_bytes = self._reassembler.feed(data)
        if frame_bytes is None:
            return
        frame = decode_frame(frame_bytes)
        message = frame.message
        if isinstance(message, m.REPLY_TYPES):
            self._on_reply(frame.seq, message, now_us)
        elif isinstance(message, m.EVENT_TYPES):
            self._on_event(message)
        else:
            raise RemoteProtocolError(f"band sent {type(message).__name__}, a host-only message")

    def tick(self, now_us: int) -> None:
        """Retransmit the command in flight if its answer is overdue, or give up on it."""
        flight = self._in_flight
        if flight is None or flight.deadline_us is None or now_us < flight.deadline_us:
            return
        if flight.attempts >= self._max_attempts:
            self._events.append(CommandFailed(flight.seq, flight.command, flight.attempts))
            self._in_flight = None
            self._pump(now_us)
            return
        self._transmit(flight, now_us, retransmit=True)

    # -- outputs ---------------------------------------------------------------------------

    def data_to_send(self) -> list[bytes]:
        """Fragments to write to the control characteristic, in order."""
        if self._ack_due and self._connected and self._expected_event is not None:
            upto = self._expected_event - 1
            if self._hold_from is not None:
                upto = min(upto, self._hold_from - 1)
            if self._hold_acks:
                upto = min(upto, self._released)
            ack = m.EventAck(max(upto, 0))
            self._outgoing.extend(fragment(encode_frame(ack, 0), self._mtu - 3))
        self._ack_due = False
        out, self._outgoing = self._outgoing, []
        return out

    def next_event(self) -> CommandResult | CommandFailed | m.BandEvent | None:
        """The next command outcome or band event, or None when there is nothing new."""
        return self._events.popleft() if self._events else None

    def next_deadline_us(self) -> int | None:
        """When :meth:`tick` must be called next (None: only new input can change anything)."""
        return self._in_flight.deadline_us if self._in_flight is not None else None

    # -- internals -----------------------------------------------------------------------------

    def _pump(self, now_us: int) -> None:
        if self._in_flight is None and self._queue:
            seq, command = self._queue.popleft()
            self._in_flight = _InFlight(seq, command, encode_frame(command, seq))
            if self._connected:
                self._transmit(self._in_flight, now_us, retransmit=False)

    def _transmit(self, flight: _InFlight, now_us: int, *, retransmit: bool) -> None:
        if not self._connected:
            return
        frame = flight.frame
        if retransmit:
            frame = encode_frame(flight.command, flight.seq, FrameFlags.RETRANSMIT)
        self._outgoing.extend(fragment(frame, self._mtu - 3))
        flight.attempts += 1
        backoff = min(2 ** (flight.attempts - 1), 8)
        flight.deadline_us = now_us + self._retransmit_us * backoff

    def _on_reply(self, seq: int, reply: m.Reply, now_us: int) -> None:
        flight = self._in_flight
        if flight is None or seq != flight.seq:
            return  # a late duplicate of an answer already taken
        if isinstance(reply, m.Capabilities) and reply.boot_id != self._boot_id:
            # A new band, or the band rebooted: its event numbers start afresh.
            self._boot_id = reply.boot_id
            self._expected_event = reply.first_unacked_event
            self._released = reply.first_unacked_event - 1
            self._unheld.clear()
        self._events.append(CommandResult(seq, flight.command, reply, now_us))
        self._in_flight = None
        self._pump(now_us)

    def _on_event(self, event: m.BandEvent) -> None:
        if self._expected_event is None:
            return  # before HELLO's answer the host cannot know where the stream starts
        fresh = event.event_number == self._expected_event
        # A new event held back is acknowledged by its release; a copy (the band did not
        # hear an acknowledgement) or one after a gap is answered at once.
        self._ack_due = self._ack_due or not (fresh and self._hold_acks)
        if fresh and self._hold_acks and not event.session_id:
            # Outside any workout (heart rate before START, the band's state) nothing is
            # held: a host that connects and waits, with no reader yet, would otherwise
            # have the band resend everything unacknowledged every 400 ms, more each time.
            # Never past a held event (acknowledgements are cumulative): then it goes with
            # the release of the held one.
            self._unheld.append(event.event_number)
            self._release_unheld()
        if fresh:
            if event.session_id and not self._followed and self._hold_from is None:
                self._hold_from = event.event_number  # a workout's, and this host follows none
            self._events.append(event)
            self._expected_event += 1
        # A duplicate is dropped; so is an event after a gap, which the band retransmits
        # in order because it is not acknowledged.
