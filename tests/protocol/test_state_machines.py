"""The host and band state machines, wired through a lossy link: every command is
applied exactly once, every band event reaches the host exactly once and in order."""

from __future__ import annotations

import pytest

import firmware_protocol as fp

from .link import LossyLink

PLAN = fp.WirePlan(
    name="test",
    rounds=2,
    round_rest_ms=3_000,
    countdown=3,
    steps=(
        fp.WireStep("QL lifts", fp.StepKind.EXERCISE, 6_000, switch_side=True),
        fp.WireStep("Hip roll", fp.StepKind.EXERCISE, 5_000),
    ),
)
PLAN_BYTES = fp.encode_plan(PLAN)
PLAN_ID = fp.plan_id(PLAN_BYTES)
SECOND = 1_000_000
SESSION = 0x5E55_1D01


def _push_plan(link: LossyLink, chunk: int = 24) -> int:
    sent = 0
    for offset in range(0, len(PLAN_BYTES), chunk):
        data = PLAN_BYTES[offset : offset + chunk]
        link.host.send_command(fp.PlanChunk(PLAN_ID, len(PLAN_BYTES), offset, data), link.now)
        sent += 1
    return sent


@pytest.mark.parametrize("seed", range(300))
def test_lossy_link_applies_each_command_once_and_delivers_each_event_once_in_order(
    seed: int,
) -> None:
    link = LossyLink(seed, mtu=23 if seed % 2 else 247)
    link.host.send_command(fp.Hello(2, 2), 0)
    commands = 1 + _push_plan(link)
    link.run_until(2 * SECOND)
    link.host.send_command(fp.Start(PLAN_ID, link.now + SECOND, SESSION), link.now)
    commands += 1
    for i in range(30):  # heart rate at 5 Hz while the link flaps now and then
        link.band.record_heart_rate(60 + i, (800,), True, link.now)
        if link.rng.random() < 0.1:
            link.set_up(False)
            link.run_until(link.now + link.rng.randint(0, 300_000))
            link.set_up(True)
        link.run_until(link.now + 200_000)
    link.host.send_command(fp.Pause(), link.now)
    link.run_until(link.now + 2 * SECOND)
    link.host.send_command(fp.Resume(), link.now)
    commands += 2
    link.run_until(link.now + 60 * SECOND)

    assert link.band.commands_applied == commands
    assert [r.seq for r in link.results] == list(range(1, commands + 1))
    assert all(isinstance(r, fp.CommandResult) for r in link.results)
    numbers = [e.event_number for e in link.events]
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) == link.band.first_unacked_event - 1  # all acknowledged, none lost
    assert link.band.events_lost == 0
    heart_rates = [e.bpm for e in link.events if isinstance(e, fp.HeartRateSample)]
    assert heart_rates == [60 + i for i in range(30)]
    cues = [e.cue_id for e in link.events if isinstance(e, fp.CueFired)]
    assert cues == [c.cue_id for c in fp.build_timeline(PLAN).cues]
    last = link.events[-1]
    assert isinstance(last, fp.SessionState)
    assert (last.state, last.round, last.step_index) == (fp.SessionStateCode.DONE, 2, 1)


def _connected_pair(*, hold_acks: bool = False) -> LossyLink:
    link = LossyLink(0, drop=0.0, duplicate=0.0, max_delay_us=1, hold_acks=hold_acks)
    link.host.send_command(fp.Hello(2, 2), 0)
    _push_plan(link, chunk=200)
    link.run_until(SECOND)
    return link


def test_band_fires_cues_at_their_planned_band_time_and_reports_each_step() -> None:
    link = _connected_pair()
    start = link.now + SECOND
    link.host.send_command(fp.Start(PLAN_ID, start, SESSION), link.now)
    link.run_until(start + 40 * SECOND)
    timeline = fp.build_timeline(PLAN)
    fired = [e for e in link.events if isinstance(e, fp.CueFired)]
    assert [e.fired_us - start for e in fired] == [c.offset_us for c in timeline.cues]
    assert all(e.fired_us == e.planned_us for e in fired)
    steps = [
        (e.round, e.step_index)
        for e in link.events
        if isinstance(e, fp.SessionState) and e.state is fp.SessionStateCode.RUNNING
    ]
    assert steps == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert link.band.state is fp.SessionStateCode.DONE


def test_pause_shifts_the_rest_of_the_timeline_by_the_pause() -> None:
    link = _connected_pair()
    start = link.now + SECOND
    link.host.send_command(fp.Start(PLAN_ID, start, SESSION), link.now)
    link.run_until(start + 2 * SECOND)
    link.host.send_command(fp.Pause(), link.now)
    link.run_until(link.now + 10 * SECOND)
    link.host.send_command(fp.Resume(), link.now)
    link.run_until(link.now + 60 * SECOND)
    fired = [e for e in link.events if isinstance(e, fp.CueFired)]
    offsets = [c.offset_us for c in fp.build_timeline(PLAN).cues]
    late = [e.fired_us - start - offset for e, offset in zip(fired, offsets, strict=True)]
    assert late[0] == 0
    assert all(shift == pytest.approx(10 * SECOND, abs=2) for shift in late[1:])


