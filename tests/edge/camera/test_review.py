"""edge.camera.review: the inbox listed newest first, labelling moves a frame and its sidecar into DIR/<class>/,
delete keeps it in DIR/.trash/ until undone or the next action, one-step undo, safe class names, and frame names
checked against the inbox's listing (a path never comes from the client)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catdog.edge.camera.collect import INBOX
from catdog.edge.camera.review import TRASH, Review, ReviewError, class_problem

NAMES = ["20261207-101500-001_f0000001_cat.jpg", "20261207-101501-002_f0000002_dog.jpg",
         "20261207-101502-003_f0000003_none.jpg"]


def make_inbox(folder: Path, names=NAMES) -> Path:
    """Frames as the collector leaves them: a JPEG (any bytes will do here) and its sidecar."""
    inbox = folder / INBOX
    inbox.mkdir(parents=True, exist_ok=True)
    for name in names:
        (inbox / name).write_bytes(b"\xff\xd8 " + name.encode() + b" \xff\xd9")
        (inbox / name).with_suffix(".json").write_text(json.dumps({"label": name.split("_")[-1][:-4], "kept": "event"}))
    return folder


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_the_inbox_is_listed_newest_first_with_what_the_collector_recorded(tmp_path):
    make_inbox(tmp_path)
    (tmp_path / INBOX / ".hidden.jpg").write_bytes(b"x")
    (tmp_path / INBOX / "notes.txt").write_text("x")
    review = Review(tmp_path, ("cat", "dog"))
    assert review.frames() == NAMES[::-1]
    state = review.state()
    assert state["count"] == 3 and [f["name"] for f in state["frames"]] == NAMES[::-1]
    assert state["frames"][0] == {"name": NAMES[2], "label": "none", "kept": "event"}
    assert state["none"] == "none" and state["undo"] is None
    assert review.state(limit=1)["count"] == 3 and len(review.state(limit=1)["frames"]) == 1


def test_classes_are_the_model_labels_then_other_class_folders(tmp_path):
    make_inbox(tmp_path)
    for folder in ("bird", "none", ".trash", "has space", "fox"):
        (tmp_path / folder).mkdir()
    (tmp_path / "file.jpg").write_bytes(b"x")
    review = Review(tmp_path, ("cat", "dog", "none"))
    assert review.classes() == ["cat", "dog", "bird", "fox"]  # not inbox, hidden, unsafe or the none label


def test_labelling_moves_the_frame_and_its_sidecar_into_the_class_folder_and_undo_brings_it_back(tmp_path):
    make_inbox(tmp_path)
    review = Review(tmp_path, ("cat", "dog"))
    before = files_under(tmp_path)
    review.label(NAMES[0], "cat")
    assert (tmp_path / "cat" / NAMES[0]).is_file() and (tmp_path / "cat" / NAMES[0]).with_suffix(".json").is_file()
    assert NAMES[0] not in review.frames() and review.state()["undo"] == {"kind": "label", "frame": NAMES[0],
                                                                         "folder": "cat"}
    review.label(NAMES[1], "squirrel")  # a new class: its folder is made
    assert (tmp_path / "squirrel" / NAMES[1]).is_file() and "squirrel" in review.classes()
    assert review.undo().frame == NAMES[1]
    assert NAMES[1] in review.frames() and list((tmp_path / "squirrel").iterdir()) == []
    with pytest.raises(ReviewError, match="nothing to undo") as caught:
        review.undo()  # one step only
    assert caught.value.status == 409
    assert (tmp_path / "cat" / NAMES[0]).is_file()
    assert sorted(files_under(tmp_path)) == sorted(
        [p for p in before if not p.startswith(f"{INBOX}/{NAMES[0][:-4]}")] + [f"cat/{NAMES[0]}",
                                                                             f"cat/{NAMES[0][:-4]}.json"])


def test_delete_keeps_the_frame_in_the_trash_until_undone_or_the_next_action(tmp_path):
    make_inbox(tmp_path)
    review = Review(tmp_path, ("cat", "dog"))
    review.delete(NAMES[0])
    assert (tmp_path / TRASH / NAMES[0]).is_file() and NAMES[0] not in review.frames()
    review.undo()
    assert NAMES[0] in review.frames() and not (tmp_path / TRASH / NAMES[0]).exists()
    review.delete(NAMES[0])
    review.label(NAMES[1], "dog")  # the next action: the delete can no longer be undone
    assert not (tmp_path / TRASH).exists()
    review.delete(NAMES[2])
    Review(tmp_path, ("cat", "dog"))  # a new run empties what an earlier one left in the trash
    assert not (tmp_path / TRASH).exists()


@pytest.mark.parametrize("name", ["", ".", "..", "../cat", "a/b", "inbox", ".hidden", "x" * 65, "ca t", "cat\x00",
                                  "kät", "cat.", "-" * 64 + "/"])
def test_unsafe_class_names_are_refused_with_a_reason(tmp_path, name):
    make_inbox(tmp_path)
    review = Review(tmp_path, ("cat", "dog"))
    before = files_under(tmp_path)
    assert class_problem(name) is not None
    with pytest.raises(ReviewError) as caught:
        review.label(NAMES[0], name)
    message = str(caught.value)
    assert caught.value.status == 400 and ("class name" in message or "inbox" in message), message
    with pytest.raises(ReviewError):
        review.add_class(name)
    assert files_under(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == [INBOX]


def test_good_class_names_pass():
    for name in ("cat", "Dog_2", "red-fox", "x" * 64, "none", "0"):
        assert class_problem(name) is None


@pytest.mark.parametrize("name", ["../secret.jpg", "/etc/passwd", "..", "cat/x.jpg", ".hidden.jpg", "x.json",
                                  "20261207-101500-001_f0000001_cat.JPG", NAMES[0] + "\x00", "%2e%2e%2fsecret.jpg"])
def test_frames_are_named_only_by_a_file_name_in_the_inbox(tmp_path, name):
    make_inbox(tmp_path / "dir")
    (tmp_path / "secret.jpg").write_bytes(b"secret")
    (tmp_path / "dir" / INBOX / ".hidden.jpg").write_bytes(b"hidden")
    review = Review(tmp_path / "dir", ("cat", "dog"))
    before = files_under(tmp_path)
    for act in (lambda: review.label(name, "cat"), lambda: review.delete(name), lambda: review.image(name)):
        with pytest.raises(ReviewError) as caught:
            act()
        assert caught.value.status == 400
    assert files_under(tmp_path) == before


def test_a_frame_not_in_the_inbox_is_404_and_nothing_moves(tmp_path):
    make_inbox(tmp_path)
    review = Review(tmp_path, ("cat", "dog"))
    review.label(NAMES[0], "cat")
    before = files_under(tmp_path)
    for act in (lambda: review.label(NAMES[0], "dog"), lambda: review.delete(NAMES[0])):
        with pytest.raises(ReviewError) as caught:
            act()
        assert caught.value.status == 404
    assert review.image(NAMES[0]) is None and review.image(NAMES[1]) == tmp_path / INBOX / NAMES[1]
    assert files_under(tmp_path) == before
