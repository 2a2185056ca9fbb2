# The outbox's pacing and coalescing rules, with an explicit clock (no sockets, no sleeps).
from ktnchat.server.outbox import Outbox


def drain(outbox: Outbox, now: float) -> list:
    out = []
    while True:
        chunk = outbox.chunk(now)
        if chunk is None:
            return out
        out.append(bytes(chunk))
        outbox.written(len(chunk), now)


def test_streaming_coalesces_everything_queued_into_one_write() -> None:
    box = Outbox(interval=0.0, backlog_limit=10)
    for frame in (b"a\n", b"b\n", b"c\n"):
        box.push(frame)
    assert drain(box, 0.0) == [b"a\nb\nc\n"]
    assert box.empty and box.queued_bytes == 0


def test_paced_hands_out_one_object_per_interval() -> None:
    box = Outbox(interval=0.05, backlog_limit=10)
    for frame in (b"a\n", b"b\n", b"c\n"):
        box.push(frame)
    assert drain(box, 10.0) == [b"a\n"]  # the next one is not due yet
    assert box.due(10.0) == 10.05
    assert drain(box, 10.049) == []
    assert drain(box, 10.05) == [b"b\n"]
    assert drain(box, 10.11) == [b"c\n"]
    assert box.due(10.11) is None


def test_partial_write_keeps_the_rest_and_the_pace_starts_after_it() -> None:
    box = Outbox(interval=0.05, backlog_limit=10)
    box.push(b"hello\n")
    box.push(b"next\n")
    chunk = box.chunk(1.0)
    assert bytes(chunk) == b"hello\n"
    assert box.written(2, 1.0) is False
    assert bytes(box.chunk(1.01)) == b"llo\n"  # the rest is due at once, pace or not
    assert box.written(4, 1.02) is True
    assert box.chunk(1.05) is None
    assert bytes(box.chunk(1.07)) == b"next\n"
    assert box.queued_bytes == 5


def test_paced_outbox_streams_once_its_backlog_passes_the_limit() -> None:
    box = Outbox(interval=0.05, backlog_limit=3)
    assert all(box.push(b"x") for _ in range(3))
    assert box.push(b"x") is False
    assert not box.paced
    assert drain(box, 0.0) == [b"xxxx"]


def test_switching_to_stream_releases_the_waiting_objects() -> None:
    box = Outbox(interval=0.05, backlog_limit=10)
    box.push(b"1")
    box.push(b"2")
    box.push(b"3")
    assert drain(box, 0.0) == [b"1"]
    box.stream()
    assert drain(box, 0.0) == [b"23"]


def test_after_an_automatic_switch_pacing_returns_once_the_backlog_drains() -> None:
    box = Outbox(interval=0.05, backlog_limit=2)
    for frame in (b"1", b"2", b"3"):
        box.push(frame)
    assert not box.paced
    assert drain(box, 5.0) == [b"123"]  # the flood leaves in one write
    assert box.paced
    box.push(b"4")
    box.push(b"5")
    assert drain(box, 5.0) == []  # paced again, counting from the flood's last write
    assert drain(box, 5.06) == [b"4"]


def test_stream_on_is_for_good() -> None:
    box = Outbox(interval=0.05, backlog_limit=2)
    box.stream()
    box.push(b"1")
    assert drain(box, 0.0) == [b"1"]
    assert not box.paced
    box.set_pace(0.05)
    assert box.paced
