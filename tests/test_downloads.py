"""The two names a saved video gets: by its task (client.download) or by its job's key (a batch)."""

from __future__ import annotations

from emoji_async import file_name_for
from emoji_async._downloads import task_file_name


def test_a_task_id_names_its_video_with_only_plain_characters() -> None:
    assert task_file_name("abc-123_x") == "abc-123_x.mp4"
    assert task_file_name("../etc/passwd") == "___etc_passwd.mp4"
    assert task_file_name("a.b") == "a_b.mp4"  # no dot of the network's reaches the name
    assert task_file_name("") == "video.mp4"
    assert task_file_name("x" * 500) == "x" * 128 + ".mp4"


def test_a_jobs_key_keeps_its_dots_where_a_task_id_does_not() -> None:
    # The two rules name different things, and stay as they were: files already saved
    # under either keep their names.
    assert file_name_for("ada.v2") == "ada.v2.mp4"
    assert task_file_name("ada.v2") == "ada_v2.mp4"
