"""The README's example runs as printed (documentation that cannot silently rot)."""

import re
from pathlib import Path


def test_readme_example_runs(capsys):
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    assert len(blocks[0].splitlines()) <= 25
    exec(compile(blocks[0], "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "C_cov = 63.99" in out or "C_cov = 64.0" in out
    assert "Ledger(t_comp=128, t_data=128, prompts=16)" in out


def test_readme_quick_start_has_exactly_two_commands():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("##", 1)[0]
    cmds = [
        ln.split("#")[0].strip() for ln in re.findall(r"```bash\n(.*?)```", quick, flags=re.S)[0].splitlines()
    ]
    assert [c for c in cmds if c] == ["make report", "make test"]
