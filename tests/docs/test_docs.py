"""The documents agree with the program: every option the program knows
(sendwrap --list-options) is in sendwrap.8 and in README.md or a guide
(doc/*.md), every line word the code can log is in sendwrap.8's LOGGING
section, every suite make check runs is listed once in README.md's Tests
section, every guide is linked from README.md, every relative link
between the documents resolves (anchors included), --help keeps each
option apart from its text within 79 columns, --version is
debian/changelog's, and no user document speaks of the project's
development history.  The guides' setup blocks: test_setup_blocks.py."""
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SENDWRAP = os.environ.get("SENDWRAP") or str(REPO / "sendwrap")
MAN = (REPO / "sendwrap.8").read_text()
README = (REPO / "README.md").read_text()
GUIDES = sorted((REPO / "doc").glob("*.md"))
# The documents a reader moves between; their links are checked.
DOCUMENTS = [REPO / "README.md", REPO / "BENCHMARKS.md"] + GUIDES


def run(args):
    return subprocess.run([SENDWRAP] + args, capture_output=True, text=True,
                          timeout=10, check=True).stdout


def options():
    """[(short or None, long)] from the program's own table."""
    out = []
    for line in run(["--list-options"]).splitlines():
        m = re.fullmatch(r"(?:-(\w) )?--([a-z0-9-]+)(?: .*)?", line)
        assert m, "unexpected --list-options line %r" % line
        out.append((m.group(1), m.group(2)))
    assert len(out) >= 20, out
    return out


def section(text, start, end):
    m = re.search(start + r"(.*?)(?:" + end + r"|\Z)", text, re.S)
    assert m, "no section %r" % start
    return m.group(1)


def logged_words():
    """The first word of every line the C code logs with log_info()."""
    words = set()
    for src in REPO.glob("*.c"):
        for m in re.finditer(r'log_info\(\s*"([a-z][a-z-]*)\b',
                             src.read_text()):
            words.add(m.group(1))
    assert {"pass", "allow", "early", "hangup"} <= words, words
    return sorted(words | {"error"})


@pytest.mark.parametrize("short,long", options(),
                         ids=lambda x: str(x))
def test_option_in_the_man_page(short, long):
    assert re.search(r"\bFl (?:\w , )?-%s\b" % re.escape(long), MAN), \
        "sendwrap.8 does not document --%s" % long
    if short:
        assert re.search(r"\bFl %s\b" % short, MAN), \
            "sendwrap.8 does not give -%s as the short form of --%s" % (
                short, long)


@pytest.mark.parametrize("short,long", options(), ids=lambda x: str(x))
def test_option_in_the_readme_or_a_guide(short, long):
    texts = [README] + [g.read_text() for g in GUIDES]
    assert any(re.search(r"--%s(?![\w-])" % re.escape(long), t) for t in texts), \
        "neither README.md nor a guide in doc/ mentions --%s" % long


def test_help_shows_every_long_form():
    text = run(["--help"])
    for short, long in options():
        assert "--" + long in text, long
        if short:
            assert "-%s, --%s" % (short, long) in text, long


def help_option_lines():
    """--help's options section: [(name, text or None, [lines after])],
    name as --list-options gives it ("-d, --delay DURATION"), text what
    follows it on its line (None when nothing does)."""
    names = []
    for line in run(["--list-options"]).splitlines():
        m = re.fullmatch(r"(?:-(\w) )?(--\S+)(.*)", line)
        names.append(("-%s, " % m.group(1) if m.group(1) else "")
                     + m.group(2) + m.group(3))
    lines = run(["--help"]).splitlines()
    section = lines[lines.index("options:") + 1:]
    entries = []
    for line in section:
        if not line.startswith(" "):
            break
        if not re.match(r"  (-\w, |    )--", line):
            assert entries, "text before the first option: %r" % line
            entries[-1][2].append(line)
            continue
        # The longest name that starts the line: --cache-add, not --cache.
        name = max((n for n in names if line.lstrip().startswith(n)),
                   key=len, default=None)
        assert name, "--help line names no option: %r" % line
        rest = line.lstrip()[len(name):]
        entries.append((line[:len(line) - len(rest)], rest, []))
    return names, entries


