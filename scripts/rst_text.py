#!/usr/bin/python3
"""Strip reStructuredText/Sphinx markup to plain text, keeping prose and code samples.

    from rst_text import strip_rst
    text = strip_rst(open("coding-style.rst.txt").read())

    scripts/rst_text.py FILE        # print the stripped text of one file

A line-based approximation of what Sphinx renders, not a full parser:
- dropped: heading under/overlines, transitions, table border lines, comments, `.. _label:`
  targets, substitution definitions, directive options, and the whole body of directives that
  carry no prose (toctree, kernel-doc, include, index, image, raw, ...);
- kept: directive bodies (note, warning, code-block, ...) dedented to the directive's column,
  with a rendered title where Sphinx shows one ("Note", "New in version 3.2.", "See also"),
  API signatures (`.. function:: dumps(obj)` -> `dumps(obj)`), literal blocks verbatim;
- inline: roles keep their text (`:c:func:`kref_get`` -> `kref_get()`, `:rfc:`7159`` ->
  `RFC 7159`, `:ref:`title <label>`` -> `title`), ``literals``, `links <url>`_, *emphasis*
  and **strong** lose their markup; `text::` becomes `text:`;
- runs of blank lines collapse to one.
"""
import sys

import regex

# directive name -> how its line and body are rendered
DROP = set("""toctree kernel-doc kernel-abi kernel-feat kernel-include kernel-figure kernel-render
include literalinclude image figure raw index highlight contents sectionauthor moduleauthor
codeauthor tabularcolumns cssclass rst-class c:namespace c:namespace-push c:namespace-pop
default-domain currentmodule module py:module py:currentmodule audit-event audit-event-table
program sectnum title miscnews testsetup testcleanup meta role default-role
""".split())
LITERAL = set("""code-block code sourcecode doctest testcode testoutput productionlist
parsed-literal math""".split())
DESC = set("""function method class attribute data exception classmethod staticmethod decorator
decoratormethod coroutinefunction coroutinemethod abstractmethod awaitablefunction
awaitablemethod describe object opcode cmdoption option envvar pdbcommand 2to3fixer monitoring-event
c:function c:type c:macro c:member c:var c:struct c:union c:enum c:enumerator c:alias
py:function py:method py:class py:attribute py:data py:exception py:classmethod
py:staticmethod py:decorator py:property""".split())
TITLED = {  # rendered title; "" = show the directive argument only
    "note": "Note", "warning": "Warning", "seealso": "See also", "hint": "Hint",
    "important": "Important", "attention": "Attention", "tip": "Tip", "caution": "Caution",
    "danger": "Danger", "error": "Error", "availability": "Availability",
    "impl-detail": "CPython implementation detail",
    "admonition": "", "topic": "", "sidebar": "", "rubric": "", "table": "", "list-table": "",
    "flat-table": "", "csv-table": "",
}
VERSION = {"versionadded": "New in version", "versionchanged": "Changed in version",
           "deprecated": "Deprecated since version"}
FIELD_DROP = {"orphan", "tocdepth", "nocomments", "nosearch"}

DIRECTIVE = regex.compile(r"\.\.\s+(\|[^|]*\|\s+)?([A-Za-z0-9][\w:.+-]*)::+(?:\s+(.*))?$")
FOOTNOTE = regex.compile(r"\.\.\s+\[([^\]]+)\]\s*(.*)$")
ADORNMENT = regex.compile(r"""([=\-~^"'`*+#:_<>!$%&,;?@\\/|])\1{2,}$""")
TABLE_RULE = regex.compile(r"[+|]?[-=]{3,}(?:[+| ]+[-=]+)*[+|]?$")
SIG_CONT = regex.compile(r"\s*\\\n")
BULLET = regex.compile(r"\s*(?:[-*+\u2022]|\d+[.)]|\(\d+\)|#\.|[A-Za-z][.)])\s+(?=\S)")
OPTION = regex.compile(r":[\w.-]+:(?:\s.*)?$")
FIELD = regex.compile(r":([^:`]+):(?:\s+(.*))?$")