def test_a_second_pause_is_refused_and_loses_no_time() -> None:
    link = _connected_pair()
    start = link.now + SECOND
    link.host.send_command(fp.Start(PLAN_ID, start, SESSION), link.now)
    link.run_until(start + 2 * SECOND)
    link.host.send_command(fp.Pause(), link.now)
    link.run_until(link.now + 3 * SECOND)
    link.host.send_command(fp.Pause(), link.now)
    link.run_until(link.now + 7 * SECOND)
    second = link.results[-1]
    assert isinstance(second, fp.CommandResult)
    assert isinstance(second.reply, fp.Nack)
    assert second.reply.code == fp.NackCode.BAD_STATE
    link.host.send_command(fp.Resume(), link.now)
    link.run_until(link.now + 60 * SECOND)
    fired = [e for e in link.events if isinstance(e, fp.CueFired)]
    offsets = [c.offset_us for c in fp.build_timeline(PLAN).cues]
    late = [e.fired_us - start - offset for e, offset in zip(fired, offsets, strict=True)]
    assert all(shift == pytest.approx(10 * SECOND, abs=2) for shift in late[1:])


def test_pain_button_stops_the_session_on_the_band_with_no_host() -> None:
    link = _connected_pair()
    start = link.now + SECOND
    link.host.send_command(fp.Start(PLAN_ID, start, SESSION), link.now)
    link.run_until(start + 3 * SECOND)
    link.set_up(False)
    link.band.press_button(fp.Button.PAIN, link.now)
    motor = link.band.motor_actions()
    assert motor[-1].kind is fp.CueKind.STOPPED
    assert motor[-1].at_us == link.now
    assert link.band.state is fp.SessionStateCode.STOPPED
    link.run_until(link.now + 30 * SECOND)
    link.set_up(True)
    link.run_until(link.now + SECOND)
    last = link.events[-1]
    assert isinstance(last, fp.SessionState)
    assert (last.state, last.cause) == (fp.SessionStateCode.STOPPED, fp.StopCause.PAIN)


def test_skip_jumps_to_the_next_step_without_playing_the_skipped_cues() -> None:
    link = _connected_pair()
    start = link.now + SECOND
    link.host.send_command(fp.Start(PLAN_ID, start, SESSION), link.now)
    link.run_until(start + SECOND)
    link.host.send_command(fp.Skip(), link.now)
    link.run_until(link.now + SECOND // 2)
    kinds = [e.kind for e in link.events if isinstance(e, fp.CueFired)]
    assert fp.CueKind.SWITCH_SIDE not in kinds
    states = [e for e in link.events if isinstance(e, fp.SessionState)]
    assert (states[-1].round, states[-1].step_index) == (1, 1)
    assert states[-1].shift_us == pytest.approx(-5 * SECOND, abs=10)


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (fp.Start(PLAN_ID, 0, SESSION), fp.NackCode.NO_PLAN),
        (fp.Pause(), fp.NackCode.BAD_STATE),
        (fp.Hello(3, 4), fp.NackCode.UNSUPPORTED_VERSION),
        (fp.PlanChunk(PLAN_ID, 60_000, 0, b"x"), fp.NackCode.PLAN_TOO_LARGE),
    ],
)
def test_band_refuses_what_it_cannot_do_with_a_reason(
    command: fp.Command, code: fp.NackCode
) -> None:
    link = LossyLink(0, drop=0.0, duplicate=0.0, max_delay_us=1)
    link.host.send_command(fp.Hello(2, 2), 0)
    link.host.send_command(command, 0)
    link.run_until(SECOND)
    reply = link.results[-1]
    assert isinstance(reply, fp.CommandResult)
    assert isinstance(reply.reply, fp.Nack)
    assert reply.reply.code == code


def test_a_reboot_loses_the_plan_and_the_host_resyncs_the_event_stream() -> None:
    link = _connected_pair()
    link.band.record_heart_rate(70, (), True, link.now)
    link.run_until(link.now + SECOND)
    link.band.reboot()
    link.band.connection_made(link.mtu, link.now)
    link.host.send_command(fp.Hello(2, 2), link.now)
    link.run_until(link.now + SECOND)
    capabilities = link.results[-1]
    assert isinstance(capabilities, fp.CommandResult)
    assert isinstance(capabilities.reply, fp.Capabilities)
    assert capabilities.reply.plan_id == fp.NO_PLAN_ID
    link.band.record_heart_rate(71, (), True, link.now)
    link.run_until(link.now + SECOND)
    assert [e.bpm for e in link.events if isinstance(e, fp.HeartRateSample)] == [70, 71]


def test_garbage_written_to_the_band_is_counted_and_never_raised() -> None:
    band = fp.BandProtocol()
    band.connection_made(247, 0)
    for garbage in (b"", b"\xc0", b"\xc0" + bytes(30), b"\x80\x01", b"\x41abc"):
        band.receive_data(garbage, 0)
    assert band.errors >= 3
    assert band.commands_applied == 0


