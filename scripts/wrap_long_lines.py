"""Wrap lines over LIMIT without changing the program: docstring paragraphs and comment blocks are
re-flowed at spaces, code statements are range-formatted by ruff, long string literals inside brackets are
split into implicitly concatenated pieces. The AST (docstrings aside) is checked unchanged after each file.
Usage: wrap2.py FILE..."""

import ast
import io
import json
import re
import subprocess
import sys
import textwrap
import tokenize

LIMIT = 110
RUFF = str(__import__("pathlib").Path(sys.executable).with_name("ruff"))
BULLET = re.compile(r"^([-*+] |\d+\. |\(\w\) )")
PRAGMA = re.compile(r"#\s*(noqa|type:|pragma|fmt:|nosec)")


def long_lines(path):
    out = subprocess.run(
        [
            RUFF,
            "check",
            "--select",
            "E501",
            "--line-length",
            str(LIMIT),
            "--output-format",
            "json",
            "--no-cache",
            "--isolated",
            path,
        ],
        capture_output=True,
        text=True,
    ).stdout
    return sorted({d["location"]["row"] for d in json.loads(out or "[]")})


def strip_docs(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            for _k, st in enumerate(body):
                if (
                    isinstance(st, ast.Expr)
                    and isinstance(st.value, ast.Constant)
                    and isinstance(st.value.value, str)
                ):
                    st.value.value = "<doc>"
    return ast.dump(tree)


def tokens(src):
    return list(tokenize.generate_tokens(io.StringIO(src).readline))


def reflow_block(lines, a, b, first, rest, tail=""):
    words = " ".join(l.strip() for l in lines[a:b])
    if "  " in words:
        return None
    out = textwrap.wrap(
        words,
        width=LIMIT - len(tail),
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )
    if not out or any(len(o) > LIMIT for o in out):
        return None
    out[-1] += tail
    return out


def doc_fix(lines, r, s, e):
    """Line r (1-based) inside a multi-line string spanning s..e: re-flow its paragraph."""
    i, lo, hi = r - 1, s - 1, e - 1
    m0 = re.match(r'^(\s*)([rRbBuUfF]{0,2}("""|\'\'\'))', lines[lo])
    if not m0:
        return None
    ind = m0.group(1)

    def text(j):
        t = lines[j]
        if j == lo:
            t = t[len(m0.group(0)) :]
        if j == hi:
            t = t.rstrip()
            if t.endswith(m0.group(3)):
                t = t[:-3]
        return t

    def new_para(j):
        t = text(j).strip()
        return (
            (not t)
            or BULLET.match(t)
            or t.startswith(("|", ">>>", "..", "```", "+-", "=="))
            or t.endswith("::")
        )

    if not text(i).strip():
        return None
    # paragraph bounds
    a = i
    while (
        a > lo
        and not BULLET.match(text(a).strip())
        and not new_para(a - 1)
        and re.match(r"^\s*", text(a - 1) if a - 1 != lo else ind).group(0)
        == re.match(r"^\s*", text(a) if a != lo else ind).group(0)
    ):
        a -= 1
    b = i + 1
    while (
        b <= hi
        and not new_para(b)
        and re.match(r"^\s*", text(b)).group(0) == re.match(r"^\s*", text(i) if i != lo else ind).group(0)
    ):
        b += 1
    first_ind = ind + m0.group(2) if a == lo else re.match(r"^\s*", lines[a]).group(0)
    base_ind = ind if a == lo else re.match(r"^\s*", lines[a]).group(0)
    m = BULLET.match(text(a).strip())
    rest = base_ind + (" " * len(m.group(1)) if m else "")
    tail = (
        m0.group(3) if b - 1 == hi and lines[hi].rstrip().endswith(m0.group(3)) and text(hi).strip() else ""
    )
    body = [text(j) for j in range(a, b)]
    out = reflow_block(body, 0, len(body), first_ind, rest, tail)
    if out is None:
        return None
    return a, b, out


def comment_fix(lines, r, comment_lines):
    i = r - 1
    m = re.match(r"^(\s*)# ?", lines[i])
    ind = m.group(1)

    def ok(j):
        mm = re.match(r"^(\s*)# ?(.*)$", lines[j])
        return (
            (j + 1) in comment_lines
            and mm
            and mm.group(1) == ind
            and mm.group(2).strip()
            and not BULLET.match(mm.group(2))
        )

    a = i
    while a - 1 >= 0 and ok(a - 1):
        a -= 1
    b = i + 1
    while b < len(lines) and ok(b):
        b += 1
    body = [re.sub(r"^\s*# ?", "", l) for l in lines[a:b]]
    out = reflow_block(body, 0, len(body), ind + "# ", ind + "# ")
    return None if out is None else (a, b, out)


def trailing_fix(lines, r, tok):
    """Move a trailing comment above its line (same indentation)."""
    line = lines[r - 1]
    c = tok.string
    if PRAGMA.search(c):
        return None
    code = line[: tok.start[1]].rstrip()
    ind = re.match(r"^\s*", line).group(0)
    if len(code) > LIMIT:
        return None
    body = [c.lstrip("#").strip()]
    out = reflow_block(body, 0, 1, ind + "# ", ind + "# ")
    if out is None:
        return None
    return r - 1, r, out + [code]


def stmt_range(tree, r):
    best = None
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and node.lineno <= r <= node.end_lineno:
            if best is None or (node.lineno >= best.lineno and node.end_lineno <= best.end_lineno):
                best = node
    if best is None:
        return None
    body = getattr(best, "body", None)
    if isinstance(body, list) and body and not isinstance(best, ast.Expr):
        first = min(
            [body[0].lineno] + [d.lineno for d in getattr(best, "decorator_list", [])]
            if False
            else [body[0].lineno]
        )
        start = min([best.lineno] + [d.lineno for d in getattr(best, "decorator_list", [])])
        if r >= first:
            return None
        return start, first - 1
    return best.lineno, best.end_lineno


def split_string(lines, r, toks):
    """Split the single-line string literal crossing column LIMIT on line r into two, if inside brackets."""
    line = lines[r - 1]
    depth = 0
    for t in toks:
        if t.start[0] > r:
            break
        if t.type == tokenize.OP and t.string in "([{":
            depth += 1
        elif t.type == tokenize.OP and t.string in ")]}":
            depth -= 1
        if (
            t.start[0] == r
            and t.type == tokenize.STRING
            and t.end[0] == r
            and t.start[1] < LIMIT - 12
            and t.end[1] > LIMIT - 1
        ):
            if depth <= 0:
                return None
            s = t.string
            m = re.match(r'^([rRbBuUfF]{0,2})(["\'])(.*)\2$', s)
            if not m or s[len(m.group(1)) :].startswith(('"""', "'''")):
                return None
            pre, q, body = m.groups()
            if "b" in pre.lower():
                return None
            start_col = t.start[1] + len(pre) + 1
            limit_in_body = LIMIT - 1 - start_col - 1  # room for closing quote
            # candidate split points: after a space, not inside {...} for f-strings, not after a backslash
            best = None
            lvl = 0
            for k, ch in enumerate(body):
                if "f" in pre.lower():
                    if ch == "{":
                        lvl += 1
                    elif ch == "}":
                        lvl -= 1
                if ch == " " and lvl == 0 and k + 1 <= limit_in_body and k > 10 and body[k - 1] != "\\":
                    best = k + 1
            if best is None:
                return None
            p1, p2 = body[:best], body[best:]
            pre2 = pre
            if "f" in pre.lower():
                if "{" not in p1 and "}" not in p1:
                    pre1 = pre.replace("f", "").replace("F", "")
                else:
                    pre1 = pre
                if "{" not in p2 and "}" not in p2:
                    pre2 = pre.replace("f", "").replace("F", "")
            else:
                pre1 = pre
            if ("{{" in p1 or "}}" in p1) and "f" not in pre1.lower():
                pre1 = pre
            if ("{{" in p2 or "}}" in p2) and "f" not in pre2.lower():
                pre2 = pre
            first = line[: t.start[1]] + pre1 + q + p1 + q
            second = " " * t.start[1] + pre2 + q + p2 + q + line[t.end[1] :]
            return r - 1, r, [first, second]
    return None


def oneline_doc(lines, r):
    """A one-line docstring over the limit becomes a wrapped multi-line one."""
    m = re.match(r'^(\s*)([rRuU]?)("""|\'\'\')(.*)\3\s*$', lines[r - 1])
    if not m or m.group(3) in m.group(4):
        return None
    ind, pre, q, body = m.groups()
    out = reflow_block([body], 0, 1, ind + pre + q, ind, q)
    return None if out is None else (r - 1, r, out)


def fix_file(path):
    for _rounds in range(400):
        rows = long_lines(path)
        if not rows:
            return 0
        src = open(path).read()
        lines = src.split("\n")
        toks = tokens(src)
        tree = ast.parse(src)
        ml = [(t.start[0], t.end[0]) for t in toks if t.type == tokenize.STRING and t.end[0] > t.start[0]]
        comment_lines = {
            t.start[0] for t in toks if t.type == tokenize.COMMENT and t.line.strip().startswith("#")
        }
        trailing = {
            t.start[0]: t for t in toks if t.type == tokenize.COMMENT and not t.line.strip().startswith("#")
        }
        fix = None
        for r in reversed(rows):
            span = next(((s, e) for s, e in ml if s <= r <= e), None)
            if span:
                fix = doc_fix(lines, r, *span)
            elif r in comment_lines:
                fix = comment_fix(lines, r, comment_lines)
            else:
                if r in trailing:
                    fix = trailing_fix(lines, r, trailing[r])
                    if fix:
                        break
                rng = stmt_range(tree, r)
                if rng:
                    before = src
                    subprocess.run(
                        [
                            RUFF,
                            "format",
                            "--isolated",
                            "--line-length",
                            str(LIMIT),
                            f"--range={rng[0]}:1-{rng[1]}:{len(lines[rng[1] - 1]) + 1}",
                            path,
                        ],
                        capture_output=True,
                        text=True,
                    )
                    after = open(path).read()
                    if (
                        after != before
                        and r not in long_lines(path)
                        or after != before
                        and len(long_lines(path)) < len(rows)
                    ):
                        fix = "formatted"
                        break
                    open(path, "w").write(before)
                fix = oneline_doc(lines, r) or split_string(lines, r, toks)
            if fix:
                break
        if fix is None:
            return len(rows)
        if fix != "formatted":
            a, b, out = fix
            lines[a:b] = out
            open(path, "w").write("\n".join(lines))
        new = open(path).read()
        try:
            ok = strip_docs(ast.parse(new)) == strip_docs(ast.parse(src))
        except SyntaxError:
            ok = False
        if not ok:
            open(path, "w").write(src)
            print(f"REVERTED a change in {path} (AST differs)", file=sys.stderr)
            return len(rows)
    return len(long_lines(path))


if __name__ == "__main__":
    total = 0
    for p in sys.argv[1:]:
        left = fix_file(p)
        if left:
            print(f"{p}: {left} left")
        total += left
    print("left:", total)
