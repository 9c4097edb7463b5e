"""The on-disk spool: order, numbering across restarts, the bound (drop oldest, counted), durability (the
write, fsync, rename and folder fsync order a power cut needs), one process per folder, bad record files
(reported and skipped, never a crash), read errors (the record kept) and removals the disk refuses (the
event never handed out again)."""

from __future__ import annotations

import errno
import json
import os

import pytest

from catdog.edge.camera import spool as spool_module
from catdog.edge.camera.spool import Spool, decode_record, default_spool_root, encode_record
from catdog.edge.errors import SinkSetupError
from tests.edge.camera.helpers import PATIENCE_S
from tests.edge.test_files import durable_write_calls, record_disk_calls, refusing


def event(n: int) -> bytes:
    return json.dumps({"event": "label", "frame": n}).encode()


def drain(spool: Spool) -> list[bytes]:
    """Take every record, oldest first, as a sender does (head, then remove)."""
    out = []
    while (record := spool.head()) is not None:
        out.append(record.payload)
        spool.remove(record.seq)
    return out


def record_files(folder) -> list[str]:
    return sorted(p.name for p in folder.glob("*.event"))


def test_oldest_first_and_numbering_goes_on_after_a_restart(tmp_path):
    warnings: list[str] = []
    spool = Spool(tmp_path / "s", 100, warnings.append)
    seqs = [spool.put(event(n)).seq for n in range(3)]
    assert seqs == [1, 2, 3] and len(spool) == 3
    first = spool.head()
    assert first.seq == 1 and first.payload == event(0)
    spool.remove(1)
    spool.close()

    again = Spool(tmp_path / "s", 100, warnings.append)  # a new run finds what was left, in order
    assert drain(again) == [event(1), event(2)] and len(again) == 0
    assert again.put(event(9)).seq == 4  # never reuses a number, even after the spool emptied
    again.close()
    assert Spool(tmp_path / "s", 100, warnings.append).head().seq == 4
    assert warnings == []


def test_full_spool_drops_the_oldest_and_says_how_many(tmp_path):
    spool = Spool(tmp_path / "s", 3, print)
    results = [spool.put(event(n)) for n in range(5)]
    assert [r.dropped for r in results] == [0, 0, 0, 1, 1]
    assert len(spool) == 3 and len(record_files(tmp_path / "s")) == 3
    assert drain(spool) == [event(2), event(3), event(4)]


def test_removing_an_event_already_dropped_is_harmless(tmp_path):
    spool = Spool(tmp_path / "s", 1, print)
    spool.put(event(0))
    in_flight = spool.head()
    spool.put(event(1))  # drops event 0 while it is "being sent"
    spool.remove(in_flight.seq)
    assert drain(spool) == [event(1)]


def test_put_and_remove_are_durable_against_a_power_cut(tmp_path, monkeypatch):
    # A SIGKILL proves nothing here (the page cache survives it); a power cut needs the data fsynced before
    # the rename, and the folder fsynced after it and after a removal. Each call is recorded in order.
    folder = tmp_path / "s"
    spool = Spool(folder, 100, print)
    calls = record_disk_calls(monkeypatch)
    spool.put(event(0))
    record = folder / "0000000000000001.event"
    assert calls == durable_write_calls(record, len(encode_record(event(0))), calls)  # before put() returns

    spool.put(event(1))
    del calls[:]
    spool.remove(1)  # another event is left: only the removal itself
    assert calls == [("unlink", record), ("fsync", folder, None)]

    del calls[:]
    spool.remove(2)  # the last one: the numbering is written durably before the file goes
    last_seq = folder / "last-seq"
    written = durable_write_calls(last_seq, 2, calls)
    assert calls == [*written, ("unlink", folder / "0000000000000002.event"), ("fsync", folder, None)]
    assert last_seq.read_bytes() == b"2\n"