def _orphaned_band(link: LossyLink) -> int:
    """The band runs workout SESSION for a host that then vanished: the first event number
    the band kept for it."""
    link.host.send_command(fp.Start(PLAN_ID, link.now + SECOND, SESSION), link.now)
    link.run_until(link.now + 3 * SECOND)
    link.set_up(False)
    kept = link.band.first_unacked_event
    link.run_until(link.now + 5 * SECOND)  # cues fire with nobody connected
    return kept


def _next_host(link: LossyLink, seed: int) -> LossyLink:
    """Another host on the band ``link``'s host left, after HELLO."""
    other = LossyLink(
        seed,
        drop=0.0,
        duplicate=0.0,
        max_delay_us=1,
        band=link.band,
        now=link.now,
        first_seq=1000 * seed,  # random in a real host: never the last host's numbers
    )
    other.host.send_command(fp.Hello(2, 2), other.now)
    other.run_until(other.now + 2 * SECOND)
    return other


def test_a_host_that_follows_no_workout_leaves_a_workout_s_events_on_the_band() -> None:
    link = _connected_pair()
    kept = _orphaned_band(link)
    looker = _next_host(link, seed=1)
    assert [e for e in looker.events if e.session_id == SESSION]  # it sees them ...
    assert link.band.first_unacked_event == kept  # ... but leaves them for their owner

    looker.host.follow(SESSION)  # adopting: now they are this host's to record
    looker.run_until(looker.now + SECOND)
    assert link.band.first_unacked_event == looker.events[-1].event_number + 1


def test_starting_a_workout_gives_up_the_events_of_an_earlier_one() -> None:
    link = _connected_pair()
    kept = _orphaned_band(link)
    newcomer = _next_host(link, seed=2)
    assert link.band.first_unacked_event == kept
    newcomer.host.send_command(fp.Stop(), newcomer.now)  # --take-over
    newcomer.host.send_command(fp.Start(PLAN_ID, newcomer.now + SECOND, SESSION + 1), newcomer.now)
    newcomer.run_until(newcomer.now + 60 * SECOND)
    assert newcomer.events[-1].session_id == SESSION + 1
    assert link.band.first_unacked_event == newcomer.events[-1].event_number + 1


def test_holding_acks_takes_events_outside_a_workout_at_once_never_past_a_held_one() -> None:
    link = _connected_pair(hold_acks=True)
    first = link.band.first_unacked_event
    for i in range(3):  # heart rate before START: nothing a workout's record needs kept
        link.band.record_heart_rate(70 + i, (), True, link.now)
        link.run_until(link.now + SECOND)
    assert [e.session_id for e in link.events] == [0, 0, 0]
    assert link.band.first_unacked_event == first + 3  # acknowledged, nothing released

    link.host.send_command(fp.Start(PLAN_ID, link.now + SECOND, SESSION), link.now)
    link.run_until(link.now + 2 * SECOND)
    held = [e for e in link.events[3:] if e.session_id == SESSION]
    assert held
    link.host.send_command(fp.Stop(), link.now)
    link.run_until(link.now + SECOND)
    link.band.record_heart_rate(80, (), True, link.now)  # after the workout: outside again
    link.run_until(link.now + SECOND)
    assert link.events[-1].session_id == 0
    # Behind the workout's unreleased events it waits: an acknowledgement is cumulative.
    assert link.band.first_unacked_event == held[0].event_number

    workout = [e.event_number for e in link.events if e.session_id == SESSION]
    link.host.release(workout[-1], link.host.boot_id)
    link.run_until(link.now + SECOND)
    # The host released the workout; what came after it (outside any workout) follows.
    assert link.band.first_unacked_event == link.events[-1].event_number + 1


def test_a_host_that_holds_acks_leaves_every_event_it_has_not_released_on_the_band() -> None:
    link = _connected_pair(hold_acks=True)
    first = link.band.first_unacked_event
    link.host.send_command(fp.Start(PLAN_ID, link.now + SECOND, SESSION), link.now)
    link.run_until(link.now + 10 * SECOND)
    received = [e.event_number for e in link.events]
    assert len(received) >= 5
    assert received[0] == first
    assert link.band.first_unacked_event == first  # received, none released: all kept

    link.host.release(received[2], link.host.boot_id)
    link.run_until(link.now + SECOND)
    assert link.band.first_unacked_event == received[2] + 1  # no further than released

    link.host.release(received[-1], (link.host.boot_id or 0) + 1)  # another boot's numbers
    link.run_until(link.now + SECOND)
    assert link.band.first_unacked_event == received[2] + 1

    link.set_up(False)  # the host dies before it has recorded the rest
    link.run_until(link.now + SECOND)
    heir = _next_host(link, seed=3)
    heir.host.follow(SESSION)
    heir.run_until(heir.now + SECOND)
    replayed = [e.event_number for e in heir.events]
    assert replayed[: len(received) - 3] == received[3:]  # what the first host never kept
