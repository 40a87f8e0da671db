"""Re-pack implicitly concatenated string literals that a line wrap left ragged.

``wrap_long_lines.py`` split long strings where they crossed the limit, which leaves runs such as
``"... the "`` / ``"prediction ..."`` with one or two words on a line. This pass joins every run of adjacent
single-line literals of the same kind (same prefix and quote, only line breaks between them) and splits it
again greedily at spaces, each line as full as the limit allows, where that saves a line or removes a
one-word line; inside an f-string it splits only outside ``{...}``. The value of every literal is unchanged,
which the script checks: the file's AST after the pass must equal the AST before it, or the file is left as
it was.

    python scripts/pack_string_runs.py src tests benchmarks scripts          # rewrite in place
    python scripts/pack_string_runs.py --check src                           # list what it would change
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import sys
import tokenize
from pathlib import Path

LIMIT = 110
RAGGED = 16
"""A literal this short inside a run (a word or two on a line) is re-packed even where that saves no line."""
PIECE = re.compile(r"^([rRbBfFuU]*)(['\"])(.*)\2$", re.S)


def _runs(src: str):
    """Runs of ≥ 2 single-line STRING tokens joined only by line breaks: lists of tokens."""
    toks = list(tokenize.generate_tokens(io.StringIO(src).readline))
    runs, cur = [], []
    for i, t in enumerate(toks):
        if t.type != tokenize.STRING or t.start[0] != t.end[0] or not PIECE.match(t.string):
            if cur and t.type not in (tokenize.NL,):
                runs.append(cur)
                cur = []
            continue
        prev = toks[i - 1]
        if cur and prev.type == tokenize.NL and toks[i - 2] is cur[-1]:
            cur.append(t)
        else:
            if cur:
                runs.append(cur)
            cur = [t]
    if cur:
        runs.append(cur)
    return [r for r in runs if len(r) > 1]


def _literal(literal: str):
    """(prefix without f, quote, is an f-string, holds a brace) of a literal."""
    m = PIECE.match(literal)
    prefix = m.group(1)
    return (prefix.replace("f", "").replace("F", ""), m.group(2), "f" in prefix.lower(),
            "{" in m.group(3) or "}" in m.group(3))


def _groups(run):
    """Split a run into groups that can become one literal: same prefix and quote; f-strings and plain
    literals mix only where no plain one holds a brace (its text would mean something else in an f-string)."""
    groups = []
    for t in run:
        base, quote, is_f, braces = _literal(t.string)
        plain_braces = braces and not is_f
        if groups:
            g = groups[-1]
            if (g["base"], g["quote"]) == (base, quote) and not (is_f and g["plain_braces"]) and not (
                plain_braces and g["f"]
            ):
                g["toks"].append(t)
                g["f"] |= is_f
                g["plain_braces"] |= plain_braces
                continue
        groups.append({"toks": [t], "base": base, "quote": quote, "f": is_f, "plain_braces": plain_braces})
    return groups


def _breaks(body: str, fstring: bool):
    """Indices just after each space of ``body`` where a split is allowed (outside braces in f-strings)."""
    out, depth, i = [], 0, 0
    while i < len(body):
        c = body[i]
        if fstring and body.startswith(("{{", "}}"), i):
            i += 2
            continue
        if c == "\\":
            i += 2
            continue
        if fstring and c == "{":
            depth += 1
        elif fstring and c == "}":
            depth -= 1
        elif c == " " and depth == 0:
            out.append(i + 1)
        i += 1
    return out


def _pack(first_col_used: int, indent: int, prefix: str, quote: str, body: str, tail: str):
    """Greedy split of ``body`` into lines: the first starts at column ``first_col_used``, the others at
    ``indent``; the last carries ``tail``. A piece is an f-string only where it holds a brace (no f-string
    without placeholders). Returns the literal texts; a piece longer than the room stays whole."""
    cuts = _breaks(body, "f" in prefix.lower()) + [len(body)]
    pieces, start, col = [], 0, first_col_used
    while start < len(body):
        room = LIMIT - col - len(prefix) - 2
        ends = [c for c in cuts if start < c <= len(body)]
        fit = [c for c in ends if c - start <= room - (len(tail) if c == len(body) else 0)]
        end = fit[-1] if fit else ends[0]
        text = body[start:end]
        pre = prefix if "{" in text or "}" in text else prefix.replace("f", "")
        pieces.append(f"{pre}{quote}{text}{quote}")
        start, col = end, indent
    return pieces


def pack_file(path: Path, write: bool) -> int:
    src = path.read_text()
    lines = src.split("\n")
    changed = 0
    for run in reversed(_runs(src)):
        for grp in reversed(_groups(run)):
            g = grp["toks"]
            if len(g) < 2:
                continue
            prefix, quote = grp["base"] + ("f" if grp["f"] else ""), grp["quote"]
            body = "".join(PIECE.match(t.string).group(3) for t in g)
            r0, c0 = g[0].start
            r1, c1 = g[-1].end
            head = lines[r0 - 1][:c0]
            tail = lines[r1 - 1][c1:]
            indent = g[1].start[1]
            pieces = _pack(c0, indent, prefix, quote, body, tail)
            new = [head + pieces[0]] + [" " * indent + p for p in pieces[1:]]
            new[-1] += tail
            old = lines[r0 - 1:r1]
            ragged = any(len(t.string) <= RAGGED for t in g[1:-1])
            if (len(new) < len(old) or (ragged and new != old)) and max(map(len, new)) <= LIMIT:
                lines[r0 - 1:r1] = new
                changed += 1
    if not changed:
        return 0
    out = "\n".join(lines)
    if ast.dump(ast.parse(out)) != ast.dump(ast.parse(src)):
        print(f"{path}: AST changed, left as it was", file=sys.stderr)
        return 0
    if write:
        path.write_text(out)
    return changed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--check", action="store_true", help="list the files it would change, write nothing")
    args = ap.parse_args(argv)
    total = 0
    for root in args.paths:
        for path in sorted(root.rglob("*.py") if root.is_dir() else [root]):
            n = pack_file(path, write=not args.check)
            if n:
                print(f"{path}: {n} run(s)")
                total += n
    print(f"{total} run(s) re-packed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