@pytest.mark.parametrize("code", [errno.EMFILE, errno.EIO])
def test_a_read_error_keeps_the_record_to_be_read_again(tmp_path, monkeypatch, code):
    warnings: list[str] = []
    spool = Spool(tmp_path / "s", 100, warnings.append)
    spool.put(event(0))
    spool.put(event(1))

    def failing_open(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(args[0]))

    monkeypatch.setattr(spool_module, "open", failing_open, raising=False)  # the spool's open() only
    with pytest.raises(OSError) as info:
        spool.head()
    assert info.value.errno == code
    assert len(spool) == 2 and len(record_files(tmp_path / "s")) == 2 and warnings == []
    monkeypatch.undo()
    assert drain(spool) == [event(0), event(1)] and warnings == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_an_acknowledged_event_is_never_handed_out_again_when_its_removal_cannot_be_written(tmp_path, monkeypatch, code):
    folder = tmp_path / "s"
    warnings: list[str] = []
    spool = Spool(folder, 100, warnings.append)
    spool.put(event(0))
    record = spool.head()

    with monkeypatch.context() as disk:  # full or read-only from here until the restart
        disk.setattr(os, "fsync", refusing(code))
        disk.setattr(os, "unlink", refusing(code))
        with pytest.raises(OSError):
            spool.remove(record.seq)  # acknowledged, but the disk cannot record it
        assert spool.head() is None and len(spool) == 0  # never handed out again in this run
        spool.close()
    assert record_files(folder) == ["0000000000000001.event"]
    assert warnings == [f"{folder}: 1 sent event(s) could not be removed ({os.strerror(code)}); "
                        "they are sent again on the next run, with the same sequence numbers"]

    again = Spool(folder, 100, print)  # the next run, the disk writable again: sent once more, same number
    assert again.head() == record
    again.remove(record.seq)
    assert again.put(event(1)).seq == 2 and record_files(folder) == ["0000000000000002.event"]  # no number reused


def test_a_removal_refused_once_is_done_by_the_next_one(tmp_path, monkeypatch):
    folder = tmp_path / "s"
    spool = Spool(folder, 100, print)
    for n in range(3):
        spool.put(event(n))
    with monkeypatch.context() as disk:
        disk.setattr(os, "unlink", refusing(errno.EROFS))
        with pytest.raises(OSError):
            spool.remove(spool.head().seq)
    assert spool.head().seq == 2 and record_files(folder) == [f"{n:016d}.event" for n in (1, 2, 3)]
    spool.remove(2)  # the disk is back: the earlier file goes too
    assert record_files(folder) == ["0000000000000003.event"] and drain(spool) == [event(2)]


def test_bad_records_are_reported_and_skipped(tmp_path):
    folder = tmp_path / "s"
    spool = Spool(folder, 100, print)
    for n in range(6):
        spool.put(event(n))
    spool.close()
    names = record_files(folder)
    data = (folder / names[1]).read_bytes()
    (folder / names[1]).write_bytes(data[:-5])  # truncated
    (folder / names[2]).write_bytes(b"")  # empty
    (folder / names[3]).write_bytes(encode_record(b"not json"))  # intact but not an event
    (folder / names[4]).write_bytes(b"\x00" * 200)  # garbage
    (folder / "0000000000000099.event.tmp").write_bytes(b"half")  # a put() that never returned
    (folder / "notes.txt").write_text("someone's file")  # not ours: left alone

    warnings: list[str] = []
    spool = Spool(folder, 100, warnings.append)
    assert drain(spool) == [event(0), event(5)]
    assert len(warnings) == 4 and all("bad spool record skipped" in w for w in warnings)
    assert "checksum mismatch" in warnings[0] and "truncated (0 bytes)" in warnings[1] and "not JSON" in warnings[2]
    assert record_files(folder) == [] and (folder / "notes.txt").exists()
    assert not list(folder.glob("*.tmp"))


def test_decode_record_checks_everything():
    payload = event(1)
    assert decode_record(encode_record(payload)) == payload
    for bad in (b"", b"12345678", b"zzzzzzzz\n{}", encode_record(payload)[:-1], encode_record(payload) + b" "):
        with pytest.raises(ValueError):
            decode_record(bad)


def test_one_process_per_spool_folder(tmp_path):
    first = Spool(tmp_path / "s", 10, print)
    with pytest.raises(SinkSetupError, match="another catdog-edge camera is using this spool"):
        Spool(tmp_path / "s", 10, print)
    first.close()
    Spool(tmp_path / "s", 10, print).close()


def test_unusable_folder_is_a_setup_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SinkSetupError, match="cannot use it as a spool") as info:
        Spool(tmp_path / "file" / "s", 10, print)
    assert info.value.exit_code == 2


def test_default_root_follows_xdg_state_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_spool_root() == tmp_path / "catdog" / "spool"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_spool_root() == tmp_path / "home" / ".local" / "state" / "catdog" / "spool"


def test_wait_wakes_on_put_and_on_interrupt(tmp_path):
    import threading

    spool = Spool(tmp_path / "s", 10, print)
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(spool.wait(PATIENCE_S)))
    waiter.start()
    spool.interrupt()
    waiter.join(PATIENCE_S)
    assert woke == [False]
    waiter = threading.Thread(target=lambda: woke.append(spool.wait(PATIENCE_S)))
    waiter.start()
    spool.put(event(0))
    waiter.join(PATIENCE_S)
    assert woke == [False, True]
    assert os.path.exists(tmp_path / "s" / "lock")
