"""The palette JSON's layout: one colour per line, and names that are not UTF-8 kept exactly."""

import json
import os

from pipeline.save import json_bytes


def test_each_colour_is_one_line_and_the_document_still_parses():
    colors = [{"rgb": [i, i, i], "hex": f"#{i:02x}{i:02x}{i:02x}", "count": i} for i in range(64)]
    document = {"source": 'odd "colors": [] name.jpg', "k": 64, "colors": colors, "metrics": {}}
    text = json_bytes(document).decode("utf-8")
    assert json.loads(text) == document
    colour_lines = [line for line in text.splitlines() if line.lstrip().startswith('{"rgb"')]
    assert len(colour_lines) == 64
    assert len(text.splitlines()) < 64 + 12


def test_undecodable_name_bytes_become_json_escapes_that_round_trip():
    name = os.fsdecode(b"bad\xffname.jpg")
    data = json_bytes({"source": name, "colors": []})
    assert b"\\udcff" in data
    assert os.fsencode(json.loads(data)["source"]) == b"bad\xffname.jpg"
