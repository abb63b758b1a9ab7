"""Walking PATHs and naming outputs: deterministic, unique, and never leaving the input tree."""

import os

import pytest

from pipeline.discover import (
    HIDDEN_NAME,
    NOT_AN_IMAGE_NAME,
    InputError,
    InputWalk,
    first_image,
    output_names,
    resolve_roots,
)


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def walk(paths, out):
    walker = InputWalk(resolve_roots(paths, out))
    return {item.source: (item.output, item.error) for item in walker}, walker.ignored


def test_output_names_keep_stems_apart():
    assert output_names(["a.jpg", "b.jpg", "b.png", "c.tif"]) == [
        "a.png",
        "b.jpg.png",
        "b.png.png",
        "c.png",
    ]
    assert output_names(["b.jpg", "b.jpg.png", "b.png"]) == [
        "b.jpg.png",
        "b.jpg~2.png",
        "b.png.png",
    ]


def test_folder_is_mirrored_and_non_images_ignored(tmp_path):
    root = tmp_path / "in"
    for name in ("x.jpg", "deep/y.PNG", "deep/er/z.webp", "notes.txt", ".DS_Store", "deep/README"):
        touch(root / name)
    found, ignored = walk([root], tmp_path / "out")
    assert found == {
        "x.jpg": ("x.png", None),
        "deep/y.PNG": ("deep/y.png", None),
        "deep/er/z.webp": ("deep/er/z.png", None),
    }
    assert ignored == 3


def test_several_paths_get_their_own_subfolders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    touch(a / "x.jpg")
    touch(b / "x.jpg")
    single = touch(tmp_path / "loose" / "x.jpg")
    found, _ = walk([a, b, single], tmp_path / "out")
    assert found == {
        "a/x.jpg": ("a/x.png", None),
        "b/x.jpg": ("b/x.png", None),
        "x.jpg": ("x.png", None),
    }


def test_symlinks_inside_are_followed_once_and_outside_ones_fail(tmp_path):
    root = tmp_path / "in"
    touch(root / "x.jpg")
    secret = touch(tmp_path / "secret" / "s.jpg")
    os.symlink(root / "x.jpg", root / "alias.jpg")
    os.symlink(secret, root / "leak.jpg")
    os.symlink(secret.parent, root / "leakdir")
    os.symlink(root, root / "loop")
    found, _ = walk([root], tmp_path / "out")
    assert found["alias.jpg"] == ("alias.png", None)
    assert "outside the input tree" in found["leak.jpg"][1]
    assert "outside the input tree" in found["leakdir"][1]
    assert not any(source.startswith("loop/") for source in found)


def test_out_inside_input_and_missing_paths_are_usage_errors(tmp_path):
    root = tmp_path / "in"
    touch(root / "x.jpg")
    with pytest.raises(InputError, match="inside the input folder"):
        resolve_roots([root], root / "sub" / "out")
    with pytest.raises(InputError, match="no such file"):
        resolve_roots([tmp_path / "missing"], tmp_path / "out")
    assert resolve_roots([root / "x.jpg"], root / "out")  # a file's folder may hold OUT


def test_a_named_file_says_why_it_is_not_read(tmp_path):
    """A file named on purpose fails with its real reason: a hidden .png is refused for being
    hidden (its extension is an image's), notes.txt for its name."""
    for name in (".dot.png", "notes.txt", "photo.png"):
        touch(tmp_path / name)
    paths = [tmp_path / name for name in (".dot.png", "notes.txt", "photo.png")]
    found, _ = walk(paths, tmp_path / "out")
    assert found[".dot.png"][1] == HIDDEN_NAME
    assert found["notes.txt"][1] == NOT_AN_IMAGE_NAME
    assert found["photo.png"][1] is None


@pytest.mark.parametrize(
    "names, links",
    [
        ((), ()),  # an empty folder
        (("notes.txt", ".hidden.png", ".cache/x.png"), ()),  # only what the walk ignores
        (("notes.txt", "deep/er/z.webp"), ()),  # the one image is two folders down
        (("notes.txt",), (("escape.png", "outside/real.png"),)),  # a link out of the tree
        (("notes.txt",), (("loop", "in"),)),  # a folder linking to itself, and no image
    ],
)
def test_first_image_answers_as_the_full_walk_does(tmp_path, names, links):
    """``first_image`` stops at the first image it meets; it must still agree with the full
    walk on whether there is anything to do, and count the same ignored files when not."""
    root = tmp_path / "in"
    root.mkdir()
    for name in names:
        touch(root / name)
    for link, target in links:
        if not (tmp_path / target).exists():
            touch(tmp_path / target)
        os.symlink(tmp_path / target, root / link)
    roots = resolve_roots([root], tmp_path / "out")
    full = InputWalk(roots)
    items = list(full)
    found, walk_ = first_image(roots)
    assert found == bool(items)
    if not found:
        assert walk_.ignored_kinds == full.ignored_kinds