INLINE = regex.compile(r"""
    ``(?P<lit>.+?)``(?!`)
  | :(?P<role>[A-Za-z][\w.+-]*(?::[A-Za-z][\w.+-]*)?):`(?P<rbody>[^`]+)`
  | (?<!`)`(?P<ref>[^`]+)`(?:__?)?
  | \*\*(?P<strong>[^\s*](?:.*?[^\s*])??)\*\*
  | (?<![\w*\\])\*(?P<em>[^\s*](?:[^*]*?[^\s*\\])?)\*(?![\w*])
  | \s?\[(?:\#[\w-]*|\d+|\*)\]_(?!\w)
  | (?<!\S)\|(?P<subst>\w[\w .-]*?)\|(?:__?)?(?!\w)
  | \\(?P<esc>[\s])
""", regex.X | regex.S)
TITLED_TARGET = regex.compile(r"(.*\S)\s*<([^<>]+)>$", regex.S)
FUNC_ROLES = {"func", "meth", "c:func", "py:func", "py:meth"}


def leading_columns(line):
    """Indentation of a line in columns, tabs to multiples of 8."""
    col = 0
    for ch in line:
        if ch == " ":
            col += 1
        elif ch == "\t":
            col = (col // 8 + 1) * 8
        else:
            break
    return col


def dedent(line, cols):
    """Remove `cols` columns of leading whitespace, keeping the remaining tabs as tabs."""
    col = 0
    for i, ch in enumerate(line):
        if col >= cols or ch not in " \t":
            return " " * (col - cols) + line[i:]
        col = col + 1 if ch == " " else (col // 8 + 1) * 8
    return ""


def role_text(role, body):
    """Rendered text of :role:`body`."""
    role = role.lower()
    if role in ("cspan", "rspan"):  # flat-table cell spans, not text
        return ""
    m = TITLED_TARGET.match(body)
    if m and role != "abbr":
        return m.group(1)
    if role in ("rfc", "pep"):
        return role.upper() + " " + body.split("#")[0]
    if role == "issue":
        return "bpo-" + body
    if role == "gh":
        return "gh-" + body
    if role == "samp":
        return regex.sub(r"\{([^{}]*)\}", r"\1", body)
    if body[:1] == "!":
        body = body[1:]
    if body[:1] == "~":  # show the last dotted component only
        body = body[1:].rsplit(".", 1)[-1]
    if role in FUNC_ROLES and not body.endswith(")"):
        body += "()"
    return body


def inline_sub(m):
    g = m.groupdict()
    if g["lit"] is not None:
        return g["lit"]
    if g["role"] is not None:
        return role_text(g["role"], g["rbody"])
    if g["ref"] is not None:
        t = TITLED_TARGET.match(g["ref"])
        return t.group(1) if t else g["ref"]
    if g["strong"] is not None:  # may span lines and hold other markup
        return strip_inline(g["strong"])
    if g["em"] is not None:
        return strip_inline(g["em"])
    if g["subst"] is not None:
        return g["subst"]
    if g["esc"] is not None:  # "\ " is an rST zero-width separator
        return ""
    return ""  # footnote reference


def strip_inline(paragraph):
    return INLINE.sub(inline_sub, paragraph)


class _Frame:
    """A directive whose body is kept: body lines are shifted left to the directive column."""
    __slots__ = ("indent", "shift")

    def __init__(self, indent):
        self.indent = indent
        self.shift = None  # set by the first body line


def _directive_title(name, args):
    """(kind, text) shown in place of a kept directive's line, or None."""
    if name in LITERAL:
        return ("v", args) if args and name == "math" else None
    if name in DESC:
        # a backslash ends a signature line that continues on the next one; other lines
        # are alternative signatures
        return ("v", SIG_CONT.sub(" ", args)) if args else None
    args = " ".join(args.split())
    if name in VERSION:
        ver, _, rest = args.partition(" ")
        return ("p", VERSION[name] + " " + ver + (": " + rest if rest else "."))
    if name == "deprecated-removed":
        v = args.split(None, 2) + ["", ""]
        t = "Deprecated since version %s, will be removed in version %s" % (v[0], v[1])
        return ("p", t + (": " + v[2] if v[2] else "."))
    if name in TITLED:
        label = TITLED[name]
        t = label + (": " + args if label and args else args)
        return ("p", t) if t else None
    return None  # other directives (only, glossary, ...): marker dropped, body kept


def _takes_arguments(name):
    """Directives whose argument may continue on the following lines (up to a blank line
    or an option), as docutils parses them; the others start their content there."""
    return (name in DESC or name in VERSION or name == "deprecated-removed"
            or name == "availability" or TITLED.get(name, None) == "")


def strip_rst(text):
    """reStructuredText source -> plain text (see module docstring)."""
    lines = [l.rstrip() for l in text.replace("\r\n", "\n").split("\n")]
    out = []          # (kind, text): "p" prose, "v" verbatim, "b" blank
    frames = []
    skip = None       # dropping a block: blank lines and lines indented more than this
    literal = None    # in a literal block: blank lines and lines indented more than this
    header = False    # just after a directive line: its :option: lines are dropped

    def shift_total(ind):
        total = 0
        for f in frames:
            if f.shift is None:
                f.shift = ind - f.indent - total
            total += f.shift
        return total

    def emit(kind, line, ind):
        out.append((kind, dedent(line, min(ind, shift_total(ind)))))

    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        blank = not line.strip()
        ind = leading_columns(line)
        if skip is not None:
            if blank or ind > skip:
                continue
            skip = None
        if not blank:
            while frames and ind <= frames[-1].indent:
                frames.pop()
        if header:
            if blank:
                header = False
            elif OPTION.match(line.strip()):
                continue
            else:
                header = False
        if literal is not None:
            if blank:
                out.append(("b", ""))
                continue
            if ind > literal:
                emit("v", line, ind)
                continue
            literal = None
        if blank:
            out.append(("b", ""))
            continue
        s = line.strip()

        if s.startswith("..") and (len(s) == 2 or s[2] in " \t"):
            m = DIRECTIVE.match(s)
            if m:
                name, args = m.group(2).lower(), (m.group(3) or "").strip()
                if m.group(1) or name in DROP:
                    skip = ind
                    continue
                if _takes_arguments(name):
                    while (i < len(lines) and lines[i].strip() and leading_columns(lines[i]) > ind
                           and not OPTION.match(lines[i].strip())):
                        args += "\n" + lines[i].strip()
                        i += 1
                title = _directive_title(name, args)
                if title:
                    for t in title[1].split("\n"):
                        emit(title[0], " " * ind + t, ind)
                frames.append(_Frame(ind))
                header = True
                if name in LITERAL:
                    literal = ind
                continue
            m = FOOTNOTE.match(s)
            if m:
                if m.group(2):
                    emit("p", " " * ind + m.group(2), ind)
                frames.append(_Frame(ind))
                continue
            # target, comment or empty comment: drop with its indented continuation
            skip = ind
            continue
        if s.startswith("__ "):  # anonymous hyperlink target
            continue
        if ind == 0 and ADORNMENT.match(s):  # section title adornment or transition
            continue
        if TABLE_RULE.match(s):
            continue
        if s.endswith("::"):
            # the block must be indented more than the paragraph text (after any bullet)
            b = BULLET.match(line)
            literal = len(line[:b.end()].expandtabs(8)) if b else ind
            if s == "::":
                continue
            line = line[:-3] if line[-3] in " \t" else line[:-1]
        m = FIELD.match(s)
        if m and ind == 0:
            if m.group(1).lower() in FIELD_DROP:
                continue
            line = m.group(1) + ": " + (m.group(2) or "")
        emit("p", line, ind)
    return _join(out)


def _join(out):
    """Apply inline markup removal per paragraph; collapse blank runs."""
    lines = []
    para = []

    def flush():
        if para:
            lines.extend(strip_inline("\n".join(para)).split("\n"))
            para.clear()

    for kind, t in out:
        if kind == "p":
            para.append(t)
            continue
        flush()
        lines.append(t)
    flush()
    res = []
    for l in lines:
        l = l.rstrip()
        if not l and (not res or not res[-1]):
            continue
        res.append(l)
    while res and not res[-1]:
        res.pop()
    return "\n".join(res) + "\n" if res else ""


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) == 2 else 2)
    with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
        sys.stdout.write(strip_rst(f.read()))