def test_help_never_glues_an_option_to_its_text():
    names, entries = help_option_lines()
    assert sorted(n.strip() for n, _, _ in entries) == sorted(names)
    columns = set()
    for name, rest, after in entries:
        if rest:
            m = re.fullmatch(r"( {2,})\S.*", rest)
            assert m, "--help: %r runs into its text: %r" % (
                name.strip(), name + rest)
            columns.add(len(name) + len(m.group(1)))
        else:
            assert after, "--help: %r has no text" % name.strip()
        for line in after:
            columns.add(len(line) - len(line.lstrip()))
    assert len(columns) == 1, \
        "--help: option texts start in columns %s" % sorted(columns)


def test_help_lines_fit_in_79_columns():
    long = [line for line in run(["--help"]).splitlines() if len(line) > 79]
    assert not long, "--help lines over 79 columns: %r" % long


@pytest.mark.parametrize("word", logged_words())
def test_logged_word_in_the_logging_section(word):
    logging = section(MAN, r"\.Sh LOGGING", r"\.Sh ")
    assert re.search(r"\bLi %s\b" % re.escape(word), logging), \
        "sendwrap.8's LOGGING section does not describe %r lines" % word


def suites():
    makefile = (REPO / "Makefile").read_text()
    checks = re.search(r"^CHECKS = ((?:.*\\\n)*.*)$", makefile, re.M)
    names = checks.group(1).replace("\\\n", " ").split()
    assert len(names) >= 5, names
    return names


def test_every_suite_listed_once_in_the_readme():
    """The Tests section's list is make check's suites, each once, in
    CHECKS's order: a second, older list would show as items that name
    no suite."""
    tests = section(README, r"\n## Tests\n", r"\n## ")
    items = re.findall(r"^- (.*)", tests, re.M)
    named = [re.match(r"`([\w-]+)`", i).group(1) if re.match(r"`[\w-]+`", i)
             else i for i in items]
    assert named == suites(), \
        "README.md's Tests section lists %r, make check runs %r" % (
            named, suites())


def test_check_docs_is_in_make_check():
    assert "check-docs" in suites()


def slug(heading):
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path):
    seen, out = {}, set()
    fence = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        m = re.match(r"(#{1,6}) (.*)", line)
        if m and not fence:
            s = slug(m.group(2))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else "%s-%d" % (s, n))
    return out


def links(path):
    """(target, line number) of every relative link in a Markdown file,
    outside code."""
    out = []
    fence = False
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("```"):
            fence = not fence
            continue
        if fence or line.startswith("    "):
            continue
        line = re.sub(r"`[^`]*`", "", line)
        for m in re.finditer(r"\]\(([^)\s]+)\)", line):
            if not re.match(r"[a-z]+:", m.group(1)):
                out.append((m.group(1), n))
    return out


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_relative_links_resolve(path):
    broken = []
    for target, n in links(path):
        name, _, anchor = target.partition("#")
        dest = (path.parent / name).resolve() if name else path
        where = "%s:%d: %s" % (path.relative_to(REPO), n, target)
        if not dest.exists():
            broken.append(where + " (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(where + " (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_examples_named_exist(path):
    """Every examples/ path a document names, linked or not."""
    text = path.read_text()
    missing = sorted({m.group(1) for m in re.finditer(
        r"(?<![\w/.-])(examples/[\w./-]*[\w/])", text)
        if not (REPO / m.group(1)).exists()})
    assert not missing, "%s names %s" % (path.name, missing)


def test_every_guide_is_linked_from_the_readme():
    linked = {(REPO / t.partition("#")[0]).resolve()
              for t, _ in links(REPO / "README.md")}
    missing = [g.name for g in GUIDES if g.resolve() not in linked]
    assert not missing, "README.md links to no %s" % missing


def test_version_is_debian_changelogs():
    """--version and the Debian package (debian/changelog, read by Debian's
    own parser) give the same version."""
    version = subprocess.run(
        ["dpkg-parsechangelog", "-l", str(REPO / "debian/changelog"),
         "-S", "Version"], capture_output=True, text=True, timeout=30,
        check=True).stdout.strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", version), version
    assert run(["--version"]) == "sendwrap %s\n" % version


TRACKER = re.compile(r"\b(issue|seed)s?\s+#?\d+|\bseed\s+\d{3}\b", re.I)


@pytest.mark.parametrize("name", ["README.md", "sendwrap.8", "--help"] + [
    "doc/" + g.name for g in GUIDES])
def test_no_development_history_in_user_documents(name):
    text = run(["--help"]) if name == "--help" else \
        (REPO / name).read_text()
    found = [m.group(0) for m in TRACKER.finditer(text)]
    assert not found, "%s speaks of %s" % (name, found)
