"""The README's "Check your estimator exactly" example runs as printed and says what the text says."""

import re
from pathlib import Path


def test_check_your_estimator_example_runs(capsys):
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Check your estimator exactly", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(block.splitlines()) <= 20
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("leave_one_out cos 1.0000 scale 1.000")
    assert "scale 1.420" in out[1] and out[2].startswith("median_baseline cos 0.9977")
    assert "'reward/sequence/k1': 1.0" in out[3] and "'loss/sequence/k3': 0.998" in out[3]
